"""What `grader batch` tells while and after it runs: progress in rows with rate and ETA, a summary of the whole
file after --resume, records in input order, and CSV a person can read (issue 13, item 3)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from cli_runner import run_cli

from grader.pipeline.output_file import CSV_FIELDS
from grader.pipeline.synthetic import write_answers
from grader.rubric.store import load_rubrics

GOOD = "Pruning removes the least important weights, so the model is smaller and inference is faster."
PROGRESS = re.compile(r"^grading (\d+)/(\d+) rows \((\d+)%\) · read (\d+) · (.*)$")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_bytes().split(b"\n") if x]


@pytest.mark.slow
def test_progress_counts_rows_with_rate_and_eta(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    n = 3000
    src = write_answers(load_rubrics(seed_rubrics_dir), tmp_path / "answers.jsonl", n, seed=13)
    out = tmp_path / "out.jsonl"
    r = run_cli("batch", src, "-o", out, "--judge", "none", "--rubrics", seed_rubrics_dir)
    assert r.code == 0, r.err
    lines = r.err.splitlines()
    loaded = next(i for i, x in enumerate(lines) if x.startswith("loading the embedding model… done ("))
    shown = [(i, PROGRESS.match(x)) for i, x in enumerate(lines) if x.startswith("grading ")]
    assert len(shown) >= 3 and all(m is not None for _, m in shown), lines
    assert shown[0][0] > loaded  # loading the model is its own step, before any row
    done_before = -1
    for _, m in shown:
        assert m is not None
        done, total, pct = int(m.group(1)), int(m.group(2)), int(m.group(3))
        assert total == n
        assert abs(pct - 100 * done / total) <= 2  # the percentage is rows done / rows total
        assert done >= done_before
        done_before = done
        if done > 0:
            assert re.search(r"\d+\.\d rows/s · ETA \d:\d\d:\d\d", m.group(5)), m.group(0)  # after the first batch
    assert shown[-1][1] is not None and shown[-1][1].group(1) == str(n)
    assert len(_jsonl(out)) == n


def test_records_come_out_in_input_order_with_errors_in_place(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    rows = [("r1", "easy-2", GOOD), ("r2", "nope-1", "unknown"), ("r3", "easy-3", "A model predicts words."),
            ("r4", "easy-2", ""), ("r5", "easy-1", "It is a short answer."), ("r6", "easy-2", GOOD + " Also."),
            ("r7", "easy-2", "x" * 30_000)]
    src = tmp_path / "in.csv"
    with src.open("w", newline="") as f:
        csv.writer(f).writerows([("id", "question_id", "answer"), *rows])
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"out.{fmt}"
        args = ("batch", src, "-o", out, "--judge", "none", "--rubrics", seed_rubrics_dir, "--no-progress",
                "--chunk-size", "2")
        assert run_cli(*args).code == 0
        if fmt == "jsonl":
            got = [(r["id"], r["status"]) for r in _jsonl(out)]
        else:
            with out.open(newline="") as f:
                got = [(r["id"], r["status"]) for r in csv.DictReader(f)]
        assert got == [("r1", "graded"), ("r2", "error"), ("r3", "graded"), ("r4", "error"), ("r5", "graded"),
                       ("r6", "graded"), ("r7", "error")]
        # A resumed file ends in input order too.
        data = out.read_bytes()
        out.write_bytes(data[: len(data) // 2])
        assert run_cli(*args, "--resume").code == 0
        lines = [r["line"] for r in _jsonl(out)] if fmt == "jsonl" else [
            int(r["line"]) for r in csv.DictReader(out.open(newline=""))]
        assert lines == sorted(lines) and len(lines) == len(rows)


def test_the_summary_after_resume_covers_the_whole_file(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    src = write_answers(load_rubrics(seed_rubrics_dir), tmp_path / "answers.jsonl", 40, seed=21)
    with src.open("a") as f:
        f.write(json.dumps({"id": "bad", "question_id": "nope-1", "answer": "x"}) + "\n")
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    args = ("batch", src, "-o", out, "--judge", "none", "--rubrics", seed_rubrics_dir, "--no-progress")
    assert run_cli(*args).code == 0
    records = _jsonl(out)
    out.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records[:15]))
    r = run_cli(*args, "--resume", "--summary-json", summary)
    assert r.code == 0, r.err
    s = json.loads(summary.read_text())
    final = _jsonl(out)
    scores = [x["score"] for x in final if x["score"] is not None]
    assert s["rows"] == 26 and s["skipped_already_done"] == 15 and s["rows_in_output"] == 41
    assert s["graded"] == 40 and s["errors"] == 1 and s["error_lines"] == [41]
    assert s["mean_score"] == pytest.approx(sum(scores) / len(scores), abs=1e-4)
    assert sum(s["distribution"].values()) == 40
    assert "rows in OUTPUT" in r.err and "41" in r.err


def test_csv_output_has_flat_readable_columns(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "question_id": "easy-2", "answer": GOOD}) + "\n"
                   + json.dumps({"id": "b", "question_id": "easy-2", "answer": "Pruning is a kind of tree care."})
                   + "\n")
    out, full = tmp_path / "out.csv", tmp_path / "full.csv"
    base = ("--judge", "none", "--rubrics", seed_rubrics_dir, "--no-progress")
    assert run_cli("batch", src, "-o", out, *base).code == 0
    assert run_cli("batch", src, "-o", full, "--full", *base).code == 0
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        recs = list(reader)
    assert reader.fieldnames == CSV_FIELDS
    for r in recs:
        assert not any(c.lstrip().startswith(("{", "[")) for c in r.values()), "no JSON in the readable CSV"
    assert "removing weights that are less important" in recs[0]["met"]
    assert recs[1]["missed"] and recs[1]["met"] == ""
    with full.open(newline="") as f:
        r = next(csv.DictReader(f))
    assert json.loads(r["result"])["score"] == float(r["score"])
    assert {c["status"] for c in json.loads(r["criteria"])} == {"met"}
