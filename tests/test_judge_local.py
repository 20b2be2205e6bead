"""End to end against a real OpenAI-compatible server: llama.cpp with SmolLM2-135M on loopback.

A 135M model cannot grade; these tests prove the plumbing (negotiation, grammar-constrained schema,
parsing, usage, logprobs, cache, LangChain adapter), never grading quality. Three real completions in all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from servers.rubric import pruning_rubric

from grader.config import JudgeSettings, Settings
from grader.judge import make_judge
from grader.judge.local_server import LocalServer, free_port
from grader.judge.schema import score_values
from grader.judge.structured import forget_modes
from grader.models import JudgeResult, Rubric

pytestmark = pytest.mark.llm

ANSWER = "Pruning removes the smallest weights of a trained network, so the model is smaller and faster."


def local_settings(server: LocalServer, cache_dir: Path, **judge: object) -> Settings:
    base = {"backend": "openai", "base_url": server.base_url, "max_tokens": 600, "timeout": 300,
            "max_retries": 1, **judge}
    return Settings(cache_dir=cache_dir, judge=JudgeSettings(**base))


def assert_schema_valid(result: JudgeResult, rubric: Rubric) -> None:
    assert result.status == "scored", result.error
    assert result.score in score_values(rubric.max_score)
    assert [v.id for v in result.verdicts] == [c.id for c in rubric.criteria]
    assert all(v.verdict in ("met", "partial", "missed", "contradicted") for v in result.verdicts)
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0


def test_openai_judge_end_to_end_then_cache_hit(local_llm: LocalServer, tmp_path: Path) -> None:
    # Other tests may have negotiated with this server already; this one must see the negotiation itself.
    forget_modes()
    rubric = pruning_rubric()
    before = local_llm.completions_served()
    judge = make_judge(local_settings(local_llm, tmp_path, logprobs=True))  # no --model: the server's only one
    started = time.perf_counter()
    result = judge.judge(rubric, ANSWER)
    elapsed = time.perf_counter() - started
    assert_schema_valid(result, rubric)
    assert result.model == local_llm.model and result.backend == "openai"
    # llama.cpp refuses json_schema (HTTP 500) and enforces json_object + schema as a grammar.
    assert result.mode == "json_object"
    assert any("refused json_schema" in n for n in result.notes)
    assert local_llm.completions_served() - before == 2
    # llama.cpp returns top_logprobs; the weighted score is computed and stays on the scale.
    assert result.logprob_score is not None and 0 <= result.logprob_score <= 5, result.logprobs_note
    print(f"\nllama.cpp judge: mode={result.mode} score={result.score} logprob_score={result.logprob_score} "
          f"tokens={result.usage.prompt_tokens}+{result.usage.completion_tokens} in {elapsed:.1f}s")

    served = local_llm.completions_served()
    again = make_judge(local_settings(local_llm, tmp_path, logprobs=True)).judge(rubric, ANSWER)
    assert again.cached and again.score == result.score and again.verdicts == result.verdicts
    assert local_llm.completions_served() == served  # no request reached the server


def test_langchain_judge_through_init_chat_model(local_llm: LocalServer, tmp_path: Path) -> None:
    rubric = pruning_rubric()
    before = local_llm.completions_served()
    settings = local_settings(local_llm, tmp_path, backend="langchain", provider="openai:smollm2", cache=False)
    result = make_judge(settings).judge(rubric, ANSWER)
    assert_schema_valid(result, rubric)
    assert result.backend == "langchain" and result.model == "openai:smollm2"
    # LangChain's json_schema method is refused the same way; tool calling is the next portable method.
    assert result.mode == "tools"
    assert local_llm.completions_served() - before == 2
    print(f"\nlangchain judge: mode={result.mode} score={result.score} "
          f"tokens={result.usage.prompt_tokens}+{result.usage.completion_tokens}")


def test_serve_local_command_starts_and_stops_a_server() -> None:
    port = free_port()
    grader = Path(sys.executable).with_name("grader")
    proc = subprocess.Popen(
        [str(grader), "serve-local", "--port", str(port), "--threads", "1", "--startup-timeout", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        # The command says when it is ready; its own start-up timeout bounds this loop.
        while not lines or "press Ctrl-C" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, "grader serve-local exited early:\n" + "".join(lines)
            lines.append(line)
        assert f"base URL: http://127.0.0.1:{port}/v1" in "".join(lines)
        r = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10)
        assert "SmolLM2-135M" in r.json()["data"][0]["id"]
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopping" in out
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)  # the server went with it
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
