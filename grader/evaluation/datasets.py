"""Eval sets: graded answers with the human grade, loaded from JSONL or column-mapped CSV.

JSONL format, one object per line (blank lines and lines starting with ``#`` are skipped):

    question_id       optional  groups answers of one question (cluster bootstrap, per-question table,
                                rubric lookup); derived from the question text when absent
    question          required
    reference_answer  required
    answer            required  the grader refuses an empty answer; the eval lists such rows as skipped
    score             required  the human grade, 0..max_score
    max_score         optional  default 5
    score_b           optional  a second human grader's grade: human-human agreement is reported beside
    score_a           optional  the first grader's own grade when ``score`` is an aggregate (Mohler: ``score`` is
                                the mean of ``score_a`` and ``score_b``); human-human agreement uses it
    answer_id         optional  carried through to per-item output
    answer_kind       optional  e.g. complete/partial/negated: the report breaks agreement down by it

Other fields are ignored, so ``../shared/data/mohler/dev.jsonl`` loads as it is.

CSV: the header row names the columns; ``mapping`` maps the fields above to column names, e.g.
``{"answer": "StudentAnswer", "score": "Grade"}``; unmapped fields use their own name.

A bad row is reported as ``file:line: field: problem`` and skipped; the good rows still load.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grader.errors import InputError, read_utf8
from grader.models import ID_PATTERN, Question
from grader.textio import json_error_message, lone_surrogate

FIELDS: tuple[str, ...] = (
    "question_id",
    "question",
    "reference_answer",
    "answer",
    "score",
    "max_score",
    "score_b",
    "score_a",
    "answer_id",
    "answer_kind",
)


class EvalItem(BaseModel):
    """One graded answer of an eval set."""

    model_config = ConfigDict(extra="ignore")

    question_id: str | None = None
    question: str = Field(min_length=1)
    reference_answer: str = Field(min_length=1)
    answer: str
    score: float = Field(ge=0)
    max_score: float = Field(default=5.0, gt=0)
    score_b: float | None = Field(default=None, ge=0)
    score_a: float | None = Field(default=None, ge=0)
    answer_id: str | None = None
    answer_kind: str | None = None

    @field_validator("question_id", "answer_id", "answer_kind", mode="before")
    @classmethod
    def _id_to_str(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        return str(v).strip() if isinstance(v, str | int | float) else v

    @field_validator("question", "reference_answer")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @field_validator("score_b", "score_a", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="after")
    def _within_scale(self) -> EvalItem:
        for name in ("score", "score_b", "score_a"):
            v = getattr(self, name)
            if v is not None and v > self.max_score + 1e-9:
                raise ValueError(f"{name} {v:g} is above max_score {self.max_score:g}")
        return self

    @property
    def group(self) -> str:
        """The question this answer belongs to: its id, else a stable id derived from the question text."""
        return self.question_id or derived_question_id(self.question)

    @property
    def human_a(self) -> float | None:
        """The first human grader's own grade, for human-human agreement (None without a second grader)."""
        if self.score_b is None:
            return None
        return self.score_a if self.score_a is not None else self.score

    def to_question(self, bank: str = "eval") -> Question:
        import re

        qid = self.group
        if not re.match(ID_PATTERN, qid):
            qid = derived_question_id(self.question)
        return Question(
            id=qid,
            bank=bank,
            question=self.question,
            reference_answer=self.reference_answer,
            max_score=self.max_score,
        )


def derived_question_id(question: str) -> str:
    norm = " ".join(question.lower().split())
    return "q-" + hashlib.sha1(norm.encode("utf-8")).hexdigest()[:10]


class Dataset(BaseModel):
    """The good rows of an eval set and the problems with the bad ones."""

    path: str
    items: list[EvalItem]
    errors: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="What a reader should know, e.g. rows left out.")

    @property
    def max_score(self) -> float:
        """The common scale; mixed scales are rejected at load time."""
        return self.items[0].max_score if self.items else 5.0

    @property
    def has_second_grader(self) -> bool:
        return any(i.score_b is not None for i in self.items)


def _row_error(path: Path, line: int, e: ValidationError) -> InputError:
    err = e.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or None
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return InputError(msg, file=path, line=line, field=field)


def _validate(path: Path, rows: Iterable[tuple[int, dict[str, Any]]], strict: bool) -> Dataset:
    items: list[EvalItem] = []
    errors: list[str] = []
    for line, row in rows:
        try:
            items.append(EvalItem.model_validate(row))
        except ValidationError as e:
            problem = _row_error(path, line, e)
            if strict:
                raise problem from e
            errors.append(problem.render())
    scales = {i.max_score for i in items}
    if len(scales) > 1:
        # Mixed scales would make the integer metrics meaningless; one scale per set is the documented format.
        raise InputError(f"rows use different max_score values {sorted(scales)}; split the set", file=path)
    return Dataset(path=str(path), items=items, errors=errors)


def load_jsonl(path: Path, strict: bool = False) -> Dataset:
    def rows() -> Iterable[tuple[int, dict[str, Any]]]:
        for n, line in enumerate(_read_text(path).splitlines(), start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            try:
                obj = json.loads(s)
            except json.JSONDecodeError as e:
                problem = InputError(f"not valid JSON: {json_error_message(e, s)}", file=path, line=n)
                if strict:
                    raise problem from e
                bad.append(problem.render())
                continue
            if not isinstance(obj, dict):
                problem = InputError("each line must be a JSON object", file=path, line=n)
                if strict:
                    raise problem
                bad.append(problem.render())
                continue
            # JSON's "\ud800" escape decodes to a lone surrogate, which is not text (and crashes later).
            broken = next(((k, p) for k, v in obj.items() if isinstance(v, str) and (p := lone_surrogate(v))), None)
            if broken is not None:
                problem = InputError(broken[1], file=path, line=n, field=broken[0])
                if strict:
                    raise problem
                bad.append(problem.render())
                continue
            yield n, obj

    bad: list[str] = []
    ds = _validate(path, rows(), strict)
    ds.errors = sorted(bad + ds.errors, key=_line_of)
    return ds


def _line_of(message: str) -> int:
    try:
        return int(message.split(":", 2)[1])
    except (IndexError, ValueError):
        return 0


def load_csv(path: Path, mapping: Mapping[str, str] | None = None, strict: bool = False) -> Dataset:
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(FIELDS))
    if unknown:
        raise InputError(f"unknown field(s) in column mapping: {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    text = _read_text(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
    header = reader.fieldnames or []
    for field, column in mapping.items():
        if column not in header:
            raise InputError(f"column {column!r} (mapped to {field}) is not in the header", file=path, line=1)
    columns = {f: mapping.get(f, f) for f in FIELDS}
    required = ("question", "reference_answer", "answer", "score")
    missing = [f for f in required if columns[f] not in header]
    if missing:
        raise InputError(
            f"no column for {', '.join(missing)}; map one with --map FIELD=COLUMN", file=path, line=1
        )

    def rows() -> Iterable[tuple[int, dict[str, Any]]]:
        for row in reader:
            obj = {f: row[c] for f, c in columns.items() if c in row and row[c] is not None}
            if not any(str(v).strip() for v in obj.values()):
                continue
            yield reader.line_num, obj

    return _validate(path, rows(), strict)


def _read_text(path: Path) -> str:
    return read_utf8(path, "eval set", encoding="utf-8-sig")


def load_dataset(path: Path, mapping: Mapping[str, str] | None = None, strict: bool = False) -> Dataset:
    """Load by extension: .jsonl/.json lines, or .csv/.tsv with an optional column mapping."""
    suffix = path.suffix.lower()
    from grader.evaluation.review_file import is_review_file, load_review

    if not mapping and is_review_file(path):  # written by `grader batch --review-out`, filled in by a person
        ds = load_review(path, strict)
    elif suffix in (".csv", ".tsv"):
        ds = load_csv(path, mapping, strict)
    elif suffix in (".jsonl", ".json", ".ndjson"):
        if mapping:
            raise InputError("--map applies to CSV files only", file=path)
        ds = load_jsonl(path, strict)
    else:
        raise InputError("eval set must be .jsonl or .csv/.tsv", file=path)
    if not ds.items:
        first = f" (first problem: {ds.errors[0]})" if ds.errors else ""
        raise InputError(f"no usable rows{first}", file=path)
    return ds


def parse_mapping(specs: Iterable[str]) -> dict[str, str]:
    """``["answer=StudentAnswer", "score=Grade"]`` -> ``{"answer": "StudentAnswer", "score": "Grade"}``."""
    out: dict[str, str] = {}
    for spec in specs:
        field, sep, column = spec.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise InputError(f"--map expects FIELD=COLUMN, got {spec!r}")
        out[field.strip()] = column.strip()
    return out
