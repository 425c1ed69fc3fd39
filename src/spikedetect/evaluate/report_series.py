"""The count series of ``spikedetect report``: what each charted key observed and expected.

The report events are replayed through the core (:class:`~spikedetect.replay.runner.Replay`)
with a ``Scorer.on_window`` hook (:class:`SeriesCollector`) that keeps, for the keys that had
incidents and the child regions their events list, the observed count, the expected count and
a band around it in a span around each incident (:func:`chart_span`). Nothing else is kept, so
memory stays small.

The band is ``expected ± 2·sqrt(phi·expected)`` (clipped at 0): about two standard
deviations of the negative binomial the score uses, with ``phi`` the key's learned
overdispersion where the model stores one (the seasonal model's ``phi``, read just after
the window was scored) and 1 (Poisson) otherwise. It is a guide for the eye; incidents open
on the score, not on the band.

Long spans are downsampled to at most ``max_points`` buckets: observed is the bucket's
maximum (spikes stay visible), expected the mean, the band the outer envelope.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikedetect.core import ClosedKeys, Scorer
from spikedetect.core.timefmt import time_field_ms

PAD_BEFORE_WINDOWS = 60
PAD_AFTER_WINDOWS = 30


@dataclass
class Slot:
    """One series to keep: a key over ``[lo_ms, hi_ms)`` (``hi_ms`` None: to the end of the data)."""

    service: str
    key: str
    lo_ms: int
    hi_ms: int | None
    window_ms: int
    obs: np.ndarray = field(init=False)
    exp: np.ndarray = field(init=False)
    phi: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = 64 if self.hi_ms is None else max(1, (self.hi_ms - self.lo_ms) // self.window_ms)
        self.obs, self.exp, self.phi = (np.full(n, np.nan) for _ in range(3))

    def put(self, ws: int, observed: float, expected: float, phi: float) -> None:
        i = (ws - self.lo_ms) // self.window_ms
        if i >= len(self.obs):  # open-ended: grow
            n = max(2 * len(self.obs), i + 1)
            self.obs, self.exp, self.phi = (np.concatenate([a, np.full(n - len(a), np.nan)])
                                            for a in (self.obs, self.exp, self.phi))  # fmt: skip
        self.obs[i], self.exp[i], self.phi[i] = observed, expected, phi

    def trim(self, end_ms: int) -> None:
        """Drop what lies past the end of the data."""
        n = max(1, (end_ms - self.lo_ms) // self.window_ms)
        self.obs, self.exp, self.phi = self.obs[:n], self.exp[:n], self.phi[:n]
        self.hi_ms = self.lo_ms + len(self.obs) * self.window_ms

    def series(self, max_points: int) -> dict[str, Any]:
        """``t0``, ``step`` (ms) and ``obs``/``exp``/``lo``/``hi`` lists (None where not scored)."""
        half = 2.0 * np.sqrt(self.phi * self.exp)
        lo, hi = np.maximum(self.exp - half, 0.0), self.exp + half
        k = max(1, math.ceil(len(self.obs) / max_points))
        cols: dict[str, tuple[np.ndarray, Callable[[np.ndarray], Any]]] = {
            "obs": (self.obs, np.nanmax), "exp": (self.exp, np.nanmean), "lo": (lo, np.nanmin), "hi": (hi, np.nanmax)
        }  # fmt: skip
        out: dict[str, Any] = {"t0": self.lo_ms, "step": k * self.window_ms}
        for name, (arr, agg) in cols.items():
            pad = (-len(arr)) % k
            blocks = np.concatenate([arr, np.full(pad, np.nan)]).reshape(-1, k)
            vals = [agg(b) if not np.all(np.isnan(b)) else math.nan for b in blocks]
            out[name] = [None if math.isnan(v) else round(float(v), 2) for v in vals]
        return out


class SeriesCollector:
    """A ``Scorer.on_window`` hook that fills :class:`Slot` arrays."""

    def __init__(self, scorer: Scorer, slots: list[Slot]) -> None:
        self.scorer = scorer
        self.slots = sorted(slots, key=lambda s: s.lo_ms)
        self.first_ws: int | None = None
        self.last_ws: int | None = None

    def __call__(self, ws: int, closed: ClosedKeys) -> None:
        if self.first_ws is None:
            self.first_ws = ws
        self.last_ws = ws
        ks = self.scorer.keyspace
        phi_col = ks.baseline.cols.get("phi")
        for slot in self.slots:
            if slot.lo_ms > ws:
                break
            if slot.hi_ms is not None and ws >= slot.hi_ms:
                continue
            row = ks.index.get((slot.service, slot.key))
            if row is not None:
                phi = max(1.0, float(phi_col[row])) if phi_col is not None else 1.0
                slot.put(ws, float(closed.observed[row]), float(closed.expected[row]), phi)


def chart_span(inc: Mapping[str, Any], window_ms: int) -> tuple[int, int | None]:
    """Chart start and end in ms (window-aligned; end None for an incident still open)."""
    opened = time_field_ms(inc.get("opened_at")) or 0
    closed = time_field_ms(inc.get("closed_at"))
    length = (closed if closed is not None else time_field_ms(inc.get("detected_at")) or opened) - opened
    lo = opened - max(PAD_BEFORE_WINDOWS * window_ms, length)
    if closed is None:
        return lo - lo % window_ms, None
    hi = closed + max(PAD_AFTER_WINDOWS * window_ms, length // 2)
    return lo - lo % window_ms, hi - hi % window_ms + window_ms
