"""Run a producer one step ahead of its consumer, in a background thread.

The offline scorer alternates an encoder forward pass (native code that releases the GIL) with the signals of the
batch it returned (Python). Producing the next batch while the current one is reduced overlaps the two; without
it the Python work leaves a core idle between forward passes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of ``items`` in order, the next ``depth`` of them produced while the caller works on the current one.

    An exception raised while producing is raised to the caller at the item it would have been. When the caller
    stops early (break, an exception, close()), the producer stops after the item it is working on.
    """
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, _DONE))
        except BaseException as e:  # handed to the consumer, which raises it in its own thread
            put((False, e))

    worker = threading.Thread(target=produce, name="grader-ahead", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = slots.get()
            if not ok:
                raise item  # type: ignore[misc]
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
