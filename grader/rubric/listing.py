"""The questions a rubric folder can grade, for `grader rubric list`: id, bank, max score, key points."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from grader.errors import InputError
from grader.rubric.store import check_rubric, rubric_files


class RubricEntry(BaseModel):
    id: str
    bank: str | None
    max_score: float
    key_points: int
    question: str
    path: str


@dataclass
class Listing:
    entries: list[RubricEntry] = field(default_factory=list)
    problems: list[InputError] = field(default_factory=list)


def list_rubrics(folder: str | Path, bank: str | None = None) -> Listing:
    """Every rubric under `folder` (only `bank`'s with a bank), sorted by bank and id; bad files are problems,
    not a stop. An unknown bank is an InputError naming the banks there are."""
    out = Listing()
    banks: set[str] = set()
    for path in rubric_files(folder):
        check = check_rubric(path)
        if check.rubric is None:
            out.problems.append(check.problems[0])
            continue
        r = check.rubric
        r_bank = r.bank or (path.parent.name if path.parent != Path(folder) else None)
        if r_bank:
            banks.add(r_bank)
        if bank is not None and r_bank != bank:
            continue
        out.entries.append(RubricEntry(id=r.id, bank=r_bank, max_score=r.max_score, key_points=len(r.criteria),
                                       question=r.question, path=str(path)))
    if bank is not None and bank not in banks:
        import difflib

        close = difflib.get_close_matches(bank, sorted(banks), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(f"no bank {bank!r} in {folder}/ (banks: {', '.join(sorted(banks)) or 'none'}){hint}",
                         field="bank")
    out.entries.sort(key=lambda e: (e.bank or "", _natural(e.id)))
    return out


def _natural(text: str) -> list[object]:
    """easy-2 before easy-10."""
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def render_listing(entries: list[RubricEntry]) -> str:
    """One line per question: bank/id, max score, key points, the question (long ones left to the terminal
    to wrap, so nothing is cut)."""
    if not entries:
        return "no rubrics"
    ids = [f"{e.bank}/{e.id}" if e.bank else e.id for e in entries]
    w = max(len("id"), *(len(i) for i in ids))
    lines = [f"{'id'.ljust(w)}  max  points  question"]
    for i, e in zip(ids, entries, strict=True):
        lines.append(f"{i.ljust(w)}  {e.max_score:>3g}  {e.key_points:>6}  {' '.join(e.question.split())}")
    lines.append(f"{len(entries)} question(s); grade one with: grader grade --question-id {entries[0].id} "
                 "--answer \"...\"")
    return "\n".join(lines)
