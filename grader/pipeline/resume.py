"""Read what an interrupted run already wrote, so that `--resume` grades each remaining row once.

A record is written with a single write() ending in a newline, so a run killed mid-write leaves at
most one torn last record: it is cut off here and its row is graded again. In CSV a record may span
lines (an id holding a line break is quoted, not rewritten), so records are found by the csv module:
a file that ends inside a quoted cell, or without a final line end, ends in a torn record.
"""

from __future__ import annotations

import csv
import json
import os
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from grader.errors import InputError
from grader.pipeline.batch_io import FileFormat
from grader.pipeline.batch_summary import BatchSummary
from grader.pipeline.output_file import OutputFile, unescape_cell

_NO_ID = 1  # a done row whose record has no id
_HAS_ID = 0x8000_0000  # high bit set: the low 31 bits are a hash of the record's id


def _mark(row_id: str | None) -> int:
    return _NO_ID if row_id is None else _HAS_ID | (zlib.crc32(row_id.encode("utf-8")) & 0x7FFF_FFFF)


@dataclass
class ResumeState:
    """Which input lines OUTPUT already holds: four bytes per input line, not a Python object per row.

    A million-row resume costs ~4 MB here where a dict of line -> id costs ~100 MB. The id is kept as
    a 31-bit hash, which is enough to notice an OUTPUT written for another INPUT.
    """

    marks: array = field(default_factory=lambda: array("I"))
    count: int = 0
    torn_bytes: int = 0  # bytes of a torn last record that were cut off
    prior: BatchSummary = field(default_factory=BatchSummary)  # what the records already in OUTPUT say

    def add(self, line: int, row_id: str | None) -> None:
        if line >= len(self.marks):
            grow = max(line + 1, 2 * len(self.marks)) - len(self.marks)
            self.marks.frombytes(bytes(self.marks.itemsize * grow))
        if not self.marks[line]:
            self.count += 1
        self.marks[line] = _mark(row_id)

    def __contains__(self, line: int) -> bool:
        return 0 <= line < len(self.marks) and self.marks[line] != 0

    def __len__(self) -> int:
        return self.count

    def lines(self) -> list[int]:
        return [i for i, m in enumerate(self.marks) if m]

    def check(self, line: int, row_id: str | None, output: Path) -> None:
        """Refuse to continue an OUTPUT that was written for a different INPUT."""
        if line not in self or row_id is None:
            return
        recorded = self.marks[line]
        if recorded != _NO_ID and recorded != _mark(row_id):
            raise InputError(
                f"OUTPUT's record for input line {line} has another id than the input's {row_id!r}: "
                "it was written for another input (use --force to replace it)",
                file=output,
            )


@dataclass
class _Done:
    """One whole record of OUTPUT: its input line and id, where it ends, and what it says."""

    line: int
    id: str | None
    start: int
    end: int
    status: str
    score: float | None
    max_score: float | None


def _number(value: object) -> float | None:
    return None if value in (None, "") else float(value)  # type: ignore[arg-type]


def _done(rec: dict[str, object], start: int, end: int) -> _Done:
    row_id = rec.get("id")
    return _Done(int(rec["line"]), None if row_id in (None, "") else str(row_id), start, end,  # type: ignore[arg-type]
                 str(rec.get("status") or "error"), _number(rec.get("score")), _number(rec.get("max_score")))


def _jsonl_records(f: BinaryIO, path: Path) -> Iterator[_Done | int]:
    """Each whole record; then the torn tail's size in bytes, if there is one."""
    end = 0
    for n, raw in enumerate(f, start=1):
        if not raw.endswith(b"\n"):
            yield len(raw)
            return
        start, end = end, end + len(raw)
        try:
            yield _done(json.loads(raw.decode("utf-8")), start, end)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(f"not a grader output record, cannot resume ({e})", file=path, line=n) from e


def _csv_records(f: BinaryIO, path: Path) -> Iterator[_Done | int]:
    """As _jsonl_records, for CSV: a record may span lines (an id with a line break is quoted)."""
    consumed = [0, 0]  # bytes read, physical lines read
    last = [b"\n"]

    def lines() -> Iterator[str]:
        for raw in f:
            consumed[0] += len(raw)
            consumed[1] += 1
            last[0] = raw
            yield raw.decode("utf-8", errors="surrogateescape")

    reader = csv.reader(lines(), strict=True)
    header: list[str] | None = None
    end = 0
    while True:
        try:
            values = next(reader, None)
        except csv.Error as e:
            if "unexpected end of data" in str(e):  # the file ends inside a quoted cell: a torn record
                yield consumed[0] - end
                return
            raise InputError(f"not a grader output record, cannot resume ({e})", file=path,
                             line=consumed[1]) from e
        if values is None:
            return
        if not last[0].endswith(b"\n"):
            yield consumed[0] - end  # the last record has no line end: torn
            return
        if header is None:
            header = values
            if "line" not in header:
                raise InputError("not a grader output (no 'line' column)", file=path, line=1)
            end = consumed[0]
            continue
        if not values:
            end = consumed[0]
            continue
        rec: dict[str, object] = dict(zip(header, values, strict=False))
        rec["id"] = unescape_cell(str(rec.get("id") or ""))
        start, end = end, consumed[0]
        try:
            yield _done(rec, start, end)
        except (KeyError, ValueError) as e:
            raise InputError(f"not a grader output record, cannot resume ({e})", file=path,
                             line=consumed[1]) from e


def output_records(f: BinaryIO, path: Path, fmt: FileFormat) -> Iterator[_Done | int]:
    """Each whole record of an OUTPUT opened as `f`; then the torn tail's size in bytes, if there is one."""
    return _jsonl_records(f, path) if fmt == "jsonl" else _csv_records(f, path)


def load_resume_state(path: Path, fmt: FileFormat, output: OutputFile | None = None) -> ResumeState:
    """Done rows of an existing OUTPUT; cuts a torn last record off (through `output` when it is open)."""
    state = ResumeState()
    if not path.exists():
        return state
    good_end = 0
    with path.open("rb") as f:
        for item in output_records(f, path, fmt):
            if isinstance(item, int):
                state.torn_bytes = item
                break
            good_end = item.end
            if item.line not in state:
                state.prior.count(item.status, item.score, item.max_score, item.line)
            state.add(item.line, item.id)
    if state.torn_bytes:
        if output is not None:
            output.truncate(good_end)
        else:
            os.truncate(path, good_end)
    return state
