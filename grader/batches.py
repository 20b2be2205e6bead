"""Reassemble results that stream out in batches, as (index, value) pairs, into input order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def in_order(groups: Iterable[Iterable[tuple[int, T]]], n: int) -> list[T]:
    """The values of `groups` placed at their indices; every index in range(n) must come exactly once."""
    out: list[T | None] = [None] * n
    filled = 0
    for group in groups:
        for i, value in group:
            if out[i] is not None:
                raise ValueError(f"index {i} came twice")
            out[i] = value
            filled += 1
    if filled != n:
        raise ValueError(f"{n - filled} of {n} results missing")
    return out  # type: ignore[return-value]
