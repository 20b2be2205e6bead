"""Errors that reach the user. Each carries the exit code the CLI returns for it."""

from __future__ import annotations

from pathlib import Path

from grader.textio import DEFAULT_MAX_BYTES, TextProblem, read_capped


class GraderError(Exception):
    exit_code = 1


class InputError(GraderError):
    """Bad user input: a file, a row or a flag. Renders as one line naming where the problem is."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        if self.field:
            where += f"{self.field}: "
        return f"{where}{self.message}"


class JudgeUnavailable(GraderError):
    """The judge could not produce a verdict and no fallback was allowed."""

    exit_code = 3


class OutputError(GraderError):
    """OUTPUT could not be written (disk full, I/O error): the run stops at once, the file stays resumable."""

    exit_code = 4

    def __init__(self, message: str, *, file: str | Path) -> None:
        self.message = message
        self.file = str(file)
        super().__init__(f"{self.file}: {message}")


class OutputBusy(InputError):
    """Another run holds OUTPUT's lock."""


def read_utf8(path: str | Path, what: str | None = None, *, encoding: str = "utf-8",
              limit: int = DEFAULT_MAX_BYTES) -> str:
    """A user's file as text, or an InputError naming the file: unreadable, larger than `limit` bytes (read
    no further), or not UTF-8 (with the byte offset)."""
    try:
        raw = read_capped(path, limit)
    except OSError as e:
        raise InputError(f"cannot read{' ' + what if what else ''}: {e.strerror}", file=path) from e
    except TextProblem as e:
        raise InputError(str(e), file=path) from e
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 (byte {e.start})", file=path) from e
