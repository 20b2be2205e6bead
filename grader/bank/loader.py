"""Read any supported bank file: the format is chosen by the file extension."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from grader.bank.markdown import parse_markdown_bank
from grader.bank.tabular import ColumnMap, parse_tabular_bank
from grader.errors import InputError
from grader.models import Question
from grader.rubric.yamlio import read_text

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".csv": "csv",
}


@dataclass
class Bank:
    name: str
    path: Path
    questions: list[Question] = field(default_factory=list)
    problems: list[InputError] = field(default_factory=list)


def bank_name_for(path: Path, name: str | None = None) -> str:
    """The bank's name: as given, else the file stem made safe for a folder and an id prefix."""
    if name:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise InputError(f"bank name {name!r} must be letters, digits, '.', '_' or '-'", field="--bank")
        return name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._")
    return slug or "bank"


def load_bank(path: str | Path, name: str | None = None, columns: ColumnMap | None = None,
              fmt: str | None = None) -> Bank:
    """Questions of one bank file. Rows that cannot be read are in ``.problems``; the rest are kept."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such bank file", file=path)
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise InputError(f"unknown bank format {path.suffix!r} (known: {known})", file=path)
    bank = bank_name_for(path, name)
    text = read_text(path)
    if fmt == "markdown":
        questions, problems = parse_markdown_bank(text, path, bank)
    else:
        questions, problems = parse_tabular_bank(text, path, bank, fmt, columns)
    return Bank(bank, path, questions, problems)
