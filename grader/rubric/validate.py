"""`grader rubric validate`: every problem of every rubric file, not just the first."""

from __future__ import annotations

from pathlib import Path

from grader.errors import InputError
from grader.models import Rubric
from grader.rubric.store import RUBRIC_SUFFIXES, check_rubric, rubric_files


def validate_path(path: str | Path) -> tuple[list[Rubric], list[InputError]]:
    """Check a rubric file or every *.yaml/*.yml under a folder; other files are ignored."""
    path = Path(path)
    if path.is_file() and path.suffix not in RUBRIC_SUFFIXES:
        return [], [InputError("not a rubric file (expected .yaml or .yml)", file=path)]
    files = rubric_files(path)
    if not files:
        return [], [InputError("no rubric files (*.yaml, *.yml) here", file=path)]
    rubrics: list[Rubric] = []
    problems: list[InputError] = []
    seen: dict[tuple[str, str], Path] = {}
    for f in files:
        check = check_rubric(f)
        problems.extend(check.problems)
        rubric = check.rubric
        if rubric is None:
            continue
        key = (rubric.bank, rubric.id)
        if key in seen:
            problems.append(
                InputError(f"duplicate question id {rubric.id!r} in bank {rubric.bank!r} (also in {seen[key]})",
                           file=f, line=check.line_of("id"), field="id")
            )
            continue
        seen[key] = f
        if f.stem != rubric.id:
            # Lookup by id goes by file name first: a mismatch makes it slow and surprising.
            problems.append(
                InputError(f"id {rubric.id!r} does not match the file name {f.name!r}", file=f,
                           line=check.line_of("id"), field="id")
            )
        elif not check.problems:
            rubrics.append(rubric)
    return rubrics, problems
