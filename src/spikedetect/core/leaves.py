"""A closed window's leaf counts as arrays: interned leaf parts and the window's frame.

Every closed window arrives as leaf counts per service, ``{service: {(region, category,
source): n}}``, and several steps of closing it sum them in different ways (each key's own
reports, the composition's share counts, the ingest gap's source sums). A :class:`LeafTable`
gives every distinct part of a leaf a small int id once - each ``(service, region)`` key, each
category, each ``(service, source)`` - with facts about it that stay true from window to window
(a key's keyspace row, here; its share path, in
:class:`~spikedetect.core.composition.leaf_paths.LeafPaths`); a :class:`LeafFrame` is one
window's leaves as arrays of those ids and of float64 counts, in the dicts' order, made in one
compiled pass, so the sums are loops over arrays (:mod:`spikedetect.kernel`,
``_closing_leaves.pxi``) instead of walks over dicts. (The parts, not whole leaves, are
interned by value: there are few of them and their tables stay small and hot, where a table of
every leaf ever seen grows large and its lookups miss the caches. A leaf's key object seen
before - a counter hands out the same tuple window after window - is found by its identity in
the table's ``index``, ``_closing_leaf_index.pxi``, without hashing the tuple or reading its
strings.) A window whose counts are all Python ints has its incident breakdowns summed over the
frame too (:meth:`LeafFrame.breakdown`).

Exactness: a frame is made only when every count is a whole number and the window's sum of
magnitudes is below 2**53 (counts from the counter always are): then any order of addition gives
the same bits as the references' Python sums. Otherwise, and when the compiled loops are not
built (``SPIKEDETECT_PURE``), there is no frame and every step walks the dicts as before.

The table is a cache: :meth:`LeafTable.frame` clears it when the keyspace's rows moved
(:meth:`~spikedetect.core.keyspace.Keyspace.remove`) or it grew far beyond the window's size.

>>> from spikedetect.core.detectors import SeasonalBaseline
>>> ks, table = Keyspace(SeasonalBaseline(60_000)), LeafTable()
>>> frame = table.frame(ks, {"ig": {("US/CA", "feed", "app"): 2, ("US", "feed", "web"): 1}})
>>> frame is None or (frame.parts.tolist(), frame.counts.tolist()) == ([[0, 1], [0, 0], [0, 1]], [2.0, 1.0])
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spikedetect.core.counter import LeafKey
from spikedetect.core.expand import Breakdown, Into, keys_of
from spikedetect.core.keyspace import Keyspace
from spikedetect.kernel import closing as _kernel

IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
MIN_KEYS = 1 << 16  # the table is cleared when it holds more keys than this and 8 windows' leaves
UNKNOWN = -1
REGION, CATEGORY, SOURCE = 0, 1, 2  # the rows of a frame's ``parts``


class LeafTable:
    """The interned parts since the last clear: ``keys[g]`` the ``(service, region)`` key with id
    ``g`` (``regions[service][region]``) and ``own_row[g]`` its keyspace row (``UNKNOWN`` until a
    frame asks); ``category_names[c]`` (``categories[category]``); per service, ``sources[service]
    [source]`` the index into ``source_names[service]``."""

    def __init__(self) -> None:
        self.epoch = 0
        self._ks: Keyspace | None = None
        self._moves = 0
        self.index: Any = None if _kernel is None else _kernel.LeafIndex()  # key objects seen -> part ids
        self.clear()

    def clear(self) -> None:
        """Forget every id (the caches built on them see the new ``epoch``)."""
        self.epoch += 1
        if self.index is not None:
            self.index.clear()
        self.regions: dict[str, dict[str, int]] = {}
        self.keys: list[tuple[str, str]] = []
        self.own_row: IntArray = np.full(64, UNKNOWN, dtype=np.intp)
        self.categories: dict[str, int] = {}
        self.category_names: list[str] = []
        self.sources: dict[str, dict[str, int]] = {}
        self.source_names: dict[str, list[str]] = {}

    def intern(self, where: tuple[int, str], part: str) -> int:
        """The id of a leaf's part (``where``: which part, and the leaf's service), given one when
        new."""
        kind, svc = where
        if kind == CATEGORY:
            got = self.categories.setdefault(part, len(self.category_names))
            if got == len(self.category_names):
                self.category_names.append(part)
            return got
        if kind == SOURCE:
            names = self.source_names.setdefault(svc, [])
            got = self.sources.setdefault(svc, {}).setdefault(part, len(names))
            if got == len(names):
                names.append(part)
            return got
        got = self.regions.setdefault(svc, {}).setdefault(part, len(self.keys))
        if got == len(self.keys):
            self.keys.append((svc, part))
            if got >= len(self.own_row):
                self.own_row = np.concatenate([self.own_row, np.full(len(self.own_row), UNKNOWN, dtype=np.intp)])
        return got

    def frame(self, ks: Keyspace, per_service: Mapping[str, Mapping[LeafKey, float]]) -> LeafFrame | None:
        """This window's frame, or None: no compiled loops, or counts a frame cannot hold exactly."""
        if _kernel is None or type(per_service) is not dict:
            return None
        if self.index is None:
            self.index = _kernel.LeafIndex()
        room = sum(map(len, per_service.values()))
        if ks is not self._ks or ks.moves != self._moves or max(len(self.keys), len(self.index)) > max(MIN_KEYS,
                                                                                                    8 * room):
            self.clear()
            self._ks, self._moves = ks, ks.moves
        parts, counts = np.empty((3, room), dtype=np.intp), np.empty(room)
        starts = np.empty(len(per_service) + 1, dtype=np.intp)
        got = _kernel.leaf_frame(per_service, self.index, self.regions, self.categories, self.sources, self.intern,
                                 parts, counts, starts)
        return LeafFrame(self, self.epoch, list(per_service), starts, parts, counts, got == 2) if got else None


@dataclass
class LeafFrame:
    """One window's leaves: ``parts`` (3, leaves) - each leaf's key, category and source ids
    (:class:`LeafTable`) - and ``counts``, in the dicts' order; service ``services[j]``'s leaves
    at ``starts[j]:starts[j + 1]``."""

    table: LeafTable
    epoch: int
    services: list[str]
    starts: IntArray
    parts: IntArray
    counts: FloatArray
    ints: bool = False  # every count was a Python int
    _spans: dict[str, tuple[int, int]] | None = field(default=None, repr=False)

    def span(self, svc: str) -> tuple[int, int]:
        """Where a service's leaves are (an empty span when it has none this window)."""
        if self._spans is None:
            b = self.starts.tolist()
            self._spans = {svc: (b[j], b[j + 1]) for j, svc in enumerate(self.services)}
        return self._spans.get(svc, (0, 0))

    def by_service(self, at: IntArray) -> dict[str, list[int]]:
        """The leaves at positions ``at`` (ascending) per service, in order."""
        out: dict[str, list[int]] = {}
        for j, i in zip((np.searchsorted(self.starts, at, side="right") - 1).tolist(), at.tolist(), strict=True):
            out.setdefault(self.services[j], []).append(i)
        return out

    def own_reports(self, ks: Keyspace) -> tuple[FloatArray, IntArray]:
        """``observe``'s own reports: ``observed`` (``ks.size`` rows, zeros but the keys' own
        reports) and the rows given them (once each), by ``kernel.frame_own_reports``; new keys
        are given rows first (:meth:`new_keys`)."""
        assert _kernel is not None
        for _ in range(2):
            observed, rows = np.zeros(ks.size), np.empty(len(self.counts), dtype=np.intp)
            m: int = _kernel.frame_own_reports(self.parts[REGION], self.counts, self.table.own_row, observed, rows)
            if m >= 0:
                return observed, rows[:m]
            self.new_keys(ks)
        raise AssertionError("every key of the frame has a row after new_keys")

    def new_keys(self, ks: Keyspace) -> None:
        """Every key of this frame given its keyspace row in ``own_row``, new keys created in the
        order the dicts' walk meets them (``observe``'s order)."""
        own, keys, index, region = self.table.own_row, self.table.keys, ks.index, self.parts[REGION]
        for i in np.flatnonzero(own[region] < 0).tolist():
            g = region[i]
            if own[g] < 0:
                got = index.get(keys[g])
                own[g] = ks.row(*keys[g]) if got is None else got

    def source_sums(self, svc: str) -> dict[str, float]:
        """``ingest_gap.source_sums`` of one service's leaves."""
        assert _kernel is not None
        lo, hi = self.span(svc)
        sums: dict[str, float] = _kernel.frame_source_sums(self.parts[SOURCE], self.counts, lo, hi,
                                                           self.table.source_names.get(svc, []))
        return sums

    def breakdown(self, svc: str, wanted: set[str], into: Into | None = None) -> dict[str, Breakdown] | None:
        """``expand.breakdown`` of one service's leaves when every count is an int (the sums are
        ints, as the reference's), or None: then walk the service's leaf dict. ``into``: see
        :meth:`~spikedetect.core.leaf_window.LeafWindow.breakdown_into`."""
        if not self.ints or _kernel is None:
            return None
        lo, hi = self.span(svc)
        t = self.table
        got: dict[str, Breakdown] | None = _kernel.frame_breakdown_sums(
            self.parts, self.counts, lo, hi, t.keys, t.category_names, t.source_names.get(svc, []), wanted, keys_of,
            Breakdown, into)
        return got
