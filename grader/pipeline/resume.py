"""Read what an interrupted run already wrote, so that `--resume` grades each remaining row once.

A record is written with a single write() ending in a newline, so a run killed mid-write leaves at
most one torn last line: it is cut off here and its row is graded again.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import InputError
from grader.pipeline.batch_io import FileFormat


@dataclass
class ResumeState:
    done: dict[int, str | None] = field(default_factory=dict)  # input line -> id, for rows already written
    torn_bytes: int = 0  # bytes of a torn last record that were cut off

    def check(self, line: int, row_id: str | None, output: Path) -> None:
        """Refuse to continue an OUTPUT that was written for a different INPUT."""
        recorded = self.done.get(line)
        if line in self.done and recorded != row_id and recorded is not None and row_id is not None:
            raise InputError(
                f"OUTPUT has id {recorded!r} for input line {line}, the input has {row_id!r}: "
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
            state.done[line] = row_id
            good_end += len(raw)
    if state.torn_bytes:
        os.truncate(path, good_end)
    return state
