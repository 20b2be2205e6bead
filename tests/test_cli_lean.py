"""A cold `grader grade` imports only what grading one answer needs: on an ONNX runtime (the default) not
even torch; on the torch runtime torch alone, encoding on one torch thread."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from grader.cli.grade import one_torch_thread
from grader.config import EmbeddingSettings

_PROBE = (
    "import sys\n"
    "sys.argv = ['grader', *sys.argv[1:]]\n"
    "from grader.cli import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    mods = ('torch', 'sentence_transformers', 'transformers', 'grader.cli.batch', 'grader.cli.bench',\n"
    "            'grader.cli.evaluate', 'grader.cli.tune', 'grader.cli.rubric', 'grader.cli.serve', 'rich',\n"
    "            'openai', 'httpx', 'langchain_core', 'langchain', 'sklearn', 'scipy', 'matplotlib', 'onnx',\n"
    "            'grader.judge.structured')\n"
    "    print(sorted(m for m in mods if m in sys.modules), file=sys.stderr)\n"
)


def _probe(*args: str, runtime: str | None = None) -> tuple[int, list[str]]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GRADER_JUDGE__BASE_URL", "GRADER_JUDGE__BACKEND",
              "GRADER_EMBEDDING__RUNTIME"):
        env.pop(k, None)
    if runtime is not None:
        env["GRADER_EMBEDDING__RUNTIME"] = runtime
    p = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, timeout=120)
    return p.returncode, p.stderr.strip().splitlines()


@pytest.mark.parametrize("judge", ["none", "auto"])
def test_grade_input_error_imports_no_model_and_no_other_command(judge: str) -> None:
    code, err = _probe("grade", "--question-id", "easy-2", "--judge", judge, "--answer", "   ")
    assert code == 2
    assert err[0] == "error: answer: empty answer"
    assert err[-1] == "[]"  # not torch, not the other commands, not rich/openai/httpx/langchain


@pytest.mark.parametrize(("runtime", "heavy"), [(None, []), ("onnx", []), ("onnx-int8", []), ("torch", ["torch"])])
def test_offline_grade_imports_only_what_its_runtime_needs(runtime: str | None, heavy: list[str]) -> None:
    from grader.embedding.encoder import get_encoder

    if runtime != "torch":  # converted beforehand (in this process): converting imports torch, grading not
        get_encoder(EmbeddingSettings(runtime=runtime or "auto"))
    code, err = _probe("grade", "--question-id", "easy-2", "--judge", "none", "--json",
                       "--answer", "Pruning removes unimportant weights.", runtime=runtime)
    assert code == 0, err
    # Never sentence_transformers/transformers/sklearn/scipy/matplotlib/langchain/openai, nor the judge's transport.
    assert err[-1] == str(heavy)


def test_help_still_lists_every_command() -> None:
    code, err = _probe("--help")
    assert code == 0
    assert "grader.cli.batch" in err[-1] and "torch" not in err[-1]


def test_app_attribute_has_every_command() -> None:
    import typer.main

    from grader.cli import app

    names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert names == {"bank", "rubric", "grade", "batch", "eval", "tune", "serve-local", "model", "bench"}


def test_one_torch_thread_sets_one_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_torch_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), one_torch_thread():
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
        with one_torch_thread("onnx"):  # no torch on this runtime: nothing to limit
            assert torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's choice wins
        with one_torch_thread():
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
