"""Per interned leaf (:mod:`spikedetect.core.leaves`): the share rows its reports count in.

:meth:`LeafWindow.share_counts <spikedetect.core.leaf_window.LeafWindow.share_counts>` adds each leaf's
count to the rows of the busy keys on its region's path, in its category's column. Over a
window's :class:`~spikedetect.core.leaves.LeafFrame`, :class:`LeafPaths` keeps those facts per
key of the leaf table (``region_of``: the path's rows ``flat[start[g]:start[g] + length[g]]``) and
per category (``cat_of``: the column), so a window is one compiled loop
(``frame_share_counts``). A path is found again when a row is added for a key on its region's
chain (:meth:`LeafPaths.added`: a new row changes only those paths), every path when a row is
dropped (the last row moves into its place: :meth:`LeafPaths.dropped`) or the table's ids change
(its ``epoch``), the columns when the ids do. A new category
gets its column in the order the dict walk gives it one (services sorted, leaves in order, only
leaves with a path), so the columns are the walk's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from spikedetect.core.expand import keys_of
from spikedetect.core.leaves import CATEGORY, REGION, UNKNOWN, LeafFrame
from spikedetect.kernel import closing as _kernel

if TYPE_CHECKING:
    from spikedetect.core.composition.shares import ShareBank

IntArray = npt.NDArray[np.intp]
SLACK = 1024  # paths found again (their old ones dead in ``flat``) before every path is found anew


class LeafPaths:
    """Per key of a leaf table: where its share path starts in ``flat`` and how long it is; per
    category: its column (``UNKNOWN`` until a frame needs them)."""

    def __init__(self) -> None:
        self._epoch: tuple[object, int] | None = None
        self._stale = True  # every path is to be found again
        # per (service, key): the table keys whose path was found with that key on its chain
        self._on_chain: dict[tuple[str, str], list[int]] = {}
        self._found = self._dead = 0  # paths found since all were, and of those found again since (in ``flat``)
        self.start: IntArray = np.zeros(0, dtype=np.intp)
        self.length: IntArray = np.zeros(0, dtype=np.intp)
        self.col: IntArray = np.zeros(0, dtype=np.intp)
        self.flat: IntArray = np.zeros(64, dtype=np.intp)  # the paths' rows, end to end
        self.used = 0  # how much of ``flat`` holds paths

    def added(self, sk: tuple[str, str]) -> None:
        """A share row was added for key ``sk``: the paths through it are to be found again."""
        start = self.start
        for g in self._on_chain.pop(sk, ()):
            if start[g] >= 0:
                start[g] = UNKNOWN
                self._dead += 1

    def dropped(self) -> None:
        """A share row was dropped (and the last row moved): every path is to be found again."""
        self._stale = True

    def fresh(self, frame: LeafFrame) -> bool:
        """Whether :meth:`counts` over ``frame`` would forget nothing first (:meth:`_check`: the
        table's ids the same, nothing stale): then the paths and columns known hold for it."""
        at = self._epoch
        return (at is not None and at[0] is frame.table and at[1] == frame.epoch and not self._stale
                and not (self._dead > SLACK and 2 * self._dead > self._found))

    def counts(self, bank: ShareBank, frame: LeafFrame, m: int) -> npt.NDArray[np.float64]:
        """``window.share_counts(bank, m)`` of this window (``m`` rows) over its frame: the same bits."""
        assert _kernel is not None
        self._check(bank, frame)
        for _ in range(3):
            x = np.zeros((m, max(len(bank.cats), 1)))
            if _kernel.frame_share_counts(frame.parts[REGION], frame.parts[CATEGORY], frame.counts, self.start,
                                          self.length, self.col, self.flat, x):
                return x
            self._resolve(bank, frame)
        raise AssertionError("every leaf of the frame has its path and column after _resolve")

    def _check(self, bank: ShareBank, frame: LeafFrame) -> None:
        """Forget what is stale, and make room for every key and category of the table."""
        epoch = (frame.table, frame.epoch)
        if self._epoch != epoch:
            self._epoch = epoch
            self.col = np.zeros(0, dtype=np.intp)
            self._stale = True
        if self._stale or (self._dead > SLACK and 2 * self._dead > self._found):  # (flat: mostly paths found again)
            self._stale = False
            self.start = np.zeros(0, dtype=np.intp)
            self.used = self._found = self._dead = 0
            self._on_chain.clear()
        self.start = _fit(self.start, len(frame.table.keys))
        self.length = _fit(self.length, len(self.start))
        self.col = _fit(self.col, len(frame.table.category_names))

    def _resolve(self, bank: ShareBank, frame: LeafFrame) -> None:
        """Find the frame's missing paths (in any order: finding one changes nothing) and
        columns (in the walk's order: a new category is given the next column)."""
        self._check(bank, frame)
        region, cat = frame.parts[REGION], frame.parts[CATEGORY]
        missing = list(dict.fromkeys(region[self.start[region] < 0].tolist()))
        if missing:
            self._find_paths(bank, frame, missing)
        known = len(frame.table.category_names)
        if not (self.col[:known] >= 0).all():  # (else every category has its column)
            self._give_columns(bank, frame, np.flatnonzero((self.length[region] > 0) & (self.col[cat] < 0)))

    def _find_paths(self, bank: ShareBank, frame: LeafFrame, missing: list[int]) -> None:
        """The paths of the keys ``missing``, after the ones in ``flat``."""
        rows, keys, on_chain = bank.rows, frame.table.keys, self._on_chain
        paths = []
        for g in missing:
            svc, reg = keys[g]
            chain = [(svc, k) for k in keys_of(reg)]
            for sk in chain:
                on_chain.setdefault(sk, []).append(g)
            paths.append([rows[sk] for sk in chain if sk in rows])
        self._found += len(missing)
        flat = [r for path in paths for r in path]
        if self.used + len(flat) > len(self.flat):
            self.flat = np.resize(self.flat, max(self.used + len(flat), 2 * len(self.flat)))
        self.flat[self.used:self.used + len(flat)] = flat
        at = self.used
        for g, path in zip(missing, paths, strict=True):
            self.start[g], self.length[g] = at, len(path)
            at += len(path)
        self.used = at

    def _give_columns(self, bank: ShareBank, frame: LeafFrame, need: IntArray) -> None:
        """The columns of the categories of the leaves at ``need`` (on a path, without one), in
        the walk's order: services sorted, leaves in order."""
        cat, names = frame.parts[CATEGORY], frame.table.category_names
        by_service = frame.by_service(need)
        for svc in bank.services():
            for i in by_service.get(svc, []):
                c = cat[i]
                if self.col[c] < 0:
                    self.col[c] = bank.col(names[c])


def _fit(a: IntArray, size: int) -> IntArray:
    """``a`` grown to ``size`` entries at least (doubling), the new ones ``UNKNOWN``."""
    if len(a) >= size:
        return a
    return np.concatenate([a, np.full(max(size, 2 * len(a), 64) - len(a), UNKNOWN, dtype=np.intp)])
