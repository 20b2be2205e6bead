"""Streaming readers, appending writers and resume: one bad row never spoils its neighbours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.errors import InputError
from grader.pipeline.batch_io import Columns, detect_format, read_rows
from grader.pipeline.output_file import OutputFile
from grader.pipeline.resume import load_resume_state


def _rows(path: Path, cols: Columns | None = None) -> list[tuple[int, str | None, str | None, str | None, str | None]]:
    return [(r.line, r.id, r.question_id, r.answer, r.error) for r in read_rows(path, cols)]


def test_csv_broken_rows_are_isolated_with_their_lines(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(
        b"id,question_id,answer\n"
        b"r1,easy-2,plain answer\n"
        b'r2,easy-2,"multi\nline, with comma"\n'
        b'r3,easy-2,"bad "quote" here"\n'
        b"r4,easy-2\n"
        b"r5,easy-2,caf\xe9 latin-1\n"
        b"\n"
        b'r6,easy-2,"unterminated\n'
        b"r7,easy-2,after the bad one\n"
        b"r8,easy-2,too,many\n"
    )
    got = _rows(p)
    assert got[0] == (2, "r1", "easy-2", "plain answer", None)
    assert got[1] == (3, "r2", "easy-2", "multi\nline, with comma", None)
    assert got[2][:3] == (5, "r3", "easy-2") and got[2][4] is not None and got[2][4].startswith("bad CSV quoting")
    assert got[3][:2] == (6, "r4") and "missing answer column 'answer'" in got[3][4]
    assert got[4][:2] == (7, "r5") and got[4][4] == "invalid UTF-8 (byte 13 of the row)"
    assert got[5][0] == 9 and got[5][4].startswith("bad CSV quoting")
    assert got[6] == (10, "r7", "easy-2", "after the bad one", None)
    assert got[7][:2] == (11, "r8") and "4 fields" in got[7][4]
    assert len(got) == 8


def test_csv_column_mapping_and_missing_header_column(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text("key,qid,text\nk1,easy-1,hello\n")
    assert _rows(p, Columns(id="key", question_id="qid", answer="text")) == [(2, "k1", "easy-1", "hello", None)]
    with pytest.raises(InputError, match=r"a.csv:1: no column .question_id. in the header \(columns: key, qid, text\); map it with --question-id-col"):
        _rows(p)


def test_csv_big_answer_is_read_whole(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    big = "word " * 220_000
    p.write_text(f'id,question_id,answer\nbig,easy-2,"{big}"\nsmall,easy-2,ok\n')
    got = _rows(p)
    assert got[0][3] == big and got[1] == (3, "small", "easy-2", "ok", None)


def test_jsonl_broken_rows(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(
        b'{"id": 1, "question_id": "easy-2", "answer": "ok"}\n'
        b'{"id": 2, "question_id": "easy-2"\n'
        b'{"id": 3, "question_id": "easy-2"}\n'
        b'{"id": 4, "question_id": "easy-2", "answer": "caf\xe9"}\n'
        b"[1, 2]\n"
        b"\n"
        b'{"id": 5, "question_id": "easy-2", "answer": 7}\n'
        b'{"id": 6, "answer": "no question"}\n'
        b'{"id": 7, "question_id": "easy-2", "answer": "last, no newline"}'
    )
    got = _rows(p)
    assert got[0] == (1, "1", "easy-2", "ok", None)
    assert got[1][0] == 2 and got[1][4].startswith("invalid JSON")
    assert got[2] == (3, "3", "easy-2", None, "missing field 'answer'")
    assert got[3][:2] == (4, "4") and got[3][4].startswith("invalid UTF-8")
    assert got[4] == (5, None, None, None, "row is not a JSON object")
    assert got[5] == (7, "5", "easy-2", None, "field 'answer' is not a string")
    assert got[6] == (8, "6", None, None, "missing field 'question_id'")
    assert got[7] == (9, "7", "easy-2", "last, no newline", None)


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(Path("x.CSV")) == "csv" and detect_format(Path("x.jsonl")) == "jsonl"
    with pytest.raises(InputError, match="cannot tell the format"):
        detect_format(tmp_path / "x.txt")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_writer_appends_and_resume_drops_torn_line(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out.{fmt}"
    recs = [{"id": f"r{i}", "line": i + 2, "score": 1.5, "feedback": "a\nb", "warnings": ["w"]} for i in range(3)]
    with OutputFile(out, fmt) as w:  # type: ignore[arg-type]
        w.start()
        w.write(recs[:2])
    with OutputFile(out, fmt) as w:  # type: ignore[arg-type]
        w.start()
        w.write(recs[2:])
    size = out.stat().st_size
    # A kill in the middle of a write: half a record, no newline.
    with out.open("ab") as f:
        f.write(b'{"id": "r9", "li' if fmt == "jsonl" else b"r9,11,easy")
    state = load_resume_state(out, fmt)  # type: ignore[arg-type]
    assert state.lines() == [2, 3, 4] and len(state) == 3
    state.check(3, "r1", out)
    with pytest.raises(InputError, match="line 3 has another id than the input's 'r7'"):
        state.check(3, "r7", out)
    assert state.torn_bytes > 0 and out.stat().st_size == size
    lines = out.read_text().splitlines()
    if fmt == "jsonl":
        assert json.loads(lines[0])["feedback"] == "a\nb" and len(lines) == 3
    else:
        assert lines[0].startswith("id,line,") and lines[1].startswith("r0,2,") and len(lines) == 4
        assert ",a b," in lines[1]  # newlines folded: one record per physical line


def test_resume_rejects_a_foreign_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"hello": 1}\n')
    with pytest.raises(InputError, match="not a grader output record"):
        load_resume_state(out, "jsonl")
    state = load_resume_state(tmp_path / "missing.jsonl", "jsonl")
    assert len(state) == 0 and 5 not in state
    state.add(5, "a")
    state.add(100_000, None)  # grows to any line number; a record without id matches any row
    assert 5 in state and 4 not in state and 100_000 in state and len(state) == 2
    with pytest.raises(InputError, match="written for another input"):
        state.check(5, "b", out)
    state.check(5, "a", out)
    state.check(100_000, "anything", out)
    state.check(6, "not done yet", out)


def test_synthetic_answers_are_deterministic_and_valid(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    from grader.pipeline.synthetic import write_answers
    from grader.rubric.store import find_rubric, load_rubrics

    rubrics = load_rubrics(seed_rubrics_dir)
    a = write_answers(rubrics, tmp_path / "a.jsonl", 200, seed=5).read_text()
    b = write_answers(rubrics, tmp_path / "b.jsonl", 200, seed=5).read_text()
    c = write_answers(rubrics, tmp_path / "c.jsonl", 200, seed=6).read_text()
    assert a == b and a != c
    rows = [json.loads(x) for x in a.splitlines()]
    assert len(rows) == 200 and len({r["id"] for r in rows}) == 200
    assert {r["kind"] for r in rows} >= {"full", "subset", "truncated", "perturbed", "mixed"}
    assert all(r["answer"].strip() for r in rows)
    for qid in {r["question_id"] for r in rows}:
        assert find_rubric(seed_rubrics_dir, qid).id == qid.split("/")[1]
    refs = {f"{r.bank}/{r.id}": r.reference_answer for r in rubrics}
    full = [r for r in rows if r["kind"] == "full"]
    assert all(r["answer"] == " ".join(refs[r["question_id"]].split()) for r in full)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": 7, "answer": "no end\n', "the answer text is not closed (unterminated string starting at column 21)"),
        ('{"id": 7, "answer": "no end', "the answer text is not closed (unterminated string starting at column 21)"),
        ('{"id": 7, "answer": "a\tb"}', "the answer text holds a raw control character at column 23; "
                                        "write a tab as \\t and a line break as \\n"),
        ('{"id": 7, "answer": "x",}', "expected a field name in double quotes at column 25 (a trailing comma?)"),
        ('{"id": 7 "answer": "x"}', "expected a comma or a closing bracket at column 10"),
        ('{"id": 7, "answer": x}', "not a JSON value at column 21 (text must be in double quotes)"),
        ('{"id": 7, "answer": "x"} {}', "more than one JSON value on the line (extra text at column 26)"),
        ('{"id": 7, "answer": "\\q"}', "invalid backslash escape at column 22 (a literal backslash is written \\\\)"),
    ],
)
def test_jsonl_errors_are_said_in_a_users_words(tmp_path: Path, line: str, expected: str) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text(line if line.endswith("\n") else line + "\n")
    (row,) = read_rows(p)
    assert row.line == 1 and row.error == f"invalid JSON: {expected}"
