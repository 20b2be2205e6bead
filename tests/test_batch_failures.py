"""What `grader batch` (and `grade`, `eval`) did wrong under bad inputs, faults and attacks, each through the
real CLI where a user meets it: a full disk, two writers, CSV that is valid but unusual, ids a spreadsheet
would run, broken Unicode, an endpoint that echoes secrets or asks to wait an hour, a misspelt config."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run_cli
from servers.fault_server import MODEL, FaultServer

from grader.pipeline.batch import BatchOptions, run_batch
from grader.pipeline.grader import Grader
from grader.pipeline.resume import load_resume_state
from grader.pipeline.synthetic import write_answers
from grader.rubric.store import load_rubrics

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
ANSWER = "Pruning removes the least important weights, so the model is smaller and inference is faster."


def _grader_cmd(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "grader", *map(str, args)]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _csv_records(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# ------------------------------------------------------------------------------------------ full disk


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 300 KB filesystem (tmpfs) that fills up; the test runs as root, in CI too."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_stops_the_run_and_resume_finishes_it(
    tmp_path: Path, small_fs: Path, seed_rubrics_dir: Path
) -> None:
    n = 250
    src = write_answers(load_rubrics(seed_rubrics_dir), tmp_path / "answers.jsonl", n, seed=11)
    out = small_fs / "results.jsonl"
    cmd = _grader_cmd("batch", src, "-o", out, "--full", "--judge", "none", "--rubrics", seed_rubrics_dir,
                      "--no-progress", "--chunk-size", "32")
    full = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert full.returncode == 4, full.stderr
    assert "Traceback" not in full.stderr
    (message,) = _error_lines(full.stderr)
    assert str(out) in message and "No space left on device" in message and "--resume" in message
    assert "batch summary" not in full.stderr  # it does not claim to have finished
    written = _jsonl(out)  # every line a whole record: nothing torn
    assert 0 < len(written) < n
    state = load_resume_state(out, "jsonl")
    assert state.torn_bytes == 0 and len(state) == len(written)

    subprocess.run(["mount", "-o", "remount,size=20m", str(small_fs)], check=True)  # space freed
    done = subprocess.run([*cmd, "--resume"], env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = sorted(r["line"] for r in _jsonl(out))
    assert lines == list(range(1, n + 1)), "every row exactly once"


def test_an_injected_write_error_is_not_swallowed(tmp_path: Path, offline_grader: Grader,
                                                  seed_rubrics_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_answers(load_rubrics(seed_rubrics_dir), tmp_path / "a.jsonl", 150, seed=4)
    out = tmp_path / "out.jsonl"
    real_write = os.write
    calls = {"n": 0}

    def flaky_write(fd: int, data: bytes) -> int:
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(out.resolve()):
            calls["n"] += 1
            if calls["n"] == 70:
                # Half the record reaches the disk, then the device fails: the worst case for a torn record.
                real_write(fd, bytes(data)[: len(data) // 2])
                raise OSError(28, "No space left on device")
        return real_write(fd, data)

    from grader.errors import OutputError

    monkeypatch.setattr(os, "write", flaky_write)
    with pytest.raises(OutputError, match="No space left on device"):
        run_batch(offline_grader, BatchOptions(src, out, chunk_size=50))
    monkeypatch.setattr(os, "write", real_write)
    before = _jsonl(out)
    assert len(before) == 69  # the whole records before the failure, and no half record
    s = run_batch(offline_grader, BatchOptions(src, out, resume=True))
    assert s.torn_bytes == 0 and s.skipped == 69 and s.rows == 81
    assert sorted(r["line"] for r in _jsonl(out)) == list(range(1, 151))


def test_an_unusable_output_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id,question_id,answer\nr1,easy-2,hello\n")
    (tmp_path / "dir.csv").mkdir()
    for target, why in [(tmp_path / "no" / "such" / "out.csv", "the folder for OUTPUT does not exist"),
                        (tmp_path / "dir.csv", "OUTPUT is a directory")]:
        r = subprocess.run(_grader_cmd("batch", src, "-o", target, "--judge", "none"), env=ENV,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert _error_lines(r.stderr) == [f"error: {target}: {why}"]
        assert "judge:" not in r.stderr  # stopped before the grader (and its model) was set up


# ----------------------------------------------------------------------------------------- one writer


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(
    tmp_path: Path, seed_rubrics_dir: Path
) -> None:
    n = 600
    src = write_answers(load_rubrics(seed_rubrics_dir), tmp_path / "answers.jsonl", n, seed=2)
    out = tmp_path / "out.jsonl"
    args = ("batch", src, "-o", out, "--judge", "none", "--rubrics", seed_rubrics_dir, "--no-progress")
    first = subprocess.Popen(_grader_cmd(*args, "--chunk-size", "16"), env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while (not out.exists() or out.stat().st_size == 0) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, "the first run ended before the second could try"
        for extra in ("--resume", "--force"):
            second = run_cli(*args, extra)
            assert second.code == 2, second.err
            assert f"error: {out}: another `grader batch` run is writing this file (pid {first.pid})" in second.err
    finally:
        _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert sorted(r["line"] for r in _jsonl(out)) == list(range(1, n + 1)), "every row once, none twice"


# ------------------------------------------------------------------------------------------ CSV input


def test_a_quoted_answer_over_a_thousand_lines_is_one_record(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    long_answer = "\n".join(["Pruning removes weights."] * 600 + ["r9,easy-2,this line only looks like a row"]
                            + ["It makes the model smaller."] * 600)
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerows([["id", "question_id", "answer"], ["r1", "easy-2", ANSWER], ["r2", "easy-2", long_answer],
                     ["r3", "easy-3", "A language model predicts the next word."]])
    out = tmp_path / "out.jsonl"
    r = run_cli("batch", src, "-o", out, "--judge", "none", "--rubrics", seed_rubrics_dir, "--no-progress",
                "--max-answer-chars", "0")
    assert r.code == 0, r.err
    recs = {x["id"]: x for x in _jsonl(out)}
    assert sorted(recs) == ["r1", "r2", "r3"]  # no record for a row that does not exist
    assert recs["r2"]["status"] == "graded" and recs["r2"]["line"] == 3
    assert recs["r3"]["line"] == 3 + 1201


IDS = ["a b", "two\nlines", "=1+1", "+cmd|' /C calc'!A0", "-2", "@SUM(A1:A9)", "\tTAB", "\rCR", "'quoted",
       "  padded  ", "plain"]


def unescape_cell(cell: str) -> str:
    """The documented escape: a leading apostrophe marks text (spreadsheets hide it); one is dropped."""
    return cell[1:] if cell.startswith("'") else cell


def test_csv_ids_come_back_exactly_and_formulas_cannot_run(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)  # as spreadsheets write it: CRLF line ends, a lone CR quoted
        w.writerow(["id", "question_id", "answer"])
        w.writerows([[i, "easy-2", f"{ANSWER} ({n})"] for n, i in enumerate(IDS)])
        w.writerow(["=HYPERLINK(\"http://x\")", "nope-1", "unknown question"])
    out = tmp_path / "out.csv"
    args = ("batch", src, "-o", out, "--judge", "none", "--rubrics", seed_rubrics_dir, "--no-progress")
    assert run_cli(*args).code == 0
    recs = sorted(_csv_records(out), key=lambda r: int(r["line"]))
    assert [unescape_cell(r["id"]) for r in recs] == [*IDS, '=HYPERLINK("http://x")']
    assert {r["status"] for r in recs[:-1]} == {"graded"}
    for r in recs:
        for cell in r.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"a spreadsheet would run {cell!r}"

    # Cut the file inside the quoted id that holds a line break, as a kill mid-write would, and resume.
    data = out.read_bytes()
    cut = data.index(b'"two\n') + len(b'"two\n')
    out.write_bytes(data[:cut])
    r = run_cli(*args, "--resume")
    assert r.code == 0, r.err
    again = _csv_records(out)
    assert sorted(unescape_cell(x["id"]) for x in again) == sorted([*IDS, '=HYPERLINK("http://x")'])
    assert len({x["line"] for x in again}) == len(IDS) + 1


# -------------------------------------------------------------------------------------- broken Unicode


def test_lone_surrogates_and_unclosed_strings_become_error_records_in_a_judged_batch(
    tmp_path: Path, seed_rubrics_dir: Path
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": "r1", "question_id": "easy-2", "answer": ANSWER}) + "\n"
        + '{"id": "r2", "question_id": "easy-2", "answer": "caf\\ud800 latte"}\n'
        + '{"id": "r3\\udcff", "question_id": "easy-2", "answer": "fine"}\n'
        + '{"id": "r4", "question_id": "easy-2", "answer": "never closed}\n'
        + json.dumps({"id": "r5", "question_id": "easy-3", "answer": "A language model predicts words."}) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    with FaultServer() as server:
        args = ("batch", src, "-o", out, "--judge", "openai", "--base-url", server.base_url, "--model", MODEL,
                "--rubrics", seed_rubrics_dir, "--no-progress", "--no-cache")
        r = run_cli(*args)
        assert r.code == 0, r.err
        recs = {x["line"]: x for x in _jsonl(out)}
        assert sorted(recs) == [1, 2, 3, 4, 5]
        assert recs[1]["status"] == "graded" and recs[5]["status"] == "graded"
        assert recs[2]["error"] == "field 'answer' holds a lone surrogate \\ud800 at character 3, which is not text"
        assert recs[3]["id"] == "r3\ufffd" and "lone surrogate \\udcff" in recs[3]["error"]
        assert recs[4]["error"] == ("invalid JSON: the answer text is not closed "
                                    "(unterminated string starting at column 49)")
        again = run_cli(*args, "--resume")
        assert again.code == 0, again.err
    assert len(_jsonl(out)) == 5


def test_grade_refuses_undecodable_arguments_and_endless_files(seed_rubrics_dir: Path) -> None:
    base = ["grade", "-q", "easy-2", "--judge", "none", "--rubrics", str(seed_rubrics_dir)]
    r = subprocess.run([sys.executable.encode(), b"-m", b"grader", *(a.encode() for a in base),
                        b"--answer", b"caf\xff answer"], env=ENV, capture_output=True, timeout=120)
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    assert r.stderr.decode().strip() == "error: --answer: not UTF-8 (bad byte 0xff at character 3)"
    z = run_cli(*base, "--answer-file", "/dev/zero")
    assert z.code == 2 and "error: /dev/zero: larger than 80,004 bytes: refusing to read it" in z.err


def test_eval_skips_a_lone_surrogate_row_instead_of_crashing(tmp_path: Path) -> None:
    rows = [{"question_id": "q1", "question": "What is pruning?", "reference_answer": "Removing weights.",
             "answer": a, "score": s} for a, s in [("It removes weights.", 5), ("Weights go away.", 4),
                                                    ("No idea.", 0), ("Something.", 1)]]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    text += ('{"question_id": "q1", "question": "What is pruning?", "reference_answer": "Removing weights.", '
             '"answer": "\\ud800", "score": 1}\n')
    data = tmp_path / "set.jsonl"
    data.write_text(text)
    r = run_cli("eval", data, "--judge", "none", "--resamples", "0")
    assert r.code == 0, r.err
    assert f"warning: skipped row: {data}:5: answer: holds a lone surrogate \\ud800 at character 0" in r.err
    strict = run_cli("eval", data, "--judge", "none", "--resamples", "0", "--strict")
    assert strict.code == 2 and "Traceback" not in strict.err
    assert _error_lines(strict.err) == [
        f"error: {data}:5: answer: holds a lone surrogate \\ud800 at character 0, which is not text"]


# --------------------------------------------------------------------------------------------- secrets


def test_an_endpoint_that_echoes_headers_never_shows_the_key(tmp_path: Path, seed_rubrics_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-live-0123456789abcdefSECRET"
    custom = "hunter2-not-a-pattern-key"
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "r1", "question_id": "easy-2", "answer": ANSWER}) + "\n")
    with FaultServer(default="echo_headers", reject_json_schema=False) as server:
        for key in (secret, custom):
            monkeypatch.setenv("OPENAI_API_KEY", key)
            judge = ("--judge", "openai", "--base-url", server.base_url, "--model", MODEL,
                     "--rubrics", seed_rubrics_dir)
            g = run_cli("grade", "-q", "easy-2", "--answer", ANSWER, "--json", *judge)
            assert g.code == 0, g.err
            assert "invalid credentials; request headers were" in g.out  # the echo did reach us ...
            i = (g.out + g.err).find(key)
            assert i < 0, (g.out + g.err)[max(0, i - 400):i + 40]
            assert "Bearer ***" in g.out  # ... with the key masked
            out = tmp_path / f"out-{len(key)}.jsonl"
            b = run_cli("batch", src, "-o", out, "--no-progress", *judge)
            assert b.code == 0, b.err
            assert key not in out.read_text() + b.err and "Bearer ***" in out.read_text()
    for cache in (p for p in tmp_path.glob(".grader-cache/**/*") if p.is_file()):
        assert secret.encode() not in cache.read_bytes() and custom.encode() not in cache.read_bytes()


# ------------------------------------------------------------------------------------------- config


def test_misspelt_config_keys_and_unbounded_numbers_are_refused(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    base = ["grade", "-q", "easy-2", "--answer", ANSWER, "--judge", "none", "--rubrics", str(seed_rubrics_dir)]
    cases = {
        "a.toml": ("[judge]\nmodel = 'm'\nfallbak = false\n",
                   "a.toml:3: judge.fallbak: unknown key 'fallbak' in [judge]; did you mean 'fallback'?"),
        "b.yaml": ("combine:\n  judge_weigth: 0.5\n",
                   "b.yaml:2: combine.judge_weigth: unknown key 'judge_weigth' in [combine]; did you mean 'judge_weight'?"),
        "c.toml": ("[judgee]\nmodel = 'm'\n", "c.toml:1: judgee: unknown section 'judgee'; did you mean 'judge'?"),
        "d.toml": ("[combine]\njudge_weight = inf\n",
                   "d.toml:2: combine.judge_weight: must be a finite number (not inf or nan)"),
        "e.toml": ("[judge]\ntimeout = 1e12\n", "e.toml:2: judge.timeout: Input should be less than or equal to 3600"),
    }
    for name, (text, expected) in cases.items():
        cfg = tmp_path / name
        cfg.write_text(text)
        r = run_cli(*base, "--config", cfg)
        assert r.code == 2, (name, r.err)
        assert r.err.strip() == f"error: {tmp_path}/{expected}"


def _rubric_copy(seed_rubrics_dir: Path, dest: Path, edit: str) -> Path:
    folder = dest / "rubrics" / "interview"
    folder.mkdir(parents=True)
    text = (seed_rubrics_dir / "interview" / "easy-2.yaml").read_text()
    (folder / "easy-2.yaml").write_text(text.replace("max_score: 5.0\n", edit))
    return dest / "rubrics"


def test_a_rubric_with_an_infinite_score_or_an_alias_bomb_is_refused(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    inf = _rubric_copy(seed_rubrics_dir, tmp_path / "inf", "max_score: .inf\n")
    r = run_cli("grade", "-q", "easy-2", "--answer", ANSWER, "--judge", "none", "--json", "--rubrics", inf)
    assert r.code == 2 and "'.inf' is not a finite number" in r.err and "easy-2.yaml:" in r.err

    bomb = "".join(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9 if i else ["lol"] * 9) + "]\n" for i in range(9))
    assert len(bomb) < 700
    bombed = _rubric_copy(seed_rubrics_dir, tmp_path / "bomb", "max_score: 5.0\n" + bomb)
    r = run_cli("grade", "-q", "easy-2", "--answer", ANSWER, "--judge", "none", "--rubrics", bombed)
    assert r.code == 2 and "YAML aliases (*l0) are not accepted" in r.err


# -------------------------------------------------------------------------------- endpoints that wait


def test_retry_after_an_hour_opens_the_breaker_for_the_whole_run(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    n = 12
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"r{i}", "question_id": "easy-2", "answer": f"{ANSWER} {i}"}) + "\n"
                           for i in range(n)))
    with FaultServer(default="wait_long") as server:
        judge = ("--judge", "openai", "--base-url", server.base_url, "--model", MODEL, "--rubrics",
                 seed_rubrics_dir, "--no-progress", "--no-cache", "--concurrency", "2")
        fb = run_cli("batch", src, "-o", tmp_path / "fb.jsonl", *judge)
        asked = server.count
        nofb = run_cli("batch", src, "-o", tmp_path / "nofb.jsonl", *judge, "--no-fallback")
    assert fb.code == 0, fb.err
    recs = _jsonl(tmp_path / "fb.jsonl")
    assert [r["status"] for r in recs] == ["fallback"] * n
    assert all("asked to wait 3600 s (Retry-After)" in r["warnings"][0] for r in recs)
    # Not n answers x (1 + retries) requests: the breaker opened at the first Retry-After.
    assert asked <= 2 * 2  # per call in flight (--concurrency 2): a json_schema refusal, one 429
    assert nofb.code == 3, nofb.err
    assert _error_lines(nofb.err) == [
        f"error: {n} row(s) unscored: the judge failed and --no-fallback forbids the offline score "
        f"(see their records in {tmp_path / 'nofb.jsonl'})"
    ]
    assert {r["status"] for r in _jsonl(tmp_path / "nofb.jsonl")} == {"unscored"}


def test_csv_reader_never_splits_a_record_it_can_parse(tmp_path: Path) -> None:
    """The csv module's reading, not a line count, decides where a record ends (regression for a line cap)."""
    from grader.pipeline.batch_io import read_rows

    body = "\n".join(f"line {i}" for i in range(5000))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["id", "question_id", "answer"], ["big", "q", body],
                                                    ["next", "q", "x"]])
    p = tmp_path / "a.csv"
    p.write_text(buf.getvalue())
    rows = list(read_rows(p))
    assert [(r.line, r.id, r.error) for r in rows] == [(2, "big", None), (5002, "next", None)]
    assert rows[0].answer == body
    shutil.rmtree(tmp_path, ignore_errors=True)
