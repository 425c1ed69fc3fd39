"""The learned category shares of the busy keys, as rows of numpy arrays.

One row per (service, region key) that expects ``MIN_EXPECTED`` reports in a window, one
column per category seen (at most ``MAX_CATEGORIES``; later ones share the last column,
``"~more"``): the expected share, the leaky sums and CUSUM of :mod:`.tails`, the reports
learned so far and the count of qualifying windows in a row. A window is a few vector
operations over these rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from spikedetect.core.composition.leaf_paths import LeafPaths
from spikedetect.core.expand import LeafCounts, keys_of
from spikedetect.core.keyspace import ServiceKey
from spikedetect.kernel import closing as _kernel

MIN_EXPECTED = 3.0  # reports a key must expect in a window to be judged (small keys are not)
WARM_REPORTS = 2000.0  # reports learned before a key is judged
LEARN_REPORTS = 1000.0  # learning weight of a window: 1 - exp(-n / LEARN_REPORTS), at most MAX_RATE
MAX_RATE = 1 / 60  # shares learn over an hour at least: slower than the 10-window evidence
MAX_CATEGORIES = 16


class ShareBank:
    """Rows of learned shares per busy key; rows are added on demand and a removed row is
    filled by the last one, keeping the arrays dense."""

    def __init__(self) -> None:
        self.cats: dict[str, int] = {}
        self.rows: dict[ServiceKey, int] = {}
        self.row_keys: list[ServiceKey] = []
        self.shares = np.zeros((16, MAX_CATEGORIES))
        self.acc = np.zeros((16, MAX_CATEGORIES, 5))  # S short, E short, S long, E long, CUSUM
        self.learned = np.zeros(16)
        self.hits = np.zeros(16, dtype=np.int64)
        self._services: list[str] | None = None  # the services of the rows, sorted (None: to compute)
        self.leaf_paths = LeafPaths()  # per interned leaf, its path and column (counts over a frame)

    def col(self, cat: str) -> int:
        """The column of a category, given one when new (the last column is shared by the rest)."""
        col = self.cats.get(cat)
        if col is None:
            col = len(self.cats) if len(self.cats) < MAX_CATEGORIES - 1 else MAX_CATEGORIES - 1
            if col < MAX_CATEGORIES - 1:
                self.cats[cat] = col
            else:
                self.cats.setdefault("~more", col)
        return col

    def row(self, sk: ServiceKey) -> int:
        """The row of a key, created (all zero) when new."""
        got = self.rows.get(sk)
        if got is not None:
            return got
        r = len(self.row_keys)
        if r >= len(self.learned):
            grow = 2 * len(self.learned)
            self.shares = np.concatenate([self.shares, np.zeros_like(self.shares)])
            self.acc = np.concatenate([self.acc, np.zeros_like(self.acc)])
            self.learned = np.resize(self.learned, grow)
            self.hits = np.resize(self.hits, grow)
        self.shares[r], self.acc[r], self.learned[r], self.hits[r] = 0.0, 0.0, 0.0, 0
        self.rows[sk] = r
        self.row_keys.append(sk)
        self._rows_changed(sk)
        return r

    def drop_row(self, sk: ServiceKey) -> None:
        """Forget a key's row; the last row moves into its place."""
        r = self.rows.pop(sk)
        self._rows_changed(None)
        last = len(self.row_keys) - 1
        if r != last:
            moved = self.row_keys[last]
            self.shares[r], self.acc[r] = self.shares[last], self.acc[last]
            self.learned[r], self.hits[r] = self.learned[last], self.hits[last]
            self.row_keys[r] = moved
            self.rows[moved] = r
        self.row_keys.pop()

    def _rows_changed(self, added: ServiceKey | None) -> None:
        """A row was added for key ``added`` (None: one was dropped, the last row moved into its
        place): what is kept about the rows is stale - the services, the leaf paths through the key
        (every path after a drop). The one notice of a change of rows: a subclass that keeps more
        about them forgets it here too."""
        self._services = None
        if added is None:
            self.leaf_paths.dropped()
        else:
            self.leaf_paths.added(added)

    def services(self) -> list[str]:
        """The services that have rows, sorted (cached until a row is added or dropped)."""
        if self._services is None:
            self._services = sorted({svc for svc, _ in self.row_keys})
        return self._services

    def walk_counts(self, per_service: Mapping[str, LeafCounts], m: int) -> npt.NDArray[np.float64]:
        """Reports per tracked key (row) and category (column) in this window (``m`` rows),
        walking the leaf dicts (:meth:`LeafWindow.share_counts
        <spikedetect.core.leaf_window.LeafWindow.share_counts>` without a frame; in the compiled
        closing loops when they are built: the same bits). Each region's path (the rows of the keys on its chain) is found once
        a walk: the one cache of paths that outlives a window is :attr:`leaf_paths`, the frames'."""
        if _kernel is not None:
            x = np.zeros((m, MAX_CATEGORIES))
            _kernel.share_counts(self, per_service, m, keys_of, x)
            return np.ascontiguousarray(x[:, :max(len(self.cats), 1)])
        rr: list[int] = []
        cc: list[int] = []
        vv: list[float] = []
        rows = self.rows
        for svc in self.services():
            paths: dict[str, list[int]] = {}
            by_rc: dict[tuple[str, str], float] = {}
            for (region, cat, _), cnt in per_service.get(svc, {}).items():
                by_rc[(region, cat)] = by_rc.get((region, cat), 0.0) + cnt
            for (region, cat), cnt in by_rc.items():
                path = paths.get(region)
                if path is None:
                    path = paths[region] = [rows[(svc, key)] for key in keys_of(region) if (svc, key) in rows]
                if path:
                    col = self.col(cat)
                    rr.extend(path)
                    cc.extend([col] * len(path))
                    vv.extend([cnt] * len(path))
        x = np.zeros((m, max(len(self.cats), 1)))
        if rr:
            np.add.at(x, (np.array(rr), np.array(cc)), np.array(vv))
        return x

    def names(self) -> list[str]:
        """Category name per column."""
        names = [""] * MAX_CATEGORIES
        for cat, col in self.cats.items():
            names[col] = cat
        return names

    def learn(self, x: npt.NDArray[np.float64], n: npt.NDArray[np.float64], weight: npt.NDArray[np.float64]) -> None:
        """Move the shares of the rows with ``weight`` > 0 towards this window's mix ``x / n``:
        a cold key averages its windows, a warm one learns at most ``MAX_RATE`` per window (in the
        compiled closing loops when they are built: the same bits)."""
        m = len(n)
        learned = self.learned[:m]
        sel = weight > 0
        if not sel.any():
            return
        nn = np.where(sel, n, 1.0)
        if _kernel is not None:  # the compiled closing loops: the same bits, numpy's exp
            _kernel.composition_learn(np.ascontiguousarray(x), n, weight, np.exp(-nn / LEARN_REPORTS),
                                      self.shares[:m, :x.shape[1]], learned, WARM_REPORTS, MAX_RATE)
            return
        rate = np.where(learned < WARM_REPORTS, nn / (learned + nn),
                        np.minimum(MAX_RATE, 1.0 - np.exp(-nn / LEARN_REPORTS)) * weight)
        rate = np.where(sel, rate, 0.0)
        k = x.shape[1]
        self.shares[:m, :k] += rate[:, None] * (x / nn[:, None] - self.shares[:m, :k])
        self.learned[:m] = np.minimum(learned + n * weight, 1e9)
