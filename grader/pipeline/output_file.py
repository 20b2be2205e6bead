"""OUTPUT of `grader batch`: one writer at a time, records appended whole, a write failure never silent.

- **One writer.** The file is opened once and locked with flock(LOCK_EX | LOCK_NB) for the whole run;
  a second run on the same file is refused while the first holds it. The kernel drops the lock when
  the process dies, so a run killed with SIGKILL never leaves a stale lock behind for `--resume`.
- **Whole records.** Each record is one write() ending in a newline; records are fsynced per batch.
  When a write fails (disk full, I/O error), the bytes of the half-written record are cut off again
  and OutputError stops the run: what is in the file is whole records, which `--resume` continues.
- **Spreadsheet-safe CSV.** A text cell that a spreadsheet would run as a formula (it starts with
  `=`, `+`, `-`, `@`, a tab or a carriage return) is written with a leading apostrophe, the
  spreadsheets' own "this is text" mark; a cell that starts with an apostrophe gets one more, so the
  escape can be undone exactly (`--resume` reads ids back with `unescape_cell`).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
from pathlib import Path
from typing import Any

from grader.errors import InputError, OutputBusy, OutputError
from grader.pipeline.batch_io import OUTPUT_FIELDS, FileFormat

# CSV is for people and spreadsheets: flat columns, the key points by what became of them, as text.
# (`--full` adds the criteria and the whole grade as JSON columns; JSONL always has the criteria.)
CSV_FIELDS = ["id", "line", "question_id", "score", "max_score", "status", "judge_used", "error",
              "met", "partial", "missed", "contradicted", "confidence", "review", "feedback", "warnings"]
_POINTS = ("met", "partial", "missed", "contradicted")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
# Cells written exactly as read (only quoted): the ids a resume matches rows by.
_EXACT = ("id", "question_id")


def escape_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def unescape_cell(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def _csv_value(key: str, v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list | dict):
        if not v:
            return ""
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return escape_cell(" | ".join(" ".join(x.split()) for x in v))
        return escape_cell(json.dumps(v, ensure_ascii=False, separators=(",", ":")))
    if isinstance(v, str):
        return escape_cell(v if key in _EXACT else " ".join(v.split()))
    return str(v)


def _holder(fd: int) -> str:
    """' (pid N)' of the process holding the flock on fd's file, from /proc/locks when it says."""
    try:
        st = os.fstat(fd)
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].endswith(f":{st.st_ino}"):
                    return f" (pid {parts[4]})"
    except OSError:
        pass
    return ""


class OutputFile:
    """OUTPUT opened and locked for one run (see module doc). Use as a context manager."""

    def __init__(self, path: Path, fmt: FileFormat, fields: list[str] | None = None) -> None:
        self.path = path
        self.fmt = fmt
        self.fields = fields or list(OUTPUT_FIELDS)
        self.created = not path.exists()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise InputError(f"cannot open OUTPUT for writing: {e.strerror}", file=path) from e
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _holder(self._fd)
            os.close(self._fd)
            self._fd = -1
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise OutputBusy(
                    f"another `grader batch` run is writing this file{holder}; wait for it to finish "
                    "(or stop it, then continue with --resume)", file=path
                ) from e
            raise InputError(f"cannot lock OUTPUT: {e.strerror}", file=path) from e
        self.records = 0  # written by this run
        self.broken: OutputError | None = None
        self._end = os.fstat(self._fd).st_size  # where the last whole record ends

    @property
    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def truncate(self, size: int) -> None:
        """Cut the file to `size` bytes (--force empties it; resume drops a torn last record)."""
        os.ftruncate(self._fd, size)
        self._end = size

    def start(self) -> None:
        """Write the CSV header into an empty file."""
        if self.fmt == "csv" and self.size == 0:
            self._append(self._csv_line(self.fields))
            self._sync()

    # ---- encoding ------------------------------------------------------------------------------

    def _csv_line(self, values: list[str]) -> bytes:
        buf = io.StringIO()
        # The writer quotes a field holding any character of its line terminator: with "\r\n" a lone
        # carriage return in an id is quoted too (and so read back exactly); the line then ends in "\n".
        csv.writer(buf, lineterminator="\r\n").writerow(values)
        return (buf.getvalue()[:-2] + "\n").encode("utf-8")

    def encode(self, record: dict[str, Any]) -> bytes:
        if self.fmt == "jsonl":
            text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            try:
                return (text + "\n").encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate that slipped through: JSON's own escape keeps the record valid and exact.
                return (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")
        return self._csv_line([_csv_value(k, self._cell(k, record)) for k in self.fields])

    @staticmethod
    def _cell(key: str, record: dict[str, Any]) -> Any:
        if key in _POINTS and key not in record:
            points = [c.get("text") or c["id"] for c in record.get("criteria") or [] if c.get("status") == key]
            return points or None
        if key == "review":  # the reasons a person should look, as "code: sentence"
            reasons = record.get("review") or []
            return [f"{r.get('code')}: {r.get('message', '')}".rstrip(": ") for r in reasons] or None
        return record.get(key)

    # ---- writing -------------------------------------------------------------------------------

    def _fail(self, e: OSError, doing: str) -> OutputError:
        # No torn record left behind (truncating frees space); should it fail, --resume cuts the tail off.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._end)
        reason = e.strerror or type(e).__name__
        self.broken = OutputError(
            f"cannot {doing}: {reason}; the run stopped, the records already in the file are whole: "
            "fix the cause (free some space) and continue with --resume", file=self.path,
        )
        return self.broken

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as e:
            raise self._fail(e, "write") from e
        self._end += len(data)

    def _sync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as e:
            raise self._fail(e, "flush to disk") from e

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append whole records (one write each), then fsync; OutputError when the file cannot take them."""
        if self.broken is not None:
            raise self.broken
        for r in records:
            self._append(self.encode(r))
            self.records += 1
        if records:
            self._sync()

    def close(self, *, discard_if_unused: bool = False) -> None:
        if self._fd < 0:
            return
        if discard_if_unused and self.created and self.records == 0:
            # We created it and no record made it in: leave no empty file (or bare header) behind.
            with contextlib.suppress(OSError):
                self.path.unlink()
        os.close(self._fd)  # releases the lock
        self._fd = -1

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(discard_if_unused=exc_type is not None)
