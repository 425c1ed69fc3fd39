"""Signals from scores: the rule that turns one closed window's scores into each key's
:class:`~spikedetect.core.incidents.Signal`, on top of the incident machine it drives.

The machine itself (phases, table, handlers, events) is :mod:`spikedetect.core.incidents`;
its names are re-exported here for the scorer.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from spikedetect.core.config import DetectorConfig
from spikedetect.core.evidence import HORIZONS
from spikedetect.core.incidents import IncidentMachine, Signal, WindowView

CALM, ELEVATED, ANOMALOUS, EXTREME = (int(s) for s in Signal)  # plain ints for numpy
KEEP_OPEN_EXPECTED = 30.0  # reports a horizon must expect to judge whether an incident goes on
# A sharp incident (reports at >= KEEP_SHORT_RATIO times expected so far) is judged on the shortest
# horizon over which its excess adds up to KEEP_OPEN_EXCESS * min_excess reports
KEEP_SHORT_RATIO = 5.0
KEEP_OPEN_EXCESS = 2.0
_LONG_WINDOWS = np.array(HORIZONS[1:])  # windows summed per horizon row
# rows with evidence over several windows, and for them (score, excess, observed/expected, expected
# sum), each of shape (H, len(rows))
Horizons = tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64],
                 npt.NDArray[np.float64], npt.NDArray[np.float64]]


class IncidentPolicy(IncidentMachine):
    """The incident machine plus the rule that gives its keys their signals."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__(config)
        # the horizon rows long enough for the sustained-sharp rule (a small city at 20x its night
        # level needs ~10 minutes for min_excess reports; a level shift at 2-3x still needs two
        # windows in a row)
        self._sharp_rows = np.greater_equal(_LONG_WINDOWS, config.sustained_sharp_windows)

    def signals(self, observed: npt.NDArray[np.float64], expected: npt.NDArray[np.float64],
                score: npt.NDArray[np.float64],
                horizons: Horizons | None = None,
                tracked: npt.NDArray[np.bool_] | None = None,
                keep: npt.NDArray[np.intp] | None = None) -> npt.NDArray[np.int8]:
        """Vectorised signal per key: calm / elevated / anomalous / extreme.

        ``score`` is the one-window score; ``horizons`` are the rows with evidence over several
        windows and, for them, (score, excess, observed/expected, expected sum) of the sums
        (shape (H, len(rows)), see :mod:`~spikedetect.core.evidence`).
        Sustained excess can open an incident for keys not ``tracked`` (no incident open); an
        open incident is kept open by the shorter horizons (the last 10 windows) only, so it
        closes soon after the reports return to normal.
        Every path needs the same evidence: a score over ``open_threshold``, at least
        ``min_excess`` reports over expectation and ``1 + min_excess_ratio`` times it. Such
        evidence opens an incident after ``open_windows`` windows in a row, or at once (EXTREME)
        when it is beyond doubt: one window at an extreme score, at ``extreme_ratio`` times the
        expected count with twice the open score, or at twice that ratio with the open score; or
        a sum over ``sustained_sharp_windows`` windows or more at ``sustained_sharp_ratio``
        times its expectation.
        ``keep``: per horizon row, the horizon that judges an open incident (default
        :meth:`keep_open_horizon` of the expected sums)."""
        c = self.config
        excess = observed - expected
        big_enough = (excess >= c.min_excess) & (observed >= expected * (1.0 + c.min_excess_ratio))
        sig = np.where(score >= c.close_threshold, ELEVATED, CALM)
        sig = np.where(excess < 0.5 * c.min_excess, CALM, sig)
        sig = np.where(big_enough & (score >= c.open_threshold), ANOMALOUS, sig)
        if horizons is not None and len(horizons[0]):
            self._horizon_signals(sig, horizons, tracked, keep)
        # one window alone opens an incident when it is beyond doubt: an extreme score, or a
        # clear score at many times the expected count (a 3x burst on a busy key is neither):
        # twice the open threshold at ``extreme_ratio`` times, or the open threshold at twice that
        sharp = ((score >= 2.0 * c.open_threshold) & (observed >= expected * c.extreme_ratio)) | (
            (score >= c.open_threshold) & (observed >= expected * (2.0 * c.extreme_ratio)))
        sig = np.where(big_enough & ((score >= c.extreme_threshold) | sharp), EXTREME, sig)
        return sig.astype(np.int8)

    def _horizon_signals(self, sig: npt.NDArray[np.int64], horizons: Horizons, tracked: npt.NDArray[np.bool_] | None,
                         keep: npt.NDArray[np.intp] | None) -> None:
        """Raise ``sig`` (in place) of the rows with evidence over several windows: sustained
        excess opens an incident for rows not ``tracked``; an open incident is kept open by the
        horizon ``keep`` picks."""
        c = self.config
        rows, h_score, h_excess, h_ratio, h_expected = horizons
        free = np.ones(len(rows), dtype=bool) if tracked is None else ~tracked[rows]
        h_big = (h_excess >= c.min_excess) & (h_ratio >= 1.0 + c.min_excess_ratio)
        h_open = h_big & (h_score >= c.open_threshold)
        h_anom = h_open.any(axis=0) & free
        # a long sum many times its expectation is sustained by construction: it opens at once
        h_sharp = (h_open & (h_ratio >= c.sustained_sharp_ratio))[self._sharp_rows].any(axis=0) & free
        h_raised = (h_score >= c.close_threshold) & (h_excess >= 0.5 * c.min_excess)
        # an open incident stays open while the last few windows (not only this one) are raised,
        # so a small key's outage is not closed by a few windows of 1 or 2 reports
        keep = self.keep_open_horizon(h_expected) if keep is None else keep
        h_elev = np.where(free, h_raised.any(axis=0), np.take_along_axis(h_raised, keep[None, :], 0)[0])
        part = sig[rows]
        part = np.where(h_elev & (part < ELEVATED), ELEVATED, part)
        part = np.where(h_anom & (part < ANOMALOUS), ANOMALOUS, part)
        sig[rows] = np.where(h_sharp, EXTREME, part)

    def keep_open_horizon(self, expected: npt.NDArray[np.float64],
                          excess_rate: npt.NDArray[np.float64] | None = None) -> npt.NDArray[np.intp]:
        """Per key, the index of the shortest horizon expecting at least KEEP_OPEN_EXPECTED
        reports, or over which a sharp open incident's excess per window (``excess_rate``, 0 for
        the others, see :data:`KEEP_SHORT_RATIO`) adds up to ``KEEP_OPEN_EXCESS * min_excess``
        reports (the longest when none does), shape (n,).

        A horizon longer than needed keeps a short spike in the sum long after the reports are
        back to normal, and the close comes that much later; a mild incident (a level shift at
        2-3x on a small key) keeps the long horizon, or its noisy windows would close it early."""
        enough = expected >= KEEP_OPEN_EXPECTED
        if excess_rate is not None:
            windows = np.array(HORIZONS[1:], dtype=np.float64)[:, None]
            enough = enough | (excess_rate[None, :] * windows >= KEEP_OPEN_EXCESS * self.config.min_excess)
        first = np.argmax(enough, axis=0)
        return np.where(enough.any(axis=0), first, len(expected) - 1).astype(np.intp)


__all__ = ["ANOMALOUS", "CALM", "ELEVATED", "EXTREME", "IncidentPolicy", "WindowView"]
