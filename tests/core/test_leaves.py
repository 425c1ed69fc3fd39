"""Closing windows over interned leaves (:mod:`spikedetect.core.leaves`, ``_closing_leaves.pxi``)
against walking the leaf dicts, compiled and in pure Python: three worlds fed the same windows, each
asking a :class:`~spikedetect.core.leaf_window.LeafWindow` as the scorer's steps do - with a frame,
without one over the compiled dict loops, and the pure-Python reference - must give the same
observed reports (and keyspace: rows created in the same order, last seen), the same share counts
and category columns (``~more`` included), the same source sums and breakdowns (``repr``: keys in
the same order, ints as ints, floats bit for bit), window after window, while keys appear, share rows come and go, keys
retire and the leaf table is cleared; counts whole or not (a window with a fraction, a NaN or a
huge count has no frame and walks the dicts).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import bits, using_kernel

from spikedetect.core import expand, ingest_gap, leaf_window, leaves, window_scores
from spikedetect.core.composition import leaf_paths, shares
from spikedetect.core.composition.shares import ShareBank
from spikedetect.core.detectors import SeasonalBaseline
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.leaves import LeafTable
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")
MODULES = (window_scores, shares, ingest_gap, leaves, leaf_paths, expand, leaf_window)

SERVICES = ["ig", "fb", "wa"]
REGIONS = ["US", "US/CA", "US/CA/LA", "US/NY", "DE", "DE/BY", "DE/BY/München", "FR/IDF", "US/CA/SF"]
CATEGORIES = [f"c{i}" for i in range(20)]  # more than a bank's 16 columns
SOURCES = ["app", "web", "ios"]
whole = st.one_of(st.integers(0, 10**6), st.integers(-1000, 1000), st.integers(0, 10**6).map(float),
                  st.sampled_from([0.0, -0.0, 2.0**52, 2**52]))
ints = st.one_of(st.integers(0, 50), st.integers(-(2**31) - 2, 2**31 + 2))  # breakdowns over frames: int windows
anything = st.one_of(whole, st.floats(allow_nan=True), st.sampled_from([0.5, 2**53, 2**60 + 1, 2.0**53, 1e300]))
CANONICAL: dict[tuple[str, str, str], tuple[str, str, str]] = {}
leaf_keys = st.tuples(st.sampled_from(REGIONS), st.sampled_from(CATEGORIES), st.sampled_from(SOURCES))


@st.composite
def windows(draw: st.DrawFn) -> dict[str, dict[tuple[str, str, str], Any]]:
    values = [anything, whole, whole, ints, ints][draw(st.integers(0, 4))]
    svcs = draw(st.lists(st.sampled_from(SERVICES), unique=True, max_size=3))
    same = draw(st.booleans())  # the same key objects window after window, as a counter's (the index's hits)
    return {svc: {CANONICAL.setdefault(k, k) if same else k: n
                  for k, n in draw(st.dictionaries(leaf_keys, values, max_size=30)).items()} for svc in svcs}


@dataclass
class World:
    """A keyspace, a share bank and a leaf table, closed window by window one way."""

    kernel: Any  # the closing loops, or None: pure Python
    frames: bool  # over frames (else the dict walks)
    ks: Keyspace = field(default_factory=lambda: Keyspace(SeasonalBaseline(60_000)))
    bank: ShareBank = field(default_factory=ShareBank)
    table: LeafTable = field(default_factory=LeafTable)

    def close(self, ws: int, per_service: dict[str, dict[tuple[str, str, str], Any]], wanted: set[str]
              ) -> tuple[Any, ...]:
        with using_kernel(MODULES, self.kernel), np.errstate(all="ignore"):
            window = LeafWindow.of(self.table, self.ks, per_service) if self.frames else LeafWindow(per_service)
            if self.frames and self.kernel is not None:
                assert (window.frame is not None) == _frameable(per_service)
            else:
                assert window.frame is None
            observed = window_scores.observe(self.ks, window, ws)
            x = window.share_counts(self.bank, len(self.bank.row_keys))
            sums = [repr(window.source_sums(svc)) for svc in SERVICES]
            details = [repr(list(window.breakdown(svc, wanted).items())) for svc in SERVICES]
        return (bits(observed), list(self.ks.keys), self.ks.last_seen[:self.ks.size].tobytes(), bits(x), x.shape,
                list(self.bank.cats.items()), sums, details)

    def change_rows(self, add: list[int], retire: list[int]) -> None:
        """Share rows for the keys at ``add`` (as busy keys get them); keys at ``retire`` that
        are nobody's parent leave the keyspace, and their share rows the bank."""
        ks = self.ks
        for r in add:
            if r < ks.size:
                self.bank.row(ks.keys[r])
        parents = set(ks.parent[:ks.size].tolist())
        gone = sorted({r for r in retire if r < ks.size and r not in parents})
        ks.remove(gone)
        for sk in [sk for sk in self.bank.row_keys if sk not in ks.index]:
            self.bank.drop_row(sk)


def _frameable(per_service: dict[str, dict[tuple[str, str, str], Any]]) -> bool:
    """Every count an int or a float holding a whole number, their magnitudes summing below 2**53."""
    counts = [n for leaf in per_service.values() for n in leaf.values()]
    return all(type(n) in (int, float) and math.isfinite(n) and n == int(n) and abs(n) < 2**53 for n in counts) \
        and sum(abs(int(n)) for n in counts) < 2**53


@needs_kernel
@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(windows(), st.lists(st.integers(0, 40), max_size=4),
                                st.lists(st.integers(0, 40), max_size=3),
                                st.sets(st.sampled_from(["*", *REGIONS]), max_size=4)), min_size=1, max_size=12),
       small_table=st.booleans())
def test_frames_close_windows_as_the_dict_walks_and_pure_python(steps: list[Any], small_table: bool) -> None:
    saved = leaves.MIN_KEYS, leaf_paths.SLACK
    if small_table:  # the table cleared often: every cache built on its ids starts again; so do the paths
        leaves.MIN_KEYS, leaf_paths.SLACK = 2, 0
    try:
        worlds = [World(KERNEL, True), World(KERNEL, False), World(None, False)]
        for t, (per_service, add, retire, wanted) in enumerate(steps):
            got = [w.close(60_000 * t, per_service, wanted) for w in worlds]
            assert got[0] == got[2], "frames vs pure Python"
            assert got[1] == got[2], "compiled dict walks vs pure Python"
            for w in worlds:
                w.change_rows(add, retire)
    finally:
        leaves.MIN_KEYS, leaf_paths.SLACK = saved


@needs_kernel
def test_a_frame_holds_ids_and_counts_in_dict_order_and_only_exact_counts() -> None:
    ks, table = Keyspace(SeasonalBaseline(60_000)), LeafTable()
    with using_kernel(MODULES, KERNEL):
        frame = table.frame(ks, {"ig": {("US/CA", "feed", "app"): 2, ("US", "login", "web"): 1.0},
                                 "fb": {("US", "feed", "app"): -0.0}})
        assert frame is not None
        assert frame.parts.tolist() == [[0, 1, 2], [0, 1, 0], [0, 1, 0]] and frame.counts.tolist() == [2.0, 1.0, 0.0]
        assert frame.services == ["ig", "fb"] and frame.span("fb") == (2, 3) and frame.span("wa") == (0, 0)
        assert table.keys == [("ig", "US/CA"), ("ig", "US"), ("fb", "US")]
        for bad in (0.5, float("nan"), float("inf"), 2**53, 2.0**53, True, np.int64(3)):
            assert table.frame(ks, {"ig": {("US", "feed", "app"): bad}}) is None, bad
        assert table.frame(ks, {"ig": {("US", "feed", "app"): 2**52, ("DE", "feed", "app"): 2**52}}) is None
        assert table.frame(ks, {"ig": {("US", "feed", "app"): 2**52 - 1}}) is not None
    with using_kernel(MODULES, None):
        assert table.frame(ks, {"ig": {("US", "feed", "app"): 1}}) is None  # pure: no frames


@needs_kernel
def test_the_table_is_cleared_when_keyspace_rows_move() -> None:
    ks, table = Keyspace(SeasonalBaseline(60_000)), LeafTable()
    window = {"ig": {("US/CA", "feed", "app"): 2}}
    with using_kernel(MODULES, KERNEL):
        frame = table.frame(ks, window)
        assert frame is not None
        window_scores.observe(ks, LeafWindow(window, frame), 0)
        epoch = table.epoch
        assert table.frame(ks, window) is not None and table.epoch == epoch
        ks.remove([ks.index[("ig", "US/CA")]])
        assert table.frame(ks, window) is not None and table.epoch == epoch + 1
        assert (table.own_row[:len(table.keys)] == -1).all()


@needs_kernel
def test_the_index_finds_key_objects_seen_before_as_it_grows() -> None:
    ks, table = Keyspace(SeasonalBaseline(60_000)), LeafTable()
    window = {svc: {(f"R{i % 1000}", f"c{i % 7}", f"s{i // 1000}"): i for i in range(3000)} for svc in ("ig", "fb")}

    def copied() -> dict[str, dict[tuple[str, ...], int]]:  # equal keys, new objects
        return {svc: {tuple(list(k)): n for k, n in leaf.items()} for svc, leaf in window.items()}

    with using_kernel(MODULES, KERNEL):
        first = table.frame(ks, window)
        assert first is not None and len(table.index) == 6000
        assert not table.index.inserting  # every key was new: the next window's misses are not kept
        again = table.frame(ks, window)  # every key from the index
        assert again is not None and again.parts.tobytes() == first.parts.tobytes() and table.index.inserting
        fresh = table.frame(ks, copied())  # by value, and kept
        assert fresh is not None and fresh.parts.tobytes() == first.parts.tobytes()
        assert len(table.index) == 12000 and not table.index.inserting
        fresh = table.frame(ks, copied())  # by value, not kept
        assert fresh is not None and fresh.parts.tobytes() == first.parts.tobytes() and len(table.index) == 12000
        table.clear()
        assert len(table.index) == 0 and table.index.inserting


@needs_kernel
def test_the_index_keeps_inserting_while_some_key_objects_come_back() -> None:
    """A counter's windows: few leaves of one window were in the last, but those are the same
    objects - the index keeps learning the new ones (and finds them by identity later)."""
    ks, table = Keyspace(SeasonalBaseline(60_000)), LeafTable()
    old = {("US", "feed", "app"): 1, ("US", "feed", "web"): 1}
    with using_kernel(MODULES, KERNEL):
        assert table.frame(ks, {"ig": old}) is not None and not table.index.inserting  # (all new)
        assert table.frame(ks, {"ig": old}) is not None and table.index.inserting  # (all found)
        for w in range(3):  # two leaves seen before among 100 new ones each window
            window = {"ig": {**old, **{(f"R{w}-{i}", "feed", "app"): 1 for i in range(100)}}}
            before = len(table.index)
            assert table.frame(ks, window) is not None
            assert len(table.index) == before + 100 and table.index.inserting
        by_value = table.frame(ks, {"ig": {tuple(list(k)): n for k, n in window["ig"].items()}})
        assert by_value is not None and not table.index.inserting  # no object came back


@needs_kernel
def test_a_copied_table_starts_its_index_empty_and_gives_the_same_ids() -> None:
    ks, table = Keyspace(SeasonalBaseline(60_000)), LeafTable()
    window = {"ig": {("US/CA", "feed", "app"): 2, ("US", "login", "web"): 1}}
    with using_kernel(MODULES, KERNEL):
        first = table.frame(ks, window)
        twin = copy.deepcopy(table)
        assert len(table.index) == 2 and len(twin.index) == 0
        again = twin.frame(ks, window)
        assert first is not None and again is not None and again.parts.tobytes() == first.parts.tobytes()


@needs_kernel
def test_a_frame_breakdown_credits_a_child_to_each_key_it_is_met_under(monkeypatch: pytest.MonkeyPatch) -> None:
    """The frame's sums know a (key, child) pair by its child alone (a region's parent is one); a
    chain that puts one child under two keys (no region's does) still gives the reference's sums."""
    chains = {"r1": ("r1", "x", "a", "*"), "r2": ("r2", "x", "b", "*")}
    leaf = {("r1", "c", "s"): 1, ("r2", "c", "s"): 2, ("r1", "d", "s"): 4}
    wanted = {"a", "b", "x", "*"}
    for mod in (leaves, expand):
        monkeypatch.setattr(mod, "keys_of", chains.__getitem__)
    with using_kernel(MODULES, KERNEL):
        window = LeafWindow.of(LeafTable(), Keyspace(SeasonalBaseline(60_000)), {"ig": leaf})
        got = window.breakdown("ig", wanted)
    with using_kernel(MODULES, None):
        want = expand.breakdown(leaf, wanted)
    assert window.frame is not None and window.frame.ints
    assert repr(list(got.items())) == repr(list(want.items()))
    assert (got["a"].children, got["b"].children, got["*"].children) == ({"x": 5}, {"x": 2}, {"a": 5, "b": 2})
