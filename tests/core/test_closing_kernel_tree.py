"""The compiled end of ``observe`` (spikedetect/kernel/_closing.pyx: ``tree_sums_rows``, which
visits only the rows with reports and their ancestors) against the numpy code of
:func:`spikedetect.core.window_scores.observe`, by bytes: on random forests whose parents may
come before or after their children, with signed zeros, NaN, inf and negative counts, and rows
given in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core import leaf_window, window_scores
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")
# one NaN only (no inf - inf): which of two NaNs numpy's ``observed += sums`` keeps depends on
# the element's place in its SIMD loop; two NaNs meeting in a level sum are tested below
EDGE = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0**53 + 2.0, 1e300, np.inf, np.nan]


@dataclass
class Forest:
    """Just what ``observe`` reads of a keyspace: rows named ("s", "r<row>"), all known."""

    parent: np.ndarray
    depth: np.ndarray
    last_seen: np.ndarray = field(init=False)
    index: dict[tuple[str, str], int] = field(init=False)

    def __post_init__(self) -> None:
        self.last_seen = np.full(len(self.parent), -1, dtype=np.int64)
        self.index = {("s", f"r{i}"): i for i in range(len(self.parent))}

    @property
    def size(self) -> int:
        return len(self.parent)

    def row(self, service: str, key: str) -> int:
        raise AssertionError("every row is known")


def _forest(draw: Any) -> Forest:
    """A random forest: rows in a random order, each one's parent an earlier row in that order
    (or none), so a parent's row may be after its child's."""
    n = draw(st.integers(1, 40))
    order = draw(st.permutations(range(n)))
    parent = np.full(n, -1, dtype=np.intp)
    depth = np.zeros(n, dtype=np.int8)
    for k, row in enumerate(order):
        if k and draw(st.integers(0, 4)):
            p = order[draw(st.integers(0, k - 1))]
            parent[row], depth[row] = p, depth[p] + 1
    return Forest(parent, depth)


@st.composite
def forests_and_windows(draw: Any) -> tuple[Forest, list[dict[str, dict[tuple[str, str, str], Any]]]]:
    forest = _forest(draw)
    values = st.one_of(st.sampled_from(EDGE), st.integers(-5, 10**6), st.floats(-1e6, 1e6))
    leaf = st.dictionaries(st.tuples(st.integers(0, forest.size - 1).map(lambda i: f"r{i}"),
                                     st.sampled_from(["a", "b"]), st.sampled_from(["app", "web"])), values, max_size=20)
    return forest, draw(st.lists(leaf.map(lambda d: {"s": d}), min_size=1, max_size=3))


def _observe(forest: Forest, windows: list[dict[str, dict[tuple[str, str, str], Any]]], kernel: Any) -> list[bytes]:
    saved = window_scores._kernel, leaf_window._kernel
    window_scores._kernel = leaf_window._kernel = kernel
    try:
        with np.errstate(all="ignore"):
            got = [window_scores.observe(forest, LeafWindow(w), 60_000 * (i + 1)).tobytes()  # type: ignore[arg-type]
                   for i, w in enumerate(windows)]
    finally:
        window_scores._kernel, leaf_window._kernel = saved
    return [*got, forest.last_seen.tobytes()]


@needs_kernel
@settings(max_examples=400, deadline=None)
@given(forests_and_windows())
def test_tree_sums_over_the_rows_seen_are_bit_identical(
        case: tuple[Forest, list[dict[str, dict[tuple[str, str, str], Any]]]]) -> None:
    forest, windows = case
    twin = Forest(forest.parent.copy(), forest.depth.copy())
    assert _observe(forest, windows, None) == _observe(twin, windows, KERNEL)


@needs_kernel
def test_tree_sums_keep_signed_zeros_and_nan() -> None:
    """A -0.0 own report stays -0.0 while no level adds into it, and becomes +0.0 once one does
    (``-0.0 + 0.0``), as numpy adds; NaN propagates up the chain, and of two NaNs summed into one
    parent the first (``bincount``'s running sum) is kept."""
    forest = Forest(np.array([-1, 0, 1, 0], dtype=np.intp), np.array([0, 1, 2, 1], dtype=np.int8))
    inf, nan = float("inf"), float("nan")
    for window in ({"s": {("r3", "a", "app"): -0.0}}, {"s": {("r1", "a", "app"): -0.0, ("r2", "a", "app"): 2.0}},
                   {"s": {("r2", "a", "app"): nan, ("r3", "a", "app"): 1.0}},
                   # -inf + inf is the negative default NaN; with +NaN in one level sum the first one met stays
                   {"s": {("r2", "a", "app"): -inf, ("r2", "b", "app"): inf, ("r3", "a", "app"): nan}},
                   {"s": {("r2", "a", "app"): nan, ("r3", "a", "app"): -inf, ("r3", "b", "app"): inf}}):
        twin = Forest(forest.parent.copy(), forest.depth.copy())
        assert _observe(forest, [window], None) == _observe(twin, [window], KERNEL)


@needs_kernel
def test_tree_sums_rows_check_their_inputs() -> None:
    """Rows out of bounds and a reporting row whose parent is not a row raise (numpy raises too);
    no rows at all is refused."""
    assert KERNEL is not None
    depth, parent = np.array([0, 1], dtype=np.int8), np.array([-1, 5], dtype=np.intp)
    seen = np.zeros(2, dtype=np.int64)
    with pytest.raises(IndexError):
        KERNEL.tree_sums_rows(np.zeros(2), depth, parent, np.array([2], dtype=np.intp), seen, 1)
    with pytest.raises(ValueError):
        KERNEL.tree_sums_rows(np.array([0.0, 1.0]), depth, parent, np.array([1], dtype=np.intp), seen, 1)
    with pytest.raises(ValueError):
        KERNEL.tree_sums_rows(np.zeros(0), depth[:0], parent[:0], np.zeros(0, dtype=np.intp), seen[:0], 1)
    forest = Forest(np.array([-1, -1], dtype=np.intp), np.array([0, 1], dtype=np.int8))  # depth 1, no parent
    for kernel in (None, KERNEL):
        with pytest.raises(ValueError):
            _observe(Forest(forest.parent, forest.depth), [{"s": {("r1", "a", "app"): 1.0}}], kernel)
