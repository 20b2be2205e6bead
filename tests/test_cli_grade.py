"""`grader grade` through the real entry point: output for people, JSON for machines, exit codes."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from grader.cli import main
from grader.pipeline.grader import Grader

ANSWER = "Pruning removes the least important weights, so the model is smaller and inference is faster."


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         stdin: bytes | None = None) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["grader", *args])
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GRADER_JUDGE__BASE_URL", "GRADER_JUDGE__BACKEND"):
        monkeypatch.delenv(k, raising=False)
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def rub(seed_rubrics_dir: Path, offline_grader: object) -> list[str]:
    # offline_grader: loads the model once for the session, so these in-process runs reuse it.
    return ["--rubrics", str(seed_rubrics_dir)]


def test_json_output_is_what_the_api_gives(
    rub: list[str], offline_grader: Grader, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["grade", "-q", "easy-2", "--answer", ANSWER, "--json", *rub], monkeypatch, capsys)
    assert code == 0
    data = json.loads(out)
    assert data["question_id"] == "easy-2" and data["status"] == "graded" and 0 <= data["score"] <= 5
    assert data["judge_used"] == "none"
    assert data["embedding"]["signals"] and data["criteria"] and data["feedback"]["text"].startswith("Score ")
    # The README's promise: result.model_dump_json() is what `grade --json` prints (only the timing differs).
    api = json.loads(offline_grader.grade(ANSWER, question_id="easy-2").model_dump_json(indent=2))
    assert data.keys() == api.keys()
    assert {**data, "elapsed_ms": 0} == {**api, "elapsed_ms": 0}


def test_readable_output_and_answer_sources(
    rub: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["grade", "-q", "easy-2", "--answer", ANSWER, "--judge", "none", *rub], monkeypatch, capsys)
    assert code == 0
    assert "Score " in out and "key point" in out and "Suggestion:" in out
    assert "judge: none (offline)" in out and "What is pruning in model compression?" in out
    code, from_stdin, _ = _run(["grade", "-q", "easy-2", "--answer", "-", "--json", *rub], monkeypatch, capsys,
                               stdin=ANSWER.encode())
    f = tmp_path / "a.txt"
    f.write_text(ANSWER)
    code2, from_file, _ = _run(["grade", "-q", "easy-2", "--answer-file", str(f), "--json", *rub], monkeypatch, capsys)
    assert code == code2 == 0 and json.loads(from_stdin)["score"] == json.loads(from_file)["score"]


def test_adhoc_question(rub: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["grade", "--question", "What is a cache?", "--reference",
                         "A cache keeps recently used data close by so repeated reads are faster.",
                         "--answer", "It keeps recent data nearby to speed up repeated reads.", "--json"],
                        monkeypatch, capsys)
    assert code == 0 and json.loads(out)["question_id"] == "adhoc"


def test_adhoc_question_on_another_scale(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["grade", "--question", "What is a cache?", "--reference",
            "A cache keeps recently used data close by so repeated reads are faster.",
            "--answer", "It keeps recent data nearby to speed up repeated reads.", "--judge", "none"]
    code, out, _ = _run([*args, "--max-score", "10", "--json"], monkeypatch, capsys)
    data = json.loads(out)
    assert code == 0 and data["max_score"] == 10 and 5 < data["score"] <= 10
    code, out, _ = _run([*args, "--max-score", "10"], monkeypatch, capsys)
    assert code == 0 and " / 10 " in out
    code, _, err = _run([*args, "--max-score", "0"], monkeypatch, capsys)
    assert code == 2 and "--max-score" in err


def test_max_score_is_refused_with_a_stored_rubric(
    rub: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["grade", "-q", "easy-2", "--answer", ANSWER, "--max-score", "10", *rub],
                          monkeypatch, capsys)
    assert code == 2 and out == "" and "--max-score is for ad hoc questions" in err


def test_unknown_id_suggests_the_close_ones(
    rub: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["grade", "-q", "easy2", "--answer", ANSWER, *rub], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert "unknown question id 'easy2'" in err and "did you mean 'easy-2'?" in err and "grader rubric list" in err
    code, _, err = _run(["grade", "-q", "interview/easy-22", "--answer", ANSWER, *rub], monkeypatch, capsys)
    assert code == 2 and "did you mean 'interview/easy-2'?" in err


def test_panel_keeps_long_titles_whole_and_shows_latex_readably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    question = ("What are the key differences between discriminative and generative models, and which one "
                "estimates $P(y|x)$ rather than the joint probability $P(x,y)$ of inputs and labels?")
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = _run(["grade", "--question", question, "--reference",
                         "Discriminative models estimate $P(y|x)$. Generative models model the joint $P(x,y)$.",
                         "--answer", "A discriminative model learns $P(y|x)$ directly.", "--judge", "none"],
                        monkeypatch, capsys)
    assert code == 0
    assert "$" not in out and "P(y|x)" in out and "P(x,y)" in out
    title = out.splitlines()[0]
    # The border title is shortened at a word boundary, and the whole question is printed inside the panel.
    assert title.startswith("╭─ adhoc · What are the key differences") and "…" in title
    words = question.replace("$", "").split()
    cut = title.split(" · ", 1)[1].split("…")[0].split()
    assert cut == words[: len(cut)]
    inside = " ".join(line.strip("│ ") for line in out.splitlines()[1:4])
    assert "What are the key differences" in inside and "joint probability" in " ".join(out.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-q", "easy-2"], "no answer: give --answer TEXT"),
        (["-q", "nope-1", "--answer", "x"], "unknown question id 'nope-1'"),
        (["--answer", "x"], "give --question-id ID, or an ad hoc --question TEXT with --reference TEXT"),
        (["-q", "easy-2", "--question", "q", "--reference", "r", "--answer", "x"], "not both"),
        (["-q", "easy-2", "--answer", "  "], "empty answer"),
        (["-q", "easy-2", "--answer", "y" * 30, "--max-answer-chars", "10"], "answer too long (30 chars > 10)"),
        (["-q", "easy-2", "--answer", "x", "--judge", "maybe"], "--judge must be"),
    ],
)
def test_usage_and_input_errors_exit_2(
    args: list[str], message: str, rub: list[str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(["grade", *args, *rub], monkeypatch, capsys)
    assert code == 2 and message in err and out == ""


def test_bad_answer_file(rub: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a.txt"
    f.write_bytes(b"caf\xe9")
    code, _, err = _run(["grade", "-q", "easy-2", "--answer-file", str(f), *rub], monkeypatch, capsys)
    assert code == 2 and f"{f}: not UTF-8 (byte 3)" in err


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_judge_failure_exit_codes(rub: list[str], monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRADER_JUDGE__MAX_RETRIES", "0")
    monkeypatch.setenv("GRADER_JUDGE__TIMEOUT", "2")
    base = ["grade", "-q", "easy-2", "--answer", ANSWER, "--judge", "openai", "--base-url", _dead_url(),
            "--model", "m", "--no-cache", "--json", *rub]
    code, out, _ = _run(base, monkeypatch, capsys)
    data = json.loads(out)
    assert code == 0 and data["status"] == "fallback" and data["score"] is not None
    assert data["warnings"][0].startswith("judge unavailable:")
    code, out, err = _run([*base, "--no-fallback"], monkeypatch, capsys)
    data = json.loads(out)
    assert code == 3 and data["status"] == "unscored" and data["score"] is None
    assert "judge unavailable and fallback disabled" in err


@pytest.mark.slow
def test_make_grade_command_cold(seed_rubrics_dir: Path) -> None:
    """The command `make grade` runs, in a fresh process, as a user would."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "grader", "grade", "--question-id", "easy-2", "--judge", "none",
                        "--answer", ANSWER, "--rubrics", str(seed_rubrics_dir)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "Score " in p.stdout and "judge: none (offline)" in p.stdout
