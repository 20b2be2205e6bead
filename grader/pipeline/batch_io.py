"""Streaming readers for answer files (CSV and JSONL), one record at a time.

Readers never hold the file: they read bytes one physical line at a time, so invalid UTF-8 or bad
quoting spoils only the record it is in, and every record keeps the line number it starts on. CSV is
read by the csv module's own record reading: a quoted field may span any number of lines and stays one
field. Only a quote that is never closed (the file ends inside it) or a record over MAX_RECORD_BYTES
is taken for a stray quote: that line is reported and the lines after it are read again as records.
"""

from __future__ import annotations

import csv
import io
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from grader.errors import InputError
from grader.textio import json_error_message, lone_surrogate, printable

FileFormat = Literal["csv", "jsonl"]

# One record (a row and all its fields) may be at most this big; a 1 MB answer is one field.
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
    return printable(value if isinstance(value, str) else str(value))


def _utf8_error(raw: bytes) -> str | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"invalid UTF-8 (byte {e.start} of the row)"
    return None


def physical_lines(f: BinaryIO, limit: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes with the line end); a line over `limit` bytes is cut to limit + 1 bytes
    (so the caller sees it is too long) and the rest of it is skipped, never held in memory."""
    n = 0
    while raw := f.readline(limit + 1):
        n += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (more := f.readline(1 << 20)) and not more.endswith(b"\n"):
                pass
            yield n, raw + (b"\n" if more else b"")
            continue
        yield n, raw


class _Lines:
    """Physical lines of a binary file with their numbers, a pushback, and the lines taken since the last
    record boundary (so a record's raw bytes and start line are known whatever the csv module did)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._source = physical_lines(f)
        self._pushback: deque[tuple[int, bytes]] = deque()
        self.taken: list[tuple[int, bytes]] = []
        self.offset = 0  # bytes of the file consumed, for progress
        self._taken_bytes = 0

    def next_raw(self) -> tuple[int, bytes] | None:
        if self._pushback:
            item = self._pushback.popleft()
        else:
            item = next(self._source, None)
            if item is None:
                return None
            n, raw = item
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):  # spreadsheets save CSV with a byte-order mark
                item = (n, raw[3:])
            self.offset = self._f.tell()
        self.taken.append(item)
        self._taken_bytes += len(item[1])
        return item

    def take(self) -> list[tuple[int, bytes]]:
        out, self.taken, self._taken_bytes = self.taken, [], 0
        return out

    def push_back(self, lines: list[tuple[int, bytes]]) -> None:
        self._pushback.extendleft(reversed(lines))

    def text(self) -> Iterator[str]:
        """Decoded lines for csv.reader; bad bytes survive as surrogate escapes and are reported per record."""
        while (item := self.next_raw()) is not None:
            if self._taken_bytes > MAX_RECORD_BYTES:
                raise _RecordTooBig
            yield item[1].decode("utf-8", errors="surrogateescape")


class _RecordTooBig(Exception):
    pass


# ---------------------------------------------------------------------------------------------- JSONL


def _jsonl_row(line: int, raw: bytes, offset: int, cols: Columns) -> InputRow | None:
    if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    enc_error = _utf8_error(raw)
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return InputRow(line, None, None, None, enc_error or f"invalid JSON: {json_error_message(e, text)}", offset)
    if not isinstance(obj, dict):
        return InputRow(line, None, None, None, enc_error or "row is not a JSON object", offset)
    row_id = _id_str(obj.get(cols.id))
    qid = _id_str(obj.get(cols.question_id))
    answer = obj.get(cols.answer)
    error = enc_error  # the row's id is still read (with replacements) for its error record
    # JSON's \ud800 escape decodes to a lone surrogate: not text, and it cannot be written back as UTF-8.
    for name in (cols.id, cols.question_id, cols.answer):
        value = obj.get(name)
        problem = lone_surrogate(value) if isinstance(value, str) and error is None else None
        if problem is not None:
            error = f"field {name!r} {problem}"
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
    offset = 0
    for line, raw in physical_lines(f):
        offset = f.tell()
        if len(raw) > MAX_RECORD_BYTES:
            yield InputRow(line, None, None, None, f"row is larger than {MAX_RECORD_BYTES:,} bytes", offset)
            continue
        row = _jsonl_row(line, raw, offset, cols)
        if row is not None:
            yield row


# ------------------------------------------------------------------------------------------------ CSV


@dataclass
class _CsvRecord:
    line: int
    raw: bytes
    fields: list[str] | None
    error: str | None
    offset: int


def _csv_records(f: BinaryIO) -> Iterator[_CsvRecord]:
    """Logical CSV records, as the csv module reads them; blank lines are skipped."""
    lines = _Lines(f)
    while True:
        reader = csv.reader(lines.text(), strict=True)
        try:
            for fields in reader:
                taken = lines.take()
                if not fields:
                    continue
                raw = b"".join(r for _, r in taken)
                yield _CsvRecord(taken[0][0], raw, fields, _utf8_error(raw), lines.offset)
            return
        except (csv.Error, _RecordTooBig) as e:
            taken = lines.take()
            if not taken:
                return
            too_big = isinstance(e, _RecordTooBig)
            if too_big or "unexpected end of data" in str(e):
                # A quote that never closes is a stray quote: report its line, read the lines after it again.
                lines.push_back(taken[1:])
                taken = taken[:1]
                why = (f"record larger than {MAX_RECORD_BYTES:,} bytes (a quote never closed?)" if too_big
                       else "a quote opened on this line is never closed")
            else:
                why = str(e)
            raw = b"".join(r for _, r in taken)
            yield _CsvRecord(taken[0][0], raw, None, f"bad CSV quoting: {why}", lines.offset)


def read_csv(f: BinaryIO, cols: Columns, path: Path | str = "<input>") -> Iterator[InputRow]:
    records = _csv_records(f)
    head = next(records, None)
    if head is None:
        return
    if head.fields is None or head.error is not None:
        raise InputError(f"cannot read the header: {head.error}", file=path, line=head.line)
    header = [h.strip() for h in head.fields]
    for name in (cols.question_id, cols.answer):
        if name not in header:
            raise InputError(
                f"no column {name!r} in the header (columns: {', '.join(header)}); map it with "
                f"--{'answer' if name == cols.answer else 'question-id'}-col",
                file=path,
                line=head.line,
            )
    i_qid, i_ans = header.index(cols.question_id), header.index(cols.answer)
    i_id = header.index(cols.id) if cols.id in header else None

    for rec in records:
        fields = rec.fields
        if fields is None:
            # The record is unusable, but a lenient parse usually still finds its id for the error record.
            text = rec.raw.decode("utf-8", errors="replace")
            try:
                fields = next(csv.reader(io.StringIO(text)), [])
            except csv.Error:
                fields = text.split(",")
        row_id = _id_str(fields[i_id]) if i_id is not None and i_id < len(fields) else None
        qid = _id_str(fields[i_qid]) if i_qid < len(fields) else None
        error = rec.error
        if error is None and len(fields) > len(header):
            error = f"row has {len(fields)} fields; the header has {len(header)} (unquoted comma?)"
        if error is None and i_ans >= len(fields):
            error = f"missing answer column {cols.answer!r} (row has {len(fields)} of {len(header)} fields)"
        if error is None and qid is None:
            error = f"missing {cols.question_id!r}"
        if error is not None:
            yield InputRow(rec.line, row_id, qid, None, error, rec.offset)
            continue
        yield InputRow(rec.line, row_id, qid, fields[i_ans], None, rec.offset)


def read_rows(path: Path, cols: Columns | None = None, fmt: FileFormat | None = None) -> Iterator[InputRow]:
    """Stream the rows of an answer file. Only a missing file or an unusable header raises."""
    cols = cols or Columns()
    fmt = fmt or detect_format(path)
    # A record may hold one field of almost MAX_RECORD_BYTES; the csv module's default limit is 128 KiB.
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


def count_rows(path: Path, fmt: FileFormat | None = None) -> int:
    """How many rows (records) the input holds, as the readers count them, without parsing the answers."""
    fmt = fmt or detect_format(path)
    csv.field_size_limit(MAX_RECORD_BYTES)
    with path.open("rb") as f:
        if fmt == "jsonl":
            return sum(1 for _, raw in physical_lines(f) if raw.strip())
        return max(sum(1 for _ in _csv_records(f)) - 1, 0)  # less the header
