"""in_order: streamed (index, value) batches back into input order, and loud when one is lost."""

from __future__ import annotations

import pytest

from grader.batches import in_order


def test_batches_in_any_order_come_back_in_input_order() -> None:
    assert in_order([[(2, "c"), (0, "a")], [], [(1, "b")]], 3) == ["a", "b", "c"]
    assert in_order([], 0) == []


def test_a_missing_or_repeated_index_is_an_error_not_a_none() -> None:
    with pytest.raises(ValueError, match="1 of 3 results missing"):
        in_order([[(0, "a"), (2, "c")]], 3)
    with pytest.raises(ValueError, match="index 0 came twice"):
        in_order([[(0, "a")], [(0, "b")]], 1)
