"""Put a finished OUTPUT's records in input order, error records in their place.

Records are appended as they are graded (length-sorted encoder batches, judge calls in completion
order), which keeps every record safe the moment it exists and lets `--resume` lose at most one batch.
Once the run has finished, one pass sorts the file by input line: the records' byte spans are indexed
(a few bytes per record, whatever their size), copied in line order into a temporary file beside
OUTPUT, fsynced, and renamed over it. A kill or a full disk during the pass leaves OUTPUT as it was:
complete, only in completion order.
"""

from __future__ import annotations

import itertools
import os
from array import array
from pathlib import Path

from grader.pipeline.batch_io import FileFormat
from grader.pipeline.resume import output_records


def _spans(path: Path, fmt: FileFormat) -> tuple[int, array, array, array] | None:
    """(header size, lines, starts, ends) of OUTPUT's records; None when they are already in order."""
    lines, starts, ends = array("q"), array("q"), array("q")
    with path.open("rb") as f:
        for rec in output_records(f, path, fmt):
            if isinstance(rec, int):
                raise ValueError("OUTPUT ends in a torn record")
            lines.append(rec.line)
            starts.append(rec.start)
            ends.append(rec.end)
    if all(a < b for a, b in itertools.pairwise(lines)):
        return None
    return starts[0], lines, starts, ends


def sort_by_input_line(path: Path, fmt: FileFormat) -> bool:
    """Rewrite OUTPUT in input-line order. True when it was rewritten; False when already in order.

    Raises OSError when the copy cannot be written (OUTPUT is then left untouched)."""
    spans = _spans(path, fmt)
    if spans is None:
        return False
    header, lines, starts, ends = spans
    order = sorted(range(len(lines)), key=lines.__getitem__)
    tmp = path.with_name(f".{path.name}.in-order.tmp")
    try:
        with path.open("rb") as src, tmp.open("wb") as dst:
            dst.write(src.read(header))
            for i in order:
                src.seek(starts[i])
                dst.write(src.read(ends[i] - starts[i]))
            dst.flush()
            os.fsync(dst.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return True
