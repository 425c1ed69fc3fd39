"""The composition detector: one closed window's steps over the busy keys, and its state.

Each closed window: the rows follow the scorer's keys, the window's reports per key and
category are counted (:mod:`.shares`), scored (:mod:`.tails`), keys that qualify two windows
in a row (one at twice the score) open a member and open members step (:mod:`.members`),
and the shares learn (score before learn). Keys whose total is not normal (an open count
incident, or an anomalous window) neither open nor learn, and their evidence is cleared:
that is an outage, reported as one. Windows of an open member, and windows where a category
qualifies or still shifts, never teach the shares; the others teach fully, so the normal
drift of a mix over the day is followed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spikedetect.core.composition.fused import FusedWindow
from spikedetect.core.composition.members import Group, KeyWindow, Member, MemberBook
from spikedetect.core.composition.shares import MIN_EXPECTED, WARM_REPORTS, ShareBank
from spikedetect.core.composition.tails import OPEN_SCORE, Tails, forget_evidence, score_tails
from spikedetect.core.keyspace import ServiceKey
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.leaves import LeafFrame
from spikedetect.core.signal_events import SignalEvent
from spikedetect.kernel import closing as _kernel

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]


@dataclass
class KeyState:
    """One key's state as plain data: shares, leaky sums, reports learned, hits, member."""

    shares: dict[str, float] = field(default_factory=dict)
    acc: dict[str, list[float]] = field(default_factory=dict)  # category -> [S, E short; S, E long; CUSUM]
    learned: float = 0.0
    hits: int = 0
    member: Member | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"shares": self.shares, "acc": self.acc, "learned": self.learned, "hits": self.hits,
                "member": None if self.member is None else dict(self.member.__dict__)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KeyState:
        m = d.get("member")
        return cls({str(k): float(v) for k, v in d["shares"].items()},
                   {str(k): [float(x) for x in v] for k, v in d["acc"].items()},
                   float(d["learned"]), int(d["hits"]), None if m is None else Member(**m))


class CompositionDetector(ShareBank):
    """Learns category shares per busy key and publishes composition incidents; pure.

    Only keys with an open member or a new one go through Python; the rest is a few vector
    operations over the share rows."""

    def __init__(self, window_ms: int, detector: Mapping[str, str]) -> None:
        super().__init__()
        self.window_ms = window_ms
        self.book = MemberBook(window_ms, detector)
        # (the keys' index, its moves) when the cache below was made (None: rows changed since)
        self._rows_at: tuple[Mapping[ServiceKey, int], int | None] | None = None
        self._key_rows_cache: tuple[IntArray, BoolArray] = (np.zeros(0, dtype=np.intp), np.zeros(0, dtype=bool))
        self._fused = FusedWindow()  # the compiled window's scratch

    @property
    def members(self) -> dict[ServiceKey, Member]:
        return self.book.members

    @property
    def groups(self) -> dict[str, Group]:
        return self.book.groups

    @property
    def keys(self) -> dict[ServiceKey, KeyState]:
        """Every key's state as plain data (tests, snapshots)."""
        return {sk: self._key_state(sk) for sk in self.row_keys}

    def close_window(self, ws: int, window: LeafWindow, keys: Sequence[ServiceKey],
                     index: Mapping[ServiceKey, int], expected: FloatArray, blocked: BoolArray,
                     keys_moves: int | None = None) -> list[SignalEvent]:
        """Score, step and learn one closed window (its leaves: :mod:`~spikedetect.core.leaf_window`).
        ``blocked``: keys whose total is not normal; ``keys_moves`` (:attr:`~spikedetect.core.keyspace.Keyspace.moves`, when the caller has a
        keyspace) lets each row's key row be kept from one window to the next."""
        if _kernel is not None and window.frame is not None and not self.book.members:
            done = self._close_compiled(ws, window.frame, len(keys), index, expected, blocked, keys_moves)
            if done is not None:
                return done
        key_rows = self._track(keys, index, expected, keys_moves)
        m = len(self.row_keys)
        if m == 0:
            return []
        touched = self._window(ws, window.share_counts(self, m), blocked[key_rows])
        return [ev for svc in sorted(touched) for ev in self.book.emit(svc, ws)] if touched else []

    def _close_compiled(self, ws: int, frame: LeafFrame, n_keys: int, index: Mapping[ServiceKey, int],
                        expected: FloatArray, blocked: BoolArray, keys_moves: int | None) -> list[SignalEvent] | None:
        """The usual window (no member open, the rows' key rows kept, the frame's paths fresh) in
        one compiled call (:meth:`FusedWindow.close <.fused.FusedWindow.close>`: ``_track``'s check,
        the share counts, the block and :meth:`_window`'s call, the same bits), or None - nothing
        moved - for the steps one by one."""
        key_rows, no_row = self._key_rows_cache
        if (not self._rows_kept(index, keys_moves) or len(no_row) < n_keys or not len(key_rows)
                or not self.leaf_paths.fresh(frame)):
            return None
        fused = self._fused
        steps = fused.close(self, frame, n_keys, expected, blocked, key_rows, no_row)
        if steps == 0:
            return []
        if steps < 0:
            return None
        x, block = fused.x, blocked[key_rows]
        s = fused.steps(*x.shape, steps)
        touched = self._finish(ws, x, block, s.n, s.tails, s.weight, s.rows)
        return [ev for svc in sorted(touched) for ev in self.book.emit(svc, ws)] if touched else []

    def _window(self, ws: int, x: FloatArray, block: BoolArray) -> set[str]:
        """One window of counts ``x`` (a row per key, a column per category; ``block``: rows whose
        total is not normal): score, open and step members, forget, learn (in the compiled closing
        loops when they are built, :mod:`.fused`: the same bits). The services touched."""
        m, k = x.shape
        acc = self.acc[:m, :k]
        if _kernel is not None:
            held = block.view(np.uint8)
            if self.book.members:
                held = held | (self._has_member(m).view(np.uint8) << np.uint8(1))
            steps = self._fused.run(self, x, held)
            if steps is None:  # (no member stepped: the window was forgotten and learned there)
                return set()
            n, t, weight, rows = steps.n, steps.tails, steps.weight, steps.rows
        else:
            n = x.sum(axis=1)
            t = score_tails(x, n, self.shares[:m, :k], acc)
            has_member = self._has_member(m)
            opening, weight = self._opening(t, n, block | has_member)
            rows = np.flatnonzero(has_member | opening).tolist()
        return self._finish(ws, x, block, n, t, weight, rows)

    def _finish(self, ws: int, x: FloatArray, block: BoolArray, n: FloatArray, t: Tails, weight: FloatArray,
                rows: list[int]) -> set[str]:
        """Step the members of ``rows``, forget the blocked rows' evidence and learn; the services touched."""
        touched = self._step_members(ws, rows, x, n, t)
        if block.any():  # an outage's mix is the outage's: its evidence never carries over
            forget_evidence(self.acc[: x.shape[0], : x.shape[1]], block)
        self._learn_window(x, n, weight)
        return touched

    def _track(self, keys: Sequence[ServiceKey], index: Mapping[ServiceKey, int], expected: FloatArray,
               keys_moves: int | None) -> IntArray:
        """Rows follow the scorer's keys: a retired key is forgotten, a busy one gets a row.
        Returns each row's key row."""
        key_rows, no_row = self._key_rows(index, len(keys), keys_moves)
        busy = np.greater_equal(expected[: len(keys)], MIN_EXPECTED)
        busy &= no_row
        if not np.count_nonzero(busy):  # (the usual window: no key became busy)
            return key_rows
        for r in np.flatnonzero(busy).tolist():  # (in key order, as rows were always added)
            self.row(keys[r])
        return self._key_rows(index, len(keys), keys_moves)[0]

    def _rows_changed(self, added: ServiceKey | None) -> None:
        super()._rows_changed(added)
        self._rows_at = None

    def _rows_kept(self, index: Mapping[ServiceKey, int], keys_moves: int | None) -> bool:
        """Whether the cached key rows (:meth:`_key_rows`) still hold: made for this ``index`` at
        these ``keys_moves`` (not None), with no row added or dropped here since. Keys added to the
        index since are not in the cache's ``no_row`` yet (it is shorter than the keys)."""
        at = self._rows_at
        return keys_moves is not None and at is not None and at[0] is index and at[1] == keys_moves

    def _key_rows(self, index: Mapping[ServiceKey, int], n_keys: int, keys_moves: int | None
                  ) -> tuple[IntArray, BoolArray]:
        """Each row's key row, and which of the ``n_keys`` keys have no row, after forgetting the
        rows of retired keys. Kept while the same keys moved no row (``keys_moves``) and no row
        was added or dropped here (:meth:`_rows_changed`): then no key retired, and keys added since
        have no row yet."""
        if not self._rows_kept(index, keys_moves):
            for sk in [sk for sk in self.row_keys if sk not in index]:
                self.drop_row(sk)
                self.book.forget(sk)
            key_rows = np.fromiter(map(index.__getitem__, self.row_keys), dtype=np.intp, count=len(self.row_keys))
            no_row = np.ones(n_keys, dtype=bool)
            no_row[key_rows] = False
            self._key_rows_cache = (key_rows, no_row)
            self._rows_at = (index, keys_moves)
        elif len(self._key_rows_cache[1]) < n_keys:  # keys added since: none of them has a row
            key_rows, no_row = self._key_rows_cache
            self._key_rows_cache = (key_rows, np.concatenate([no_row, np.ones(n_keys - len(no_row), dtype=bool)]))
        return self._key_rows_cache

    def _has_member(self, m: int) -> BoolArray:
        """The rows (of the first ``m``) with an open member."""
        has = np.zeros(m, dtype=bool)
        rows = self.rows
        for sk in self.members:
            r = rows.get(sk)
            if r is not None and r < m:
                has[r] = True
        return has

    def _opening(self, t: Tails, n: FloatArray, held: BoolArray) -> tuple[BoolArray, FloatArray]:
        """Rows that open a member: warm keys not ``held`` (blocked, or with a member) that
        qualify two windows in a row, or once at twice the score. Counts the hits. And each row's
        learning weight, but for members opened now (:meth:`_learn_window`)."""
        m = len(n)
        opened, weight = np.empty(m, dtype=np.bool_), np.empty(m)
        warm = self.learned[:m] >= WARM_REPORTS
        rising = t.qual.any(axis=1) & warm & ~held
        hits = self.hits[:m]
        hits[:] = np.where(rising, hits + 1, 0)
        strong = (t.qual & (t.score >= 2 * OPEN_SCORE)).any(axis=1)
        opened[:] = rising & ((hits >= 2) | strong) & (n > 0)
        # a window where some category qualifies or still shifts does not teach, the others teach
        # fully (a share that drifts over the day is followed, and a lag cannot freeze the shares as a
        # 'tenth' would); nor does a held key's, or one without reports
        weight[:] = np.where((t.qual | t.shifting).any(axis=1) & warm, 0.0, 1.0)
        weight[held | (n <= 0)] = 0.0
        return opened, weight

    def _step_members(self, ws: int, rows: list[int], x: FloatArray, n: FloatArray, t: Tails) -> set[str]:
        """Step the open members and open the new ones among ``rows``; the services touched."""
        names = self.names()[: x.shape[1]]
        touched: set[str] = set()
        for r in rows:
            sk = self.row_keys[r]
            kw = KeyWindow(ws, {names[c]: float(x[r, c]) for c in np.flatnonzero(x[r]).tolist()}, float(n[r]),
                           {names[c]: float(t.score[r, c]) for c in np.flatnonzero(t.used[r]).tolist()},
                           self.shares[r], self.acc[r], self.cats)
            touched.add(sk[0])
            if sk in self.members:
                if self.book.step(sk, kw) is not None:
                    self.hits[r] = 0
                    forget_evidence(self.acc, r)
            else:
                rose = [names[c] for c in np.flatnonzero(t.qual[r]).tolist()]
                first = ws - (int(self.hits[r]) - 1) * self.window_ms if self.hits[r] >= 2 else ws
                self.book.open(sk, first, sorted(rose, key=lambda c: (-kw.scores[c], c)), kw)
        return touched

    def _learn_window(self, x: FloatArray, n: FloatArray, weight: FloatArray) -> None:
        """The rows learn with their ``weight`` (:meth:`_opening`), but keys with a member."""
        if self.members:
            weight[self._has_member(len(n))] = 0.0
        self.learn(x, n, weight)

    # -- state -----------------------------------------------------------------------
    def _key_state(self, sk: ServiceKey) -> KeyState:
        r = self.rows[sk]
        cols = [(c, col) for c, col in self.cats.items()
                if self.shares[r, col] > 0 or self.acc[r, col].any()]
        return KeyState({c: float(self.shares[r, col]) for c, col in cols},
                        {c: self.acc[r, col].tolist() for c, col in cols},
                        float(self.learned[r]), int(self.hits[r]), self.members.get(sk))

    def export_key(self, sk: ServiceKey) -> dict[str, Any] | None:
        """One key's state as plain JSON data (None: the key is not tracked)."""
        return self._key_state(sk).to_dict() if sk in self.rows else None

    def import_key(self, sk: ServiceKey, d: Mapping[str, Any]) -> None:
        st = KeyState.from_dict(d)
        r = self.row(sk)
        self.shares[r], self.acc[r] = 0.0, 0.0
        for c, share in st.shares.items():
            self.shares[r, self.col(c)] = share
        for c, a in st.acc.items():
            self.acc[r, self.col(c)] = a
        self.learned[r], self.hits[r] = st.learned, st.hits
        if st.member is not None:
            self.members[sk] = st.member
        else:
            self.members.pop(sk, None)

    def to_dict(self, with_keys: bool = True) -> dict[str, Any]:
        keys = [[svc, key, self._key_state((svc, key)).to_dict()] for svc, key in self.row_keys] if with_keys else []
        return {"keys": keys, "groups": {svc: dict(g.__dict__) for svc, g in sorted(self.groups.items())}}

    def load(self, d: Mapping[str, Any]) -> None:
        for svc, key, st in d.get("keys", []):
            self.import_key((str(svc), str(key)), st)
        self.book.groups = {str(svc): Group(**g) for svc, g in d["groups"].items()}
