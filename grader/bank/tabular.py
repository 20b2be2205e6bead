"""Banks as rows: JSON (a list, or {"questions": [...]}), JSONL, YAML and CSV, with column mapping.

Each row becomes a Question. A bad row is reported (file, line or item, field) and skipped; the
good rows are still imported. A file that cannot be parsed at all raises one InputError.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from grader.errors import InputError
from grader.models import Question
from grader.rubric.yamlio import line_of, parse_yaml


@dataclass(frozen=True)
class ColumnMap:
    """Which column (or key) holds each field of a question."""

    id: str = "id"
    question: str = "question"
    reference: str = "reference_answer"
    difficulty: str = "difficulty"
    topic: str = "topic"
    max_score: str = "max_score"


@dataclass
class Row:
    values: dict[str, Any]
    line: int | None  # 1-based line in the file, when the format has one
    where: str  # "line 3" / "questions[2]": how the row is named in its question's source

    def error(self, message: str, path: Path, field: str | None = None) -> InputError:
        """An error about this row: by line where the format has lines, else named in the message."""
        prefix = "" if self.line is not None else f"{self.where}: "
        return InputError(f"{prefix}{message}", file=path, line=self.line, field=field)


def _json_rows(text: str, path: Path) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"bad JSON: {e.msg}", file=path, line=e.lineno) from e
    key = ""
    if isinstance(data, dict) and "questions" in data:
        data, key = data["questions"], "questions"
    if not isinstance(data, list):
        raise InputError('expected a list of questions or {"questions": [...]}', file=path, line=1)
    return [Row(item, None, f"{key}[{i}]" if key else f"[{i}]") for i, item in enumerate(data)]


def _jsonl_rows(text: str, path: Path) -> tuple[list[Row], list[InputError]]:
    rows, problems = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(Row(json.loads(line), n, f"line {n}"))
        except json.JSONDecodeError as e:
            problems.append(InputError(f"bad JSON: {e.msg} (column {e.colno})", file=path, line=n))
    return rows, problems


def _yaml_rows(text: str, path: Path) -> tuple[list[Row], list[InputError]]:
    doc, problems = parse_yaml(text, path)
    data, node, prefix = doc.data, doc.node, ()
    if isinstance(data, dict) and "questions" in data:
        data, prefix = data["questions"], ("questions",)
    if not isinstance(data, list):
        raise InputError("expected a list of questions or a mapping with 'questions:'", file=path, line=1)
    rows = [Row(item, line_of(node, (*prefix, i)), f"item {i + 1}") for i, item in enumerate(data)]
    return rows, problems


def _csv_rows(text: str, path: Path, columns: ColumnMap) -> tuple[list[Row], list[InputError]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    for flag, name in (("--question-col", columns.question), ("--reference-col", columns.reference)):
        if name not in header:
            raise InputError(
                f"no column {name!r} (columns: {', '.join(header) or 'none'}); map it with {flag}",
                file=path, line=1, field=name,
            )
    rows: list[Row] = []
    problems: list[InputError] = []
    try:
        for record in reader:
            extra = record.get(None)
            if extra:
                # Usually an unquoted comma inside a cell: the text after it would be lost without a word.
                problems.append(InputError(
                    f"{len(header) + len(extra)} cells but {len(header)} columns; quote cells that contain commas",
                    file=path, line=reader.line_num,
                ))
                continue
            # Empty cells mean "not given", so optional columns fall back to their defaults.
            values = {k: v for k, v in record.items() if v not in (None, "")}
            rows.append(Row(values, reader.line_num, f"line {reader.line_num}"))
    except csv.Error as e:
        raise InputError(f"bad CSV: {e}", file=path, line=reader.line_num) from e
    return rows, problems


def _row_question(row: Row, n: int, bank: str, columns: ColumnMap, path: Path) -> Question:
    if not isinstance(row.values, dict):
        raise row.error(f"expected an object with fields, got {type(row.values).__name__}", path)
    v = row.values
    qid = v.get(columns.id)
    if qid is None or qid == "":
        qid = f"{bank}-{n}"
    elif isinstance(qid, int) and not isinstance(qid, bool):
        qid = str(qid)  # numeric ids are common in JSON banks
    fields = {
        "id": (columns.id, qid),
        "bank": (None, bank),
        "question": (columns.question, v.get(columns.question)),
        "reference_answer": (columns.reference, v.get(columns.reference)),
        "difficulty": (columns.difficulty, v.get(columns.difficulty)),
        "topic": (columns.topic, v.get(columns.topic)),
        "max_score": (columns.max_score, v.get(columns.max_score)),
    }
    data = {k: val for k, (_, val) in fields.items() if val is not None}
    data["source"] = f"{path.name}: {row.where}"
    try:
        return Question.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        column = fields.get(name, (name, None))[0] or name
        msg = "missing (required)" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
        raise row.error(msg, path, field=column) from e


def parse_tabular_bank(
    text: str, path: Path, bank: str, fmt: str, columns: ColumnMap | None = None
) -> tuple[list[Question], list[InputError]]:
    """Questions from a JSON/JSONL/YAML/CSV bank and one problem per row that could not be read."""
    columns = columns or ColumnMap()
    problems: list[InputError] = []
    if fmt == "json":
        rows = _json_rows(text, path)
    elif fmt == "jsonl":
        rows, problems = _jsonl_rows(text, path)
    elif fmt == "yaml":
        rows, problems = _yaml_rows(text, path)
    elif fmt == "csv":
        rows, problems = _csv_rows(text, path, columns)
    else:
        raise InputError(f"unknown bank format {fmt!r}", file=path)

    questions: list[Question] = []
    seen: dict[str, str] = {}
    for n, row in enumerate(rows, start=1):
        try:
            q = _row_question(row, n, bank, columns, path)
        except InputError as e:
            problems.append(e)
            continue
        if q.id in seen:
            problems.append(row.error(f"duplicate question id {q.id!r} (first in {seen[q.id]})", path,
                                      field=columns.id))
            continue
        seen[q.id] = row.where
        questions.append(q)
    if not rows and not problems:
        problems.append(InputError("no questions in the file", file=path))
    return questions, problems
