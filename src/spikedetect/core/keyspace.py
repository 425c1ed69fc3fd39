"""The keys a scorer knows: ``(service, region key)`` <-> row of the baseline bank.

Rows are created parents first, so a key's parent always exists; a retired row is
filled by moving the last row into its place, keeping the arrays dense.

>>> from spikedetect.core.detectors import SeasonalBaseline
>>> ks = Keyspace(SeasonalBaseline(60_000))
>>> ks.row("ig", "US/CA")
2
>>> [ks.keys[i] for i in range(ks.size)], ks.parent[:3].tolist()
([('ig', '*'), ('ig', 'US'), ('ig', 'US/CA')], [-1, 0, 1])
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from spikedetect.core.detectors.base import Baseline
from spikedetect.core.regions import depth as key_depth
from spikedetect.core.regions import parent_key

ServiceKey = tuple[str, str]
NEVER = np.iinfo(np.int64).min // 2


class Keyspace:
    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.index: dict[ServiceKey, int] = {}
        self.keys: list[ServiceKey] = []
        self.parent: npt.NDArray[np.intp] = np.full(16, -1, dtype=np.intp)
        self.depth: npt.NDArray[np.int8] = np.zeros(16, dtype=np.int8)
        self.last_seen: npt.NDArray[np.int64] = np.full(16, NEVER, dtype=np.int64)
        self.closed_ws: npt.NDArray[np.int64] = np.full(16, NEVER, dtype=np.int64)  # last window applied
        self.mute_until: npt.NDArray[np.int64] = np.full(16, NEVER, dtype=np.int64)  # relearning until
        self.moves = 0  # how many times rows were removed (and others moved): caches of rows check it
        self._all_rows: npt.NDArray[np.intp] = np.arange(0, dtype=np.intp)  # read-only, grown on demand
        self.views: object = None  # the compiled loops' views of these arrays (core.window_fused keeps them)

    @property
    def size(self) -> int:
        return len(self.keys)

    def row(self, service: str, key: str) -> int:
        """The row of a key, created (with its ancestors) when new."""
        got = self.index.get((service, key))
        if got is not None:
            return got
        up = parent_key(key)
        parent = -1 if up is None else self.row(service, up)
        row = self.baseline.add_row()
        assert row == len(self.keys), "keyspace and baseline rows out of step"
        if row >= len(self.parent):
            grow = len(self.parent) * 2
            self.parent = np.resize(self.parent, grow)
            self.depth = np.resize(self.depth, grow)
            self.last_seen = np.resize(self.last_seen, grow)
            self.closed_ws = np.resize(self.closed_ws, grow)
            self.mute_until = np.resize(self.mute_until, grow)
        self.parent[row] = parent
        self.depth[row] = key_depth(key)
        self.last_seen[row] = NEVER
        self.closed_ws[row] = NEVER
        self.mute_until[row] = NEVER
        self.keys.append((service, key))
        self.index[(service, key)] = row
        return row

    def all_rows(self) -> npt.NDArray[np.intp]:
        """``np.arange(size)``, read-only: a view of one array kept (and grown) with the keyspace.

        >>> from spikedetect.core.detectors import SeasonalBaseline
        >>> ks = Keyspace(SeasonalBaseline(60_000)); _ = ks.row("ig", "US")
        >>> ks.all_rows().tolist(), ks.all_rows().flags.writeable
        ([0, 1], False)
        """
        n = self.size
        if len(self._all_rows) < n:
            rows = np.arange(max(n, 2 * len(self._all_rows)), dtype=np.intp)
            rows.flags.writeable = False
            self._all_rows = rows
        return self._all_rows[:n]

    def rows_by_depth(self) -> list[npt.NDArray[np.intp]]:
        """Row indexes grouped by depth 0..max, parents' depth first."""
        depth = self.depth[: self.size]
        top = int(depth.max()) if self.size else -1
        return [np.flatnonzero(depth == d) for d in range(top + 1)]

    def remove(self, rows: list[int]) -> None:
        """Forget rows (children before parents is the caller's duty)."""
        if rows:
            self.moves += 1
        for row in sorted(rows, reverse=True):
            last = self.size - 1
            key = self.keys[row]
            if row != last:
                moved = self.keys[last]
                self.baseline.move_row(last, row)
                self.keys[row] = moved
                self.index[moved] = row
                self.parent[row] = self.parent[last]
                self.depth[row] = self.depth[last]
                self.last_seen[row] = self.last_seen[last]
                self.closed_ws[row] = self.closed_ws[last]
                self.mute_until[row] = self.mute_until[last]
                n = self.size
                self.parent[:n][self.parent[:n] == last] = row
            self.keys.pop()
            del self.index[key]
            self.baseline.pop_row()

    def children_of(self, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        """Mask of rows (among all) whose parent is in ``rows``."""
        return np.isin(self.parent[: self.size], rows)
