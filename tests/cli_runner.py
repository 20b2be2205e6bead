"""Run the real `grader` entry point (grader.cli.main) in-process and capture exit code and output.

In-process keeps the many error-path tests fast; the entry point, argument parsing and error
rendering are exactly what `python -m grader` runs (one test per area also runs the subprocess).
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str | Path) -> CliResult:
    from grader.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["grader", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_subprocess(*args: str | Path, cwd: Path | None = None) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "grader", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=60
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
