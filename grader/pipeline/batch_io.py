"""Streaming readers and appending writers for answer files (CSV and JSONL).

Readers never hold the file: they read bytes one physical line at a time and decode each record on its
own, so invalid UTF-8 or bad CSV quoting spoils only the row it is in, and every row keeps the line
number it starts on. Writers append one record per system call and fsync after each batch of records,
so a killed run leaves at most one torn last line (see resume.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from grader.errors import InputError

FileFormat = Literal["csv", "jsonl"]

# A quoted CSV field may span lines; a stray quote must not swallow the rest of the file. After this
# many physical lines (or bytes) without the quotes balancing, the first line is reported as bad and
# the following lines are read again as rows of their own.
MAX_RECORD_LINES = 1000
MAX_RECORD_BYTES = 16 * 1024 * 1024

OUTPUT_FIELDS = [
    "id",
    "line",
    "question_id",
    "score",
    "max_score",
    "status",
    "judge_used",
    "feedback",
    "criteria",
    "error",
    "warnings",
    "confidence",
    "review",
]


@dataclass(frozen=True)
class Columns:
    id: str = "id"
    question_id: str = "question_id"
    answer: str = "answer"


@dataclass
class InputRow:
    """One input record: where it starts, what it says, or why it cannot be read."""

    line: int
    id: str | None
    question_id: str | None
    answer: str | None
    error: str | None = None
    offset: int = 0  # bytes of the file consumed once this row was read (for progress)


def detect_format(path: Path, explicit: str | None = None) -> FileFormat:
    fmt = (explicit or "").lower() or {
        ".csv": "csv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "jsonl",
    }.get(path.suffix.lower(), "")
    if fmt not in ("csv", "jsonl"):
        raise InputError("cannot tell the format: name it .csv or .jsonl (or pass --format)", file=path)
    return fmt  # type: ignore[return-value]


def _id_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _decode(raw: bytes, first: bool) -> tuple[str, str | None]:
    """Text of a record, and an error if it is not UTF-8 (the text is then decoded with replacements)."""
    if first and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return raw.decode("utf-8", errors="replace"), f"invalid UTF-8 (byte {e.start} of the row)"


def _physical_lines(f: BinaryIO) -> Iterator[tuple[int, bytes, int]]:
    """(line number, raw bytes with line end, offset after the line)."""
    offset = 0
    for n, raw in enumerate(f, start=1):
        offset += len(raw)
        yield n, raw, offset


# ---------------------------------------------------------------------------------------------- JSONL


def _jsonl_row(line: int, raw: bytes, offset: int, cols: Columns) -> InputRow | None:
    text, enc_error = _decode(raw, first=line == 1)
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return InputRow(line, None, None, None, enc_error or f"invalid JSON: {e.msg} (column {e.colno})", offset)
    if not isinstance(obj, dict):
        return InputRow(line, None, None, None, enc_error or "row is not a JSON object", offset)
    row_id = _id_str(obj.get(cols.id))
    qid = _id_str(obj.get(cols.question_id))
    answer = obj.get(cols.answer)
    error = enc_error
    if error is None and qid is None:
        error = f"missing field {cols.question_id!r}"
    if error is None and answer is None:
        error = f"missing field {cols.answer!r}"
    if error is None and not isinstance(answer, str):
        error = f"field {cols.answer!r} is not a string"
    if error is not None:
        return InputRow(line, row_id, qid, None, error, offset)
    return InputRow(line, row_id, qid, answer, None, offset)


def read_jsonl(f: BinaryIO, cols: Columns) -> Iterator[InputRow]:
    for line, raw, offset in _physical_lines(f):
        row = _jsonl_row(line, raw, offset, cols)
        if row is not None:
            yield row


# ------------------------------------------------------------------------------------------------ CSV


def _parse_csv_record(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), strict=True))


def _csv_records(f: BinaryIO) -> Iterator[tuple[int, str | None, list[str] | None, str | None, int]]:
    """(start line, text, fields, error, offset) per logical CSV record; blank lines are skipped."""
    source = _physical_lines(f)
    pushback: deque[tuple[int, bytes, int]] = deque()

    def next_line() -> tuple[int, bytes, int] | None:
        if pushback:
            return pushback.popleft()
        return next(source, None)

    while True:
        first = next_line()
        if first is None:
            return
        start, raw, offset = first
        if not raw.strip():
            continue
        buf = [first]
        size = len(raw)
        quotes = raw.count(b'"')
        while quotes % 2 == 1 and len(buf) < MAX_RECORD_LINES and size < MAX_RECORD_BYTES:
            nxt = next_line()
            if nxt is None:
                break
            buf.append(nxt)
            size += len(nxt[1])
            quotes += nxt[1].count(b'"')
        balanced = quotes % 2 == 0
        if not balanced and len(buf) > 1:
            # Unbalanced to the limit or to the end: this line alone is the suspect; re-read the rest.
            pushback.extendleft(reversed(buf[1:]))
            buf = buf[:1]
        raw_all = b"".join(b[1] for b in buf)
        end_offset = buf[-1][2]
        text, enc_error = _decode(raw_all, first=start == 1)
        try:
            records = _parse_csv_record(text)
        except csv.Error as e:
            if len(buf) > 1:
                pushback.extendleft(reversed(buf[1:]))
                end_offset = offset
            yield start, text, None, f"bad CSV quoting: {e}", end_offset
            continue
        if len(records) != 1:
            if len(buf) > 1:
                pushback.extendleft(reversed(buf[1:]))
                end_offset = offset
            yield start, text, None, "bad CSV quoting: unbalanced quote", end_offset
            continue
        yield start, text, records[0], enc_error, end_offset


def read_csv(f: BinaryIO, cols: Columns, path: Path | str = "<input>") -> Iterator[InputRow]:
    records = _csv_records(f)
    header_rec = next(records, None)
    if header_rec is None:
        return
    hline, _, header, herr, _ = header_rec
    if header is None or herr is not None:
        raise InputError(f"cannot read the header: {herr}", file=path, line=hline)
    header = [h.strip() for h in header]
    for name in (cols.question_id, cols.answer):
        if name not in header:
            raise InputError(
                f"no column {name!r} in the header (columns: {', '.join(header)}); map it with "
                f"--{'answer' if name == cols.answer else 'question-id'}-col",
                file=path,
                line=hline,
            )
    i_qid, i_ans = header.index(cols.question_id), header.index(cols.answer)
    i_id = header.index(cols.id) if cols.id in header else None

    for line, text, fields, error, offset in records:
        if fields is None:
            # The row is unusable, but a lenient parse usually still finds its id for the error record.
            loose = next(csv.reader(io.StringIO(text or "")), []) if text else []
            row_id = _id_str(loose[i_id]) if i_id is not None and i_id < len(loose) else None
            qid = _id_str(loose[i_qid]) if i_qid < len(loose) else None
            yield InputRow(line, row_id, qid, None, error, offset)
            continue
        row_id = _id_str(fields[i_id]) if i_id is not None and i_id < len(fields) else None
        qid = _id_str(fields[i_qid]) if i_qid < len(fields) else None
        if error is None and len(fields) > len(header):
            error = f"row has {len(fields)} fields; the header has {len(header)} (unquoted comma?)"
        if error is None and i_ans >= len(fields):
            error = f"missing answer column {cols.answer!r} (row has {len(fields)} of {len(header)} fields)"
        if error is None and qid is None:
            error = f"missing {cols.question_id!r}"
        if error is not None:
            yield InputRow(line, row_id, qid, None, error, offset)
            continue
        yield InputRow(line, row_id, qid, fields[i_ans], None, offset)


def read_rows(path: Path, cols: Columns | None = None, fmt: FileFormat | None = None) -> Iterator[InputRow]:
    """Stream the rows of an answer file. Only a missing file or an unusable header raises."""
    cols = cols or Columns()
    fmt = fmt or detect_format(path)
    # A 1 MB answer is one field; the csv module's default limit (128 KiB) would reject the whole row.
    csv.field_size_limit(MAX_RECORD_BYTES)
    try:
        f = path.open("rb")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=path) from e
    with f:
        if fmt == "csv":
            yield from read_csv(f, cols, path)
        else:
            yield from read_jsonl(f, cols)


# --------------------------------------------------------------------------------------------- writers


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list | dict):
        if not v:
            return ""
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return " | ".join(" ".join(x.split()) for x in v)
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    # One record per physical line keeps resume's torn-line check simple.
    return " ".join(str(v).split()) if isinstance(v, str) else str(v)


class RecordWriter:
    """Appends records to OUTPUT: one write() per record, fsync per batch."""

    def __init__(self, path: Path, fmt: FileFormat, fields: list[str] | None = None) -> None:
        self.path = path
        self.fmt = fmt
        self.fields = fields or list(OUTPUT_FIELDS)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if fmt == "csv" and os.fstat(self._fd).st_size == 0:
            self._write_line(self._csv_line(self.fields))

    def _csv_line(self, values: list[str]) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        return buf.getvalue().encode("utf-8")

    def _write_line(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def encode(self, record: dict[str, Any]) -> bytes:
        if self.fmt == "jsonl":
            return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        return self._csv_line([_csv_value(record.get(k)) for k in self.fields])

    def write(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            self._write_line(self.encode(r))
        if records:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
