"""What `grader batch` shows while it runs, on standard error.

The figures are rows, never bytes: rows read (the input is read ahead a window at a time) and rows
graded of the rows in the file, so the percentage is rows done / rows total at every refresh. The rate is
this run's (rows graded / seconds since grading started) and the ETA follows from it once a batch is in.
Loading the model is its own step. On a terminal this is a live bar; otherwise (a log, CI, a pipe) one
plain line per refresh, at most one per REFRESH_S.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from grader.pipeline.batch_summary import BatchSummary

REFRESH_S = 0.5


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class BatchProgress:
    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.live = console.is_terminal
        self._last = 0.0
        self._shown = ""
        self._bar: Any = None
        self._task: Any = None

    # ---- steps ---------------------------------------------------------------------------------

    def loading(self) -> Any:
        """A context for loading the model: a spinner on a terminal, a line with its duration elsewhere."""
        return _Loading(self.console, self.live)

    def __enter__(self) -> BatchProgress:
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("[bold]grading"), BarColumn(), TextColumn("{task.fields[line]}"),
                console=self.console, transient=False,
            )
            self._task = self._bar.add_task("grade", total=max(self.total, 1), line=self.line(0, None))
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    # ---- figures -------------------------------------------------------------------------------

    def line(self, read: int, s: BatchSummary | None) -> str:
        done = s.total if s is not None else 0
        pct = 100.0 * done / self.total if self.total else 100.0
        parts = [f"{done}/{self.total} rows ({pct:.0f}%)", f"read {read}"]
        if s is not None and s.rows and s.elapsed_s > 0:
            remaining = max(self.total - done, 0)
            parts.append(f"{s.rate:.1f} rows/s")
            parts.append(f"ETA {_clock(remaining / s.rate)}")
        else:
            parts.append("ETA –")
        parts.append(f"{s.errors if s is not None else 0} errors")
        parts.append(f"elapsed {_clock(s.elapsed_s if s is not None else 0.0)}")
        return " · ".join(parts)

    def update(self, read: int, s: BatchSummary, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < REFRESH_S:
            return
        self._last = now
        text = self.line(read, s)
        if text == self._shown:
            return
        self._shown = text
        if self._bar is not None:
            self._bar.update(self._task, completed=s.total, line=text)
        else:
            self.console.print(f"grading {text}", highlight=False, soft_wrap=True)


class _Loading:
    def __init__(self, console: Console, live: bool) -> None:
        self.console = console
        self.live = live
        self._status: Any = None

    def __enter__(self) -> _Loading:
        self.t0 = time.perf_counter()
        if self.live:
            self._status = self.console.status("loading the embedding model…")
            self._status.__enter__()
        else:
            self.console.print("loading the embedding model…", highlight=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
        took = time.perf_counter() - self.t0
        self.console.print(f"loading the embedding model… done ({took:.1f} s)", highlight=False)
