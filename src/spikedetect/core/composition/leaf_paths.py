"""Per interned leaf (:mod:`spikedetect.core.leaves`): the share rows its reports count in.

:meth:`ShareBank.counts <spikedetect.core.composition.shares.ShareBank.counts>` adds each leaf's
count to the rows of the busy keys on its region's path, in its category's column. Over a
window's :class:`~spikedetect.core.leaves.LeafFrame`, :class:`LeafPaths` keeps those facts per
key of the leaf table (``region_of``: the path's rows ``flat[start[g]:start[g] + length[g]]``) and
per category (``cat_of``: the column), so a window is one compiled loop
(``frame_share_counts``). The paths are found again when the bank's rows change (its
``generation``) or the table's ids do (its ``epoch``), the columns when the ids do. A new category
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


class LeafPaths:
    """Per key of a leaf table: where its share path starts in ``flat`` and how long it is; per
    category: its column (``UNKNOWN`` until a frame needs them)."""

    def __init__(self) -> None:
        self._epoch: tuple[object, int] | None = None
        self._generation = -1
        self.start: IntArray = np.zeros(0, dtype=np.intp)
        self.length: IntArray = np.zeros(0, dtype=np.intp)
        self.col: IntArray = np.zeros(0, dtype=np.intp)
        self.flat: IntArray = np.zeros(64, dtype=np.intp)  # the paths' rows, end to end
        self.used = 0  # how much of ``flat`` holds paths

    def counts(self, bank: ShareBank, frame: LeafFrame, m: int) -> npt.NDArray[np.float64]:
        """``bank.counts`` of this window (``m`` rows) over its frame: the same bits."""
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
            self._generation = -1
        if self._generation != bank.generation:
            self._generation = bank.generation
            self.start = np.zeros(0, dtype=np.intp)
            self.used = 0
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
        rows, keys = bank.rows, frame.table.keys
        paths = [[rows[(svc, k)] for k in keys_of(reg) if (svc, k) in rows] for svc, reg in map(keys.__getitem__,
                                                                                              missing)]
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
