"""A window's breakdown added straight into incidents' sums (``LeafWindow.breakdown_into``, the
frame kernel's ``_sums_into``) against the plain way: :meth:`LeafWindow.breakdown`, each child
with its expectation as the incident steps' views have it, added by the pure
:func:`~spikedetect.core.expand.add_breakdown_py`. The same sums (``repr``: keys in the same
order, ints as ints, floats bit for bit), the same children capped, and the same breakdowns of
the keys that were not targets.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import using_kernel

from spikedetect.core import expand, leaf_window, leaves
from spikedetect.core.detectors import SeasonalBaseline
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.leaves import LeafTable
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")
MODULES = (leaves, leaf_window, expand)  # what a frame and its breakdowns go through


REGIONS = ["US", "US/CA", "US/CA/LA", "US/NY", "DE", "DE/BY", "DE/BY/München", "FR/IDF", "US/CA/SF"]
KEYS = ["*", "US", "US/CA", "DE", "DE/BY", "FR", "FR/IDF", "US/CA/LA"]
NAMES = ["c0", "c1", "c2", "app", "web"]
counts = st.one_of(st.integers(0, 50), st.integers(-(2**31) + 1, 2**31 - 1))
sums = st.one_of(st.floats(-1e6, 1e6), st.integers(-5, 5), st.sampled_from([0.5, -0.0, 1e300, 2.0**53]))
leaf = st.dictionaries(st.tuples(st.sampled_from(REGIONS), st.sampled_from(NAMES[:3]), st.sampled_from(NAMES[3:])),
                       counts, min_size=1, max_size=30)
target = st.tuples(st.dictionaries(st.sampled_from(NAMES), sums, max_size=3),
                   st.dictionaries(st.sampled_from(NAMES), sums, max_size=3),
                   st.dictionaries(st.sampled_from(KEYS + REGIONS), st.lists(sums, min_size=2, max_size=2), max_size=3))


def _plain(window: LeafWindow, wanted: set[str], into: tuple[Any, ...]) -> dict[str, Any]:
    """What the incident steps did before: each target's view (children with their expectations)
    added by the pure loop; the other keys' breakdowns returned."""
    targets, svc, index, expected, scale, cap = into
    got = window.breakdown(svc, wanted)
    for key, (cats, srcs, kids) in targets.items():
        b = got.pop(key, None)
        if b is not None:
            view_kids = {child: (n * scale, expected.item(index[(svc, child)]) if (svc, child) in index else 0.0)
                         for child, n in b.children.items()}
            expand.add_breakdown_py(cats, srcs, kids, b.categories, b.sources, view_kids, cap)
    return got


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(leaf, st.sets(st.sampled_from(KEYS), min_size=1), st.dictionaries(st.sampled_from(KEYS), target),
       st.sampled_from([1.0, 0.25, 3.0, 2]), st.integers(0, 4), st.data())
def test_sums_added_into_incidents_are_bit_identical(counts_of: dict[Any, int], wanted: set[str],
                                                     targets: dict[str, Any], scale: float, cap: int,
                                                     data: st.DataObject) -> None:
    targets = {k: v for k, v in targets.items() if k in wanted}
    index = {("ig", r): i for i, r in enumerate(KEYS + REGIONS) if data.draw(st.booleans())}
    expected = np.array(data.draw(st.lists(st.floats(0.0, 1e4), min_size=len(KEYS + REGIONS),
                                           max_size=len(KEYS + REGIONS))))
    with using_kernel(MODULES, KERNEL):  # also in a SPIKEDETECT_PURE=1 run
        window = LeafWindow.of(LeafTable(), Keyspace(SeasonalBaseline(60_000)), {"ig": counts_of})
        assert window.frame is not None and window.frame.ints
        fast = copy.deepcopy(targets)
        got = window.breakdown_into("ig", wanted, (fast, "ig", index, expected, scale, cap))
        want = _plain(window, wanted, (targets, "ig", index, expected, scale, cap))
    assert got is not None
    assert repr(list(got.items())) == repr(list(want.items()))
    assert repr(fast) == repr(targets)


def test_without_a_frame_nothing_is_added() -> None:
    """A window whose counts are not all whole has no frame: None, and the sums are untouched."""
    window = LeafWindow.of(LeafTable(), Keyspace(SeasonalBaseline(60_000)), {"ig": {("US", "c0", "app"): 0.5}})
    sums: tuple[dict[str, float], dict[str, float], dict[str, list[float]]] = ({"c0": 1.0}, {}, {})
    assert window.breakdown_into("ig", {"US"}, ({"US": sums}, "ig", {}, np.zeros(1), 1.0, 8)) is None
    assert sums == ({"c0": 1.0}, {}, {})


@needs_kernel
@pytest.mark.parametrize("scale", [2, 2.0, np.float64(-1.0)])
def test_a_zero_count_added_into_a_negative_zero_sum_is_python_s(scale: Any) -> None:
    """A child's -0.0 sum plus a window's 0 reports: Python's ``-0.0 + 0`` is 0.0 (Cython's own
    float + int kept -0.0: CI's hypothesis run found it)."""
    targets = {"*": ({}, {}, {"US": [-0.0, -0.0]})}
    fast = copy.deepcopy(targets)
    expected = np.array([-0.0, 0.0])
    with using_kernel(MODULES, KERNEL):
        window = LeafWindow.of(LeafTable(), Keyspace(SeasonalBaseline(60_000)), {"ig": {("US", "c0", "app"): 0}})
        assert window.breakdown_into("ig", {"*"}, (fast, "ig", {("ig", "US"): 1}, expected, scale, 0)) == {}
        _plain(window, {"*"}, (targets, "ig", {("ig", "US"): 1}, expected, scale, 0))
    assert repr(fast) == repr(targets)
