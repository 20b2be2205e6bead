"""The review loop's first half: count why grades need a person, and write those answers to a review CSV.

The review file is made for a person with a spreadsheet: one row per flagged answer with the question, the
reference answer, the answer, the grader's score, the reasons, the per-point verdicts in one readable column and
an empty `human_score` column to fill in. `grader eval review.csv` and `grader tune review.csv` read it back as it
is (grader/evaluation/review_file.py): rows whose human_score is still empty are left out, and said so.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from grader.errors import InputError
from grader.models import CriterionResult, GradeResult, ReviewReason, Rubric

REVIEW_COLUMNS: tuple[str, ...] = (
    "id",
    "question_id",
    "question",
    "reference_answer",
    "answer",
    "grader_score",
    "max_score",
    "confidence",
    "reasons",
    "verdicts",
    "human_score",
)
# The columns that say a CSV is a review file (and not a plain eval set).
REVIEW_MARKERS: frozenset[str] = frozenset({"grader_score", "human_score", "reasons"})


class _Row(Protocol):
    id: str | None
    line: int
    answer: str | None


def reasons_text(reasons: Sequence[ReviewReason]) -> str:
    return "; ".join(f"{r.code}: {r.message}" for r in reasons)


def verdicts_text(criteria: Sequence[CriterionResult]) -> str:
    """Every key point in one cell: 'c1 met — text | c2 contradicted — text (comment)'."""
    parts = []
    for c in criteria:
        s = f"{c.id} {c.status} — {c.text}"
        if c.comment:
            s += f" ({c.comment})"
        parts.append(s)
    return " | ".join(parts)


def review_row(row_id: str, rubric: Rubric, answer: str, result: GradeResult) -> dict[str, str]:
    return {
        "id": row_id,
        "question_id": rubric.id,
        "question": rubric.question,
        "reference_answer": rubric.reference_answer,
        "answer": answer,
        "grader_score": "" if result.score is None else f"{result.score:g}",
        "max_score": f"{result.max_score:g}",
        "confidence": "" if result.confidence is None else f"{result.confidence:.2f}",
        "reasons": reasons_text(result.review),
        "verdicts": verdicts_text(result.criteria),
        "human_score": "",
    }


class ReviewTally:
    """Counts flagged grades by reason; with a path, also appends each flagged answer to the review CSV."""

    def __init__(self, path: Path | None = None, *, force: bool = False, append: bool = False) -> None:
        self.path = path
        self.graded = 0
        self.flagged = 0
        self.by_reason: dict[str, int] = {}
        self._fd: int | None = None
        if path is not None:
            if path.exists() and path.stat().st_size > 0 and not (force or append):
                raise InputError("review file exists; pass --force to replace it (a person may have filled it in)",
                                 file=path)
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
            self._fd = os.open(path, flags, 0o644)
            if os.fstat(self._fd).st_size == 0:
                self._write(dict(zip(REVIEW_COLUMNS, REVIEW_COLUMNS, strict=True)))

    def _write(self, row: dict[str, str]) -> None:
        assert self._fd is not None
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=REVIEW_COLUMNS, lineterminator="\n").writerow(row)
        os.write(self._fd, buf.getvalue().encode("utf-8"))

    def add(self, row: _Row, rubric: Rubric, result: GradeResult) -> None:
        self.graded += 1
        if not result.review:
            return
        self.flagged += 1
        for code in {r.code for r in result.review}:
            self.by_reason[code] = self.by_reason.get(code, 0) + 1
        if self._fd is not None:
            self._write(review_row(row.id or str(row.line), rubric, row.answer or "", result))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "graded": self.graded,
            "flagged": self.flagged,
            "by_reason": dict(sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
            "review_file": str(self.path) if self.path is not None else None,
        }

    def summary_line(self) -> str:
        """One line for the batch summary: how many answers were flagged, and why."""
        d = self.as_dict()
        if not self.flagged:
            return f"flagged for review: 0 of {self.graded}"
        why = ", ".join(f"{k} {v}" for k, v in d["by_reason"].items())
        line = f"flagged for review: {self.flagged} of {self.graded} ({self.flagged / max(self.graded, 1):.0%}) — {why}"
        if self.path is not None:
            line += f"; written to {self.path}"
        return line
