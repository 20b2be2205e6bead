"""The batch contract, checked on generated answer files (Hypothesis), through the batch code path with the
real encoder: every good row graded exactly once, every bad row exactly one error record, ids written back
as read, and the output resumable from any byte where a run could have stopped.

Files are small (at most 7 rows) so that 200+ of them run in about a minute on one loaded Grader."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.pipeline.batch import BatchOptions, run_batch
from grader.pipeline.grader import Grader
from grader.pipeline.output_file import unescape_cell

MAX_CHARS = 300
QIDS = ["easy-1", "easy-2", "medium-3"]
EXAMPLES = 200

# Any text a person could type or paste (no lone surrogates: CSV cannot carry them, JSONL gets its own case).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
ANSWER = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=120)
FORMULA_IDS = st.sampled_from(["=1+1", "+x", "-3", "@A1", "\tt", "\rr", "'q", "a b", "two\nlines", ""])
IDS = st.one_of(TEXT, FORMULA_IDS)


@dataclass
class Row:
    line: int  # where the row starts in the file
    id: str | None  # the id a record must carry (None: not checked, the row is too broken to have one)
    good: bool


@dataclass
class Case:
    fmt: str
    data: bytes
    rows: list[Row]


def _csv_bytes(values: list[str], quote_all: bool, crlf: bool) -> bytes:
    buf = io.StringIO()
    # With CRLF the writer quotes any field holding \r or \n; with \n line ends, QUOTE_ALL does.
    writer = csv.writer(buf, lineterminator="\r\n" if crlf else "\n",
                        quoting=csv.QUOTE_ALL if quote_all or not crlf else csv.QUOTE_MINIMAL)
    writer.writerow(values)
    return buf.getvalue().encode("utf-8")


def _semantic_fault(draw: st.DrawFn, kind: str, qid: str, answer: str) -> tuple[str, str]:
    """A well-formed row that still cannot be graded: unknown question, blank or over-long answer."""
    if kind == "unknown_qid":
        return "nope-1", answer
    if kind == "blank_answer":
        return qid, draw(st.sampled_from(["", " ", "\t\n "]))
    if kind == "too_long":
        return qid, "word " * (MAX_CHARS // 5 + 1)
    return qid, answer


@st.composite
def csv_files(draw: st.DrawFn) -> Case:
    crlf = draw(st.booleans())
    quote_all = draw(st.booleans())
    out = bytearray(b"\xef\xbb\xbf" if draw(st.booleans()) else b"")
    out += _csv_bytes(["id", "question_id", "answer"], quote_all, crlf)
    rows: list[Row] = []
    for _ in range(draw(st.integers(0, 7))):
        if draw(st.integers(0, 4)) == 0:
            out += b"\r\n" if crlf else b"\n"  # blank lines are skipped
        line = out.count(b"\n") + 1
        kind = draw(st.sampled_from(["good", "good", "good", "unknown_qid", "blank_answer", "too_long",
                                     "missing_answer", "extra_field", "bad_utf8", "bad_quote"]))
        rid = draw(IDS)
        qid = draw(st.sampled_from(QIDS))
        answer = draw(ANSWER)
        expect = rid if rid != "" else None
        good = kind == "good" and bool(answer.strip())
        qid, answer = _semantic_fault(draw, kind, qid, answer)
        if kind == "missing_answer":
            out += _csv_bytes([rid, qid], quote_all, crlf)
        elif kind == "extra_field":
            out += _csv_bytes([rid, qid, answer, "extra"], quote_all, crlf)
        elif kind == "bad_utf8":
            out += _csv_bytes([rid, qid, "\x00BAD\x00" + answer], quote_all, crlf).replace(b"\x00BAD\x00", b"\xff\xfe")
            expect = None  # the id is read with replacement characters if the bad bytes precede it
        elif kind == "bad_quote":
            out += b'r-bad,easy-2,"a "stray" quote"' + (b"\r\n" if crlf else b"\n")
            expect = None
        else:
            out += _csv_bytes([rid, qid, answer], quote_all, crlf)
        rows.append(Row(line, expect, good))
    return Case("csv", bytes(out), rows)


@st.composite
def jsonl_files(draw: st.DrawFn) -> Case:
    out = bytearray()
    rows: list[Row] = []
    n = draw(st.integers(0, 7))
    for k in range(n):
        if draw(st.integers(0, 4)) == 0:
            out += b"\n"
        line = out.count(b"\n") + 1
        kind = draw(st.sampled_from(["good", "good", "good", "int_id", "unknown_qid", "blank_answer", "too_long",
                                     "missing_answer", "not_string", "unterminated", "not_object", "bad_utf8",
                                     "surrogate"]))
        rid: object = draw(IDS)
        qid = draw(st.sampled_from(QIDS))
        answer = draw(ANSWER)
        ascii_only = draw(st.booleans())
        good = kind in ("good", "int_id") and bool(answer.strip())
        if kind == "int_id":
            rid = draw(st.integers(-10**6, 10**6))
        expect: str | None = None if rid == "" else str(rid)
        qid, answer = _semantic_fault(draw, kind, qid, answer)
        obj: dict[str, object] = {"id": rid, "question_id": qid, "answer": answer}
        if kind == "missing_answer":
            del obj["answer"]
        elif kind == "not_string":
            obj["answer"] = 42
        text = json.dumps(obj, ensure_ascii=ascii_only)
        if kind == "unterminated":
            text = text[: text.rindex('"')]  # the answer's closing quote is lost
            expect = None
        elif kind == "not_object":
            text, expect = json.dumps([rid, qid, answer]), None
        elif kind == "surrogate":
            text = json.dumps({**obj, "answer": "@@A@@"}).replace('"@@A@@"', '"caf\\ud800"')
        raw = text.encode("utf-8")
        if kind == "bad_utf8":
            raw, expect = raw.replace(b'"answer": "', b'"answer": "\xff', 1), None
        last = k == n - 1
        out += raw + (b"" if last and draw(st.booleans()) else b"\n")
        rows.append(Row(line, expect, good))
    return Case("jsonl", bytes(out), rows)


def _records(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(x) for x in path.read_bytes().split(b"\n") if x]
    with path.open(newline="", encoding="utf-8") as f:
        recs = list(csv.DictReader(f))
    for r in recs:
        r["line"] = int(r["line"])
        r["id"] = unescape_cell(r["id"]) or None
        r["score"] = float(r["score"]) if r["score"] else None
    return recs


def _check(case: Case, recs: list[dict]) -> dict[int, float]:
    """The contract on one output; returns the scores by line."""
    by_line = {r["line"]: r for r in recs}
    assert len(by_line) == len(recs), "a row was written twice"
    assert sorted(by_line) == [r.line for r in case.rows], "every row exactly one record"
    for row in case.rows:
        rec = by_line[row.line]
        if row.id is not None:
            assert rec["id"] == row.id, "ids are written back exactly as read"
        if row.good:
            assert rec["status"] == "graded" and rec["score"] is not None, rec
        else:
            assert rec["status"] == "error" and rec["error"], rec
    return {line: r["score"] for line, r in by_line.items() if r["score"] is not None}


@pytest.fixture(scope="module")
def small_grader(offline_grader: Grader, seed_rubrics_dir: Path) -> Grader:
    g = Grader(offline_grader.settings, seed_rubrics_dir, max_answer_chars=MAX_CHARS)
    g._scorer = offline_grader.scorer  # one loaded model for every generated file
    return g


def test_the_batch_contract_holds_on_generated_files(small_grader: Grader) -> None:
    seen = {"files": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=st.one_of(csv_files(), jsonl_files()), out_fmt=st.sampled_from(["csv", "jsonl"]),
           cut=st.floats(0, 1))
    def contract(case: Case, out_fmt: str, cut: float) -> None:
        seen["files"] += 1
        with tempfile.TemporaryDirectory() as d:
            src, out = Path(d) / f"in.{case.fmt}", Path(d) / f"out.{out_fmt}"
            src.write_bytes(case.data)
            s = run_batch(small_grader, BatchOptions(src, out, chunk_size=4))
            assert s.rows == len(case.rows)
            scores = _check(case, _records(out))
            # Stopped anywhere (a kill mid-write leaves a torn tail): --resume completes the same file.
            data = out.read_bytes()
            out.write_bytes(data[: int(len(data) * cut)])
            run_batch(small_grader, BatchOptions(src, out, resume=True, chunk_size=4))
            again = _check(case, _records(out))
            assert again.keys() == scores.keys()
            for line, score in again.items():
                assert score == pytest.approx(scores[line], abs=2e-4)

    contract()
    assert seen["files"] >= EXAMPLES
