"""The compiled leaf sums (spikedetect/kernel/_closing.pyx: ``sums_by_part``, ``breakdown_sums``)
against their Python references (:func:`spikedetect.core.ingest_gap.source_sums`,
:func:`spikedetect.core.expand.breakdown`): the same keys in the same order and the same values
bit for bit (``repr`` tells ``-0.0`` from ``0.0``, an int from a float and every double apart).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core import expand, ingest_gap
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")

REGIONS = ["US", "US/CA", "US/CA/LA", "US/NY", "DE", "DE/BY", "DE/BY/München", "FR/IDF", "US/CA/SF"]
WANTED = ["*", *REGIONS[:7]]
values = st.one_of(st.integers(0, 10**6), st.floats(0.0, 1e6), st.floats(allow_nan=False),
                   st.sampled_from([2**60 + 1, 2**53 + 1, 1e-300, -0.0, 0.0, 0.5, 1e300]))
leaves = st.dictionaries(st.tuples(st.sampled_from(REGIONS), st.sampled_from([f"c{i}" for i in range(6)]),
                                   st.sampled_from(["app", "web", "ios"])), values, max_size=40)


def _with(module: Any, kernel: ModuleType | None, call: Any) -> Any:
    saved, module._kernel = module._kernel, kernel
    try:
        return call()
    finally:
        module._kernel = saved


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(leaves)
def test_source_sums_are_bit_identical(leaf: dict[tuple[str, str, str], float]) -> None:
    got = [repr(list(_with(ingest_gap, k, lambda: ingest_gap.source_sums(leaf)).items())) for k in (None, KERNEL)]
    assert got[0] == got[1]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(leaves, st.sets(st.sampled_from(WANTED)))
def test_breakdown_is_bit_identical(leaf: dict[tuple[str, str, str], float], wanted: set[str]) -> None:
    got = [repr(list(_with(expand, k, lambda: expand.breakdown(leaf, wanted)).items())) for k in (None, KERNEL)]
    assert got[0] == got[1]


@needs_kernel
def test_the_sums_keep_python_addition() -> None:
    """``0 + -0.0`` is ``0.0`` and ``0.0 + n`` a float; ints past 2**53 stay exact ints."""
    leaf = {("US/CA", "z", "app"): -0.0, ("US", "c", "app"): 2**60 + 1, ("US", "d", "web"): 3}
    assert repr(ingest_gap.source_sums(leaf)) == repr({"app": 0.0 + (2**60 + 1), "web": 3.0})
    b = expand.breakdown(leaf, {"US", "*"})
    assert list(b) == ["US", "*"]
    assert repr(b["US"].categories) == repr({"z": 0.0, "c": 2**60 + 1, "d": 3})
    assert repr(b["US"].children) == repr({"US/CA": 0.0})
