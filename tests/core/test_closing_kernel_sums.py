"""The compiled leaf sums (spikedetect/kernel/_closing.pyx: ``sums_by_part``, ``breakdown_sums``)
against their Python references (:func:`spikedetect.core.ingest_gap.source_sums`,
:func:`spikedetect.core.expand.breakdown`): the same keys in the same order and the same values
bit for bit (``repr`` tells ``-0.0`` from ``0.0``, an int from a float and every double apart);
and the evidence rings (``evidence_record``) against :func:`spikedetect.core.evidence.record`'s
numpy code, by bytes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.columns import stored
from tests.core.kernels import using_kernel

from spikedetect.core import evidence, expand, ingest_gap
from spikedetect.core.evidence import EVIDENCE_COLUMNS
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
    with using_kernel((module,), kernel):
        return call()


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


# whole-number counts through the object loop (a window whose counts are all ints sums them in int64
# over its frame instead: tests/core/test_leaves.py), with the edges around 2**31, bools, non-str
# names and a float among them
MORE_REGIONS = [*REGIONS, "*", "JP", "JP/13", "JP/13/Tokyo", "US/CA/LA/x"]
whole = st.one_of(st.integers(-5, 10**4), st.sampled_from([0, 2**31 - 1, -(2**31 - 1), 2**31, -(2**31), 2**40]))
names = st.one_of(st.sampled_from([f"c{i}" for i in range(9)]), st.sampled_from([7, ("t",), b"c0"]))
whole_leaves = st.dictionaries(
    st.tuples(st.sampled_from(MORE_REGIONS), st.sampled_from([f"c{i}" for i in range(9)]),
              st.sampled_from(["app", "web", "ios", "api"])),
    st.one_of(whole, whole, whole, whole, whole, whole, st.sampled_from([True, 2.0, 0.5])), max_size=120)


@needs_kernel
@settings(max_examples=400, deadline=None)
@given(whole_leaves, st.sets(st.sampled_from([*WANTED, "*", "JP", "JP/13/Tokyo", "US/CA/LA/x", "XX"])))
def test_breakdown_of_whole_counts_is_bit_identical(leaf: dict[tuple[str, str, str], int], wanted: set[str]) -> None:
    got = [repr(list(_with(expand, k, lambda: expand.breakdown(leaf, wanted)).items())) for k in (None, KERNEL)]
    assert got[0] == got[1]


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from(REGIONS), names, names), whole, max_size=30),
       st.sets(st.sampled_from(WANTED)))
def test_breakdown_with_names_not_str_is_bit_identical(leaf: dict[Any, int], wanted: set[str]) -> None:
    got = [repr(list(_with(expand, k, lambda: expand.breakdown(leaf, wanted)).items())) for k in (None, KERNEL)]
    assert got[0] == got[1]


@needs_kernel
def test_breakdown_of_whole_counts_follows_any_chain() -> None:
    """A chain naming a key twice adds twice; a ``None`` child is no child; order of first sight."""
    def chain(region: str) -> tuple[Any, ...]:
        return {"a": ("a", "a", "*"), "b": ("b", None, "*"), "c": ("c", "*", "*")}[region]
    leaf = {("b", "x", "s"): 1, ("a", "y", "t"): 2, ("c", "x", "t"): 4, ("a", "x", "s"): 8}
    wanted = {"a", "*", "b", "c"}
    got = KERNEL.breakdown_sums(leaf, wanted, chain, expand.Breakdown)
    saved, expand.keys_of = expand.keys_of, chain  # type: ignore[assignment]
    try:
        want = _with(expand, None, lambda: expand.breakdown(leaf, wanted))
    finally:
        expand.keys_of = saved  # type: ignore[assignment]
    assert repr(list(got.items())) == repr(list(want.items()))
    assert repr(got["*"]) == repr(expand.Breakdown({"x": 17, "y": 2}, {"s": 9, "t": 10}, {"a": 10, "c": 4, "*": 4}))


def _sums_by_part(leaf: Any, part: int, start: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, n in leaf.items():
        out[key[part]] = out.get(key[part], start) + n
    return out


class _Key(tuple):  # type: ignore[type-arg]
    """A tuple subclass: not the exact tuple the int64 path takes."""


many_sources = st.one_of(st.sampled_from(["app", "web", "ios"]), st.integers(0, 80).map(lambda i: f"s{i}"))


@needs_kernel
@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from(REGIONS[:4]), st.sampled_from(["a", "b"]), many_sources),
                       st.one_of(whole, whole, whole, st.sampled_from([True, 2.0, -0.0])), max_size=120),
       st.sampled_from([0.0, -0.0, 0, 1.5, 0.5]), st.sampled_from([0, 2]), st.booleans())
def test_sums_by_part_of_whole_counts_are_bit_identical(leaf: dict[Any, Any], start: Any, part: int,
                                                        subclass_keys: bool) -> None:
    """Whole counts from a float zero, a start that is not a float zero, bools or floats among the
    counts, past 2**31, more than 64 names, keys that are not exact tuples: Python's sums, by repr."""
    assert KERNEL is not None
    if subclass_keys:
        leaf = {_Key(k): n for k, n in leaf.items()}
    assert repr(KERNEL.sums_by_part(leaf, part, start)) == repr(_sums_by_part(leaf, part, start))


@needs_kernel
def test_the_sums_keep_python_addition() -> None:
    """``0 + -0.0`` is ``0.0`` and ``0.0 + n`` a float; ints past 2**53 stay exact ints."""
    leaf = {("US/CA", "z", "app"): -0.0, ("US", "c", "app"): 2**60 + 1, ("US", "d", "web"): 3}
    assert repr(ingest_gap.source_sums(leaf)) == repr({"app": 0.0 + (2**60 + 1), "web": 3.0})
    b = expand.breakdown(leaf, {"US", "*"})
    assert list(b) == ["US", "*"]
    assert repr(b["US"].categories) == repr({"z": 0.0, "c": 2**60 + 1, "d": 3})
    assert repr(b["US"].children) == repr({"US/CA": 0.0})


# -- evidence rings -----------------------------------------------------------------------------

EDGE = [0.0, -0.0, 1.0, 0.1, 1e-300, 5e-324, 2.0**53 + 1.0, 3.4e38, 1e39, 1e300, float("inf"), float("nan")]
floats = st.one_of(st.floats(0.0, 1e6), st.floats(), st.sampled_from(EDGE))


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.lists(st.tuples(st.integers(0, 29), st.integers(0, 2**12 - 1)), min_size=1, max_size=35),
       st.data())
def test_evidence_record_is_bit_identical(n: int, steps: list[tuple[int, int]], data: st.DataObject) -> None:
    """Random rings and sums, windows at random ring positions (a lap's 0 included) and live rows."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    base = {name: (rng.random((n + 2, *shape)) * 50).astype(dtype) for name, (shape, dtype, _) in EVIDENCE_COLUMNS.items()}
    inputs = [[np.array(data.draw(st.lists(floats, min_size=n, max_size=n))) for _ in range(3)] for _ in steps]
    states = []
    for kernel in (None, KERNEL):
        cols = stored({k: v.copy() for k, v in base.items()})
        saved, evidence._kernel = evidence._kernel, kernel  # type: ignore[attr-defined]
        try:
            for (pos, mask), (x, m, v) in zip(steps, inputs, strict=True):
                live = np.array([(mask >> i) & 1 == 1 for i in range(n)])
                with np.errstate(all="ignore"):  # inf - inf, overflow: the values compared are the point
                    evidence.record(cols, n, pos, x, m, v, live)
        finally:
            evidence._kernel = saved  # type: ignore[attr-defined]
        states.append([a.tobytes() for a in cols.values()])
    assert states[0] == states[1]


@needs_kernel
def test_evidence_record_leaves_nan_windows_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled step applies to finite (and infinite) values and declines, writing nothing,
    when a value or a running sum is NaN (two NaNs meeting keep the SIMD loop's choice)."""
    monkeypatch.setattr(evidence, "_kernel", KERNEL)  # built, even when SPIKEDETECT_PURE=1 turned it off
    n = 3
    cols = stored({name: np.ones((n, *shape), dtype=dtype) for name, (shape, dtype, _) in EVIDENCE_COLUMNS.items()})
    leaving = (5 - np.array(evidence.HORIZONS[1:])) % evidence.RING
    finite, nan = np.array([1.0, np.inf, 3.0]), np.array([1.0, np.nan, 3.0])
    assert evidence._record_compiled(cols, n, slice(0, n), 5, leaving, finite, finite, finite)
    before = [a.tobytes() for a in cols.values()]
    assert not evidence._record_compiled(cols, n, slice(0, n), 6, leaving, finite, nan, finite)
    kept, cols["sum_m"][2, 0] = cols["sum_m"][2, 0], np.nan
    assert not evidence._record_compiled(cols, n, np.array([2]), 6, leaving, finite, finite, finite)
    cols["sum_m"][2, 0] = kept
    assert [a.tobytes() for a in cols.values()] == before


names = st.sampled_from(["feed", "login", "app", "web", "US/CA", "US/NY", "DE"])
counts = st.dictionaries(names, values, max_size=6)


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(counts, counts, st.dictionaries(names, st.tuples(values, values), max_size=4)),
                min_size=1, max_size=5), st.integers(0, 5))
def test_add_breakdown_is_bit_identical(windows: list[Any], cap: int) -> None:
    """An incident's sums after adding its windows' breakdowns one by one (a name new to them from
    0.0; a new child only under ``cap``): the same keys in the same order, the same bits."""
    got = []
    for add in (expand.add_breakdown_py, KERNEL.add_breakdown):
        sums: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] = ({"feed": 0.5}, {}, {"DE": [1.0, 2.0]})
        for cats, srcs, kids in windows:
            add(*sums, cats, srcs, kids, cap)
        add(sums[0], sums[1], sums[2], sums[0], {}, {}, cap)  # a dict added into itself
        got.append(repr(sums))
    assert got[0] == got[1]


@needs_kernel
def test_add_breakdown_adds_a_zero_as_python_does() -> None:
    """-0.0 + 0 is 0.0 in Python; Cython's own float + int kept -0.0."""
    got = []
    for add in (expand.add_breakdown_py, KERNEL.add_breakdown):
        sums: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] = ({"feed": -0.0}, {}, {"DE": [-0.0, -0.0]})
        add(*sums, {"feed": 0}, {}, {"DE": (0, 0)}, 1)
        got.append(repr(sums))
    assert got[0] == got[1] == repr(({"feed": 0.0}, {}, {"DE": [0.0, 0.0]}))
