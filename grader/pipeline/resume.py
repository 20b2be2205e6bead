"""Read what an interrupted run already wrote, so that `--resume` grades each remaining row once.

A record is written with a single write() ending in a newline, so a run killed mid-write leaves at
most one torn last line: it is cut off here and its row is graded again.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import InputError
from grader.pipeline.batch_io import FileFormat

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


def _parse_jsonl(text: str) -> tuple[int, str | None]:
    obj = json.loads(text)
    return int(obj["line"]), (None if obj.get("id") is None else str(obj["id"]))


def load_resume_state(path: Path, fmt: FileFormat) -> ResumeState:
    """Done rows of an existing OUTPUT; truncates a torn last line in place."""
    state = ResumeState()
    if not path.exists():
        return state
    good_end = 0
    header: list[str] | None = None
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                state.torn_bytes = len(raw)
                break
            text = raw.decode("utf-8", errors="replace")
            try:
                if fmt == "jsonl":
                    line, row_id = _parse_jsonl(text)
                else:
                    values = next(csv.reader(io.StringIO(text)))
                    if header is None:
                        header = values
                        if "line" not in header:
                            raise InputError("not a grader output (no 'line' column)", file=path, line=n)
                        good_end += len(raw)
                        continue
                    rec = dict(zip(header, values, strict=False))
                    line, row_id = int(rec["line"]), (rec.get("id") or None)
            except (ValueError, KeyError, TypeError, StopIteration, csv.Error) as e:
                raise InputError(f"not a grader output record, cannot resume ({e})", file=path, line=n) from e
            state.add(line, row_id)
            good_end += len(raw)
    if state.torn_bytes:
        os.truncate(path, good_end)
    return state
