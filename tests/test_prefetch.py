"""grader/prefetch.py: a producer one step ahead of its consumer, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from grader.prefetch import ahead


def test_items_come_in_order_and_all_of_them() -> None:
    assert list(ahead(iter(range(100)))) == list(range(100))
    assert list(ahead(iter([]))) == []


def test_the_next_item_is_produced_while_the_caller_works_on_this_one() -> None:
    second_started = threading.Event()

    def produce() -> Iterator[int]:
        yield 1
        second_started.set()
        yield 2

    it = ahead(produce())
    assert next(it) == 1
    # The caller has not asked for item 2, yet the producer gets to it (a liveness wait, not a speed limit).
    assert second_started.wait(timeout=30)
    assert list(it) == [2]


def test_an_error_while_producing_reaches_the_caller_after_the_good_items() -> None:
    def produce() -> Iterator[int]:
        yield 1
        raise ValueError("bad batch")

    it = ahead(produce())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad batch"):
        next(it)


def test_stopping_early_stops_the_producer_within_one_item_of_the_caller() -> None:
    produced: list[int] = []

    def produce() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    it = ahead(produce(), depth=1)
    assert next(it) == 0
    it.close()  # joins the producer
    assert len(produced) <= 3  # the one taken, the one queued, the one being put when it stopped
