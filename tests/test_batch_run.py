"""The batch run loop in-process on the real model: one record per row, bad rows as error records, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.errors import InputError
from grader.pipeline.batch import BatchOptions, run_batch
from grader.pipeline.batch_io import Columns
from grader.pipeline.grader import Grader
from grader.pipeline.synthetic import write_answers
from grader.rubric.store import load_rubrics


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory, seed_rubrics_dir: Path) -> Path:
    return write_answers(load_rubrics(seed_rubrics_dir), tmp_path_factory.mktemp("b") / "a.jsonl", 30, seed=3)


def test_broken_csv_grades_good_rows_and_reports_bad_ones(tmp_path: Path, offline_grader: Grader) -> None:
    src = tmp_path / "in.csv"
    big = "pruning " * 140_000  # ~1 MB
    src.write_bytes(
        b"id,question_id,answer\n"
        b"ok1,easy-2,Pruning removes unimportant weights so the model is smaller.\n"
        b'bad-quote,easy-2,"broken "quoting" here"\n'
        b"no-answer,easy-2\n"
        b"unknown,nope-9,Some answer.\n"
        b"latin1,easy-2,caf\xe9 answer\n"
        + f"huge,easy-2,{big}\n".encode()
        + b"empty,easy-2,\n"
        b'ok2,easy-3,"A language model predicts\nthe next word."\n'
    )
    out = tmp_path / "out.jsonl"
    s = run_batch(offline_grader, BatchOptions(src, out))
    recs = {r["line"]: r for r in _records(out)}
    assert sorted(recs) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert s.rows == 8 and s.graded == 2 and s.errors == 6
    assert recs[2]["id"] == "ok1" and recs[2]["score"] is not None and recs[2]["error"] is None
    assert recs[9]["id"] == "ok2" and recs[9]["status"] == "graded"
    assert recs[3]["error"].startswith("bad CSV quoting") and recs[3]["score"] is None
    assert recs[4]["error"].startswith("missing answer column 'answer'")
    assert recs[5]["error"].startswith("unknown question id 'nope-9'")
    assert recs[6]["error"].startswith("invalid UTF-8")
    assert recs[7]["error"] == f"answer too long ({len(big)} chars > 20000)"
    assert recs[8]["error"] == "empty answer" and recs[8]["status"] == "error"
    assert s.error_lines == [3, 4, 5, 6, 7, 8]


def test_output_is_never_overwritten_without_force(tmp_path: Path, answers: Path, offline_grader: Grader) -> None:
    out = tmp_path / "out.csv"
    out.write_text("something precious\n")
    with pytest.raises(InputError, match="OUTPUT exists; use --resume to continue it or --force to replace it"):
        run_batch(offline_grader, BatchOptions(answers, out))
    assert out.read_text() == "something precious\n"
    s = run_batch(offline_grader, BatchOptions(answers, out, force=True))
    assert s.rows == 30 and out.read_text().startswith("id,line,question_id,score,")


def test_resume_completes_each_row_exactly_once(tmp_path: Path, answers: Path, offline_grader: Grader) -> None:
    full = tmp_path / "full.jsonl"
    run_batch(offline_grader, BatchOptions(answers, full, chunk_size=7))
    reference = {r["line"]: r for r in _records(full)}
    assert sorted(reference) == list(range(1, 31))

    part = tmp_path / "part.jsonl"
    lines = full.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[:13]) + lines[13][:40])  # 13 records and a torn one
    s = run_batch(offline_grader, BatchOptions(answers, part, resume=True, chunk_size=16))
    assert s.skipped == 13 and s.rows == 17 and s.torn_bytes == 40
    got = _records(part)
    assert sorted(r["line"] for r in got) == list(range(1, 31))
    for r in got:
        ref = reference[r["line"]]
        assert r["id"] == ref["id"]
        assert r["score"] == pytest.approx(ref["score"], abs=2e-4)
    # Resuming a finished file grades nothing.
    again = run_batch(offline_grader, BatchOptions(answers, part, resume=True))
    assert again.rows == 0 and again.skipped == 30


def test_column_mapping_and_full_records(tmp_path: Path, offline_grader: Grader) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"key": "k1", "q": "easy-2", "text": "Pruning drops weights."}) + "\n")
    out = tmp_path / "out.jsonl"
    run_batch(offline_grader, BatchOptions(src, out, columns=Columns("key", "q", "text"), full=True))
    (rec,) = _records(out)
    assert rec["id"] == "k1" and rec["line"] == 1 and rec["question_id"] == "easy-2"
    assert rec["result"]["embedding"]["signals"] and rec["result"]["score"] == rec["score"]
    assert {c["id"] for c in rec["criteria"]} == {c["id"] for c in rec["result"]["criteria"]}


def test_records_are_appended_batch_by_batch_within_a_window(tmp_path: Path, offline_grader: Grader,
                                                             seed_rubrics_dir: Path) -> None:
    src = write_answers(load_rubrics(seed_rubrics_dir), tmp_path / "a.jsonl", 150, seed=5)
    out = tmp_path / "out.jsonl"
    on_disk: list[tuple[int, int]] = []

    def progress(_offset: int, summary) -> None:  # type: ignore[no-untyped-def]
        on_disk.append((summary.rows, len(out.read_text().splitlines())))

    # One window holds the whole file, yet each encoder batch is written before the next one is encoded.
    batch_size = offline_grader.scorer.encoder.batch_size
    run_batch(offline_grader, BatchOptions(src, out, chunk_size=10_000), progress=progress)
    assert len(on_disk) == -(-150 // batch_size) >= 3
    assert all(rows == lines for rows, lines in on_disk)
    assert [rows for rows, _ in on_disk] == sorted({rows for rows, _ in on_disk})
    assert sorted(r["line"] for r in _records(out)) == list(range(1, 151))
