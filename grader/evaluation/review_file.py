"""The review loop's second half: a review CSV written by `grader batch --review-out`, read back as an eval set.

A person fills in `human_score`; the grade the grader gave sits in `grader_score` and is not used as a label.
Rows whose human_score is still empty are left out and counted in a note (they are not errors); a human_score
that is not a number, or is above max_score, is a bad row named by file, line and field.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from grader.errors import InputError, read_utf8
from grader.pipeline.review import REVIEW_COLUMNS, REVIEW_MARKERS

if TYPE_CHECKING:
    from grader.evaluation.datasets import Dataset


def is_review_file(path: Path) -> bool:
    """True when a CSV's header has the review file's own columns."""
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        return False
    return {h.strip() for h in header} >= REVIEW_MARKERS


def review_rows(path: Path) -> tuple[list[tuple[int, dict[str, str]]], int]:
    """(line, eval row) for every filled-in row, and how many rows still have an empty human_score."""
    reader = csv.DictReader(read_utf8(path, "review file", encoding="utf-8-sig").splitlines(keepends=True))
    missing = [c for c in ("question", "reference_answer", "answer", "human_score") if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"review file lacks column(s) {', '.join(missing)} (expected {', '.join(REVIEW_COLUMNS)})",
                         file=path, line=1)
    rows: list[tuple[int, dict[str, str]]] = []
    empty = 0
    for row in reader:
        if not (row.get("human_score") or "").strip():
            empty += 1
            continue
        rows.append((reader.line_num, {
            "question_id": row.get("question_id") or "",
            "question": row.get("question") or "",
            "reference_answer": row.get("reference_answer") or "",
            "answer": row.get("answer") or "",
            "score": (row.get("human_score") or "").strip(),
            "max_score": (row.get("max_score") or "").strip() or "5",
            "answer_id": row.get("id") or "",
        }))
    return rows, empty


def load_review(path: Path, strict: bool = False) -> Dataset:
    """The filled-in rows of a review file as an eval set; a note says how many rows were left out."""
    from grader.evaluation.datasets import _validate

    rows, empty = review_rows(path)
    ds = _validate(path, rows, strict)
    if empty:
        ds.notes.append(f"{path}: {empty} row(s) with an empty human_score left out (not reviewed yet)")
    return ds
