"""Evidence that adds up across windows, and per-key calibration of scores.

One window's negative-binomial tail finds big spikes; a small key at 5x its low level for
a quarter of an hour never gives one window that stands out. So each key also keeps its
last :data:`RING` windows (observed count, expected count, expected variance) in a ring,
and every closed window is scored on the sums over several horizons (:data:`HORIZONS`):
the sum of counts is again (approximately) negative binomial, with the summed mean and
variance. The largest single-window excess inside a horizon is left out of its sum, so
one burst never counts twice (the one-window path judges it); only excess spread over
several windows accumulates. A key's ring is cleared when its incident closes (the reset
rule), so the windows of an outage cannot open a second incident.

Calibration: a model's tail is only as good as its noise model, and real streams have
heavier tails than any count model (bursts, retweets, a crawler). Each key learns, per
horizon, the 99th percentile of its own raw scores on quiet windows (an exponentially
weighted quantile in the log domain: one float per horizon, vectorised). Where that
percentile sits above :data:`CAL_NOMINAL` (the model underestimates the tail at least
10x), the key's scores on that horizon are scaled down by ``CAL_NOMINAL / q99``, so a
score keeps about the same false-alarm rate on every key. Keys whose noise the model
describes well are left untouched.

Everything is numpy over all keys at once (see docs/architecture.md for why not River here).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from spikedetect.kernel import closing as _kernel

FloatArray = npt.NDArray[np.float64]

HORIZONS = (1, 3, 10, 30)  # windows summed; 1 is the classic one-window score
RING = 30
_LONG = np.array(HORIZONS[1:], dtype=np.intp)  # the horizons kept as running sums
MEAN_FLOOR = 0.02  # smallest expected count per window in the sums
CAL_P, CAL_P3 = 0.99, 0.999  # calibrated quantiles of quiet-window scores
CAL_RATE = 0.05  # log-domain step of the quantile once warm
CAL_INITIAL = 2.0  # -log10(1 - CAL_P): the q99 of a well-specified model

# per-row state: ring of (observed, expected, variance), q99 per horizon and its count
EVIDENCE_COLUMNS: dict[str, tuple[tuple[int, ...], str, float]] = {
    "ring_x": ((RING,), "float32", 0.0),
    "ring_m": ((RING,), "float32", 0.0),
    "ring_v": ((RING,), "float32", 0.0),
    "sum_x": ((len(HORIZONS) - 1,), "float64", 0.0),  # running sums over each horizon > 1
    "sum_m": ((len(HORIZONS) - 1,), "float64", 0.0),
    "sum_v": ((len(HORIZONS) - 1,), "float64", 0.0),
    "cal_q": ((len(HORIZONS),), "float32", CAL_INITIAL),
    "cal_q3": ((len(HORIZONS),), "float32", CAL_INITIAL + 1.0),
    "cal_n": ((), "float32", 0.0),
}
# stored position-major (Fortran order): a window writes one position and reads three of every row
EVIDENCE_COLUMN_MAJOR = frozenset({"ring_x", "ring_m", "ring_v"})


def slot(ws_ms: int, window_ms: int) -> int:
    """Ring position of a window (the same for every key)."""
    return (ws_ms // window_ms) % RING


def _live(n: int, live: npt.NDArray[np.bool_] | None) -> npt.NDArray[np.intp] | slice:
    return slice(0, n) if live is None or live.all() else np.flatnonzero(live)


def record(cols: dict[str, npt.NDArray[np.float32]], n: int, pos: int, observed: FloatArray,
           mean: FloatArray, var: FloatArray, live: npt.NDArray[np.bool_] | None = None) -> None:
    """Write this window into the rings of the ``live`` rows (default all ``n``) and move their
    running sums over every horizon by it (the window leaving each horizon goes out)."""
    rows = _live(n, live)
    leaving = (pos - _LONG) % RING  # ring positions of the windows leaving each horizon
    if not _record_compiled(cols, n, rows, pos, leaving, observed, mean, var):
        _record_numpy(cols, rows, pos, leaving, observed, mean, var)
    if pos == 0:  # once per lap, recompute the running sums exactly (no float drift) - of the
        # rows written here only: a row that applied this window already (restored from a later
        # record than the window being closed again) has its sums for its own newest windows
        _resum(cols, np.arange(n) if isinstance(rows, slice) else rows)


def _record_compiled(cols: dict[str, npt.NDArray[np.float32]], n: int, rows: npt.NDArray[np.intp] | slice, pos: int,
                     leaving: npt.NDArray[np.intp], observed: FloatArray, mean: FloatArray, var: FloatArray) -> bool:
    """:func:`_record_numpy` in the compiled closing loops (the same bits); False when they are
    not built or do not apply (values not float64, or NaN), and nothing was written."""
    values = (observed, mean, var)
    if _kernel is None or not all(a.dtype == np.float64 and a.ndim == 1 and len(a) >= n for a in values):
        return False
    idx = np.arange(n) if isinstance(rows, slice) else rows
    x, m, v = (np.ascontiguousarray(a) for a in values)
    done: bool = _kernel.evidence_record(cols["sum_x"], cols["ring_x"], x, cols["sum_m"], cols["ring_m"], m,
                                         cols["sum_v"], cols["ring_v"], v, idx, pos, leaving.astype(np.intp))
    return done


def _record_numpy(cols: dict[str, npt.NDArray[np.float32]], rows: npt.NDArray[np.intp] | slice, pos: int,
                  leaving: npt.NDArray[np.intp], observed: FloatArray, mean: FloatArray, var: FloatArray) -> None:
    """:func:`record`'s reference: numpy over the rows."""
    for name, value in (("x", observed[rows]), ("m", mean[rows]), ("v", var[rows])):
        ring = cols["ring_" + name]
        cols["sum_" + name][rows] += value[:, None] - ring[rows][:, leaving]
        ring[rows, pos] = value


def _resum(cols: dict[str, npt.NDArray[np.float32]], rows: npt.NDArray[np.intp]) -> None:
    if _kernel is not None and _kernel.evidence_resum(
            cols["ring_x"], cols["ring_m"], cols["ring_v"], cols["sum_x"], cols["sum_m"], cols["sum_v"],
            np.ascontiguousarray(rows, dtype=np.intp), _LONG):
        return  # the compiled closing loops: the same sums in numpy's pairwise order
    for name in ("x", "m", "v"):
        ring = cols["ring_" + name][rows].astype(np.float64)
        for k, h in enumerate(HORIZONS[1:]):
            # the newest h windows end at the ring position just written; a lap starts at 0
            cols["sum_" + name][rows, k] = ring[:, (np.arange(h) * -1) % RING].sum(axis=1)


def reset(cols: dict[str, npt.NDArray[np.float32]], rows: npt.NDArray[np.intp]) -> None:
    """Forget accumulated excess for ``rows`` (their ring keeps expectations, not counts)."""
    if len(rows):
        cols["ring_x"][rows] = cols["ring_m"][rows]
        cols["sum_x"][rows] = cols["sum_m"][rows]


def _trimmed(cols: dict[str, npt.NDArray[np.float32]], rows: npt.NDArray[np.intp], pos: int
             ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Exact trimmed sums for ``rows`` from their rings: (observed, mean, variance), (H-1, k).

    The largest one-window excess in the horizon is removed from the observed sum (that
    window counts as expected), which keeps the sums monotone in every count."""
    horizons = HORIZONS[1:]
    order = (pos - np.arange(max(horizons))) % RING  # newest first
    x = cols["ring_x"][rows][:, order].astype(np.float64)
    m = cols["ring_m"][rows][:, order].astype(np.float64)
    v = cols["ring_v"][rows][:, order].astype(np.float64)
    cx, cm, cv = np.cumsum(x, axis=1), np.cumsum(m, axis=1), np.cumsum(v, axis=1)
    top = np.maximum.accumulate(np.maximum(x - m, 0.0), axis=1)
    idx = np.array(horizons) - 1
    return (cx[:, idx] - top[:, idx]).T, cm[:, idx].T, cv[:, idx].T


def horizon_sums(cols: dict[str, npt.NDArray[np.float32]], n: int, pos: int, min_excess: float
                 ) -> tuple[npt.NDArray[np.intp], FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """The candidate rows, and for them the trimmed sums to score: (rows, observed, expected,
    mean to score against, overdispersion, untrimmed expected sum), each of shape
    (H-1, len(rows)) after the rows.

    Only rows whose running (untrimmed) excess reaches ``min_excess`` and two standard
    deviations on some horizon are scored from their rings; the others score 0 there (their
    trimmed excess is smaller still, and two standard deviations of a count's sum are at a
    tail probability far above 10^-3 - a score under ``close_threshold`` - for any negative
    binomial the model uses). The scorer scores these sums in the same call as the one-window
    counts (one :func:`~spikedetect.core.negbin.surprise` per closed window)."""
    rows, block = horizon_block(cols, n, pos, min_excess)
    return rows, block[0], block[1], block[2], block[3], block[4]


def horizon_block(cols: dict[str, npt.NDArray[np.float32]], n: int, pos: int, min_excess: float
                  ) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """:func:`horizon_sums` as (rows, one (5, H-1, len(rows)) array of the five sums); in the
    compiled closing loops when they are built (the same bits)."""
    if _kernel is not None:
        cand = np.empty(n, dtype=np.intp)
        k = _kernel.horizon_candidates(cols["sum_x"], cols["sum_m"], cols["sum_v"], n, min_excess, cand)
        block = np.empty((5, len(HORIZONS) - 1, k))
        if _kernel.horizon_trimmed(cols["ring_x"], cols["ring_m"], cols["ring_v"], cols["sum_m"], cand[:k], pos,
                                   _LONG, block):
            return cand[:k], block
    excess = cols["sum_x"][:n] - cols["sum_m"][:n]  # (n, H-1)
    cand = np.flatnonzero(((excess >= min_excess) & (excess * excess >= 4.0 * cols["sum_v"][:n])).any(axis=1))
    if len(cand) == 0:
        return cand, np.zeros((5, len(HORIZONS) - 1, 0))
    tx, tm, tv = _trimmed(cols, cand, pos)
    mean = np.maximum(tm, 1e-9)
    phi = np.maximum(tv / mean, 1.0)
    return cand, np.stack((tx, tm, mean, phi, cols["sum_m"][cand].T.astype(np.float64)))


def calibrate(cols: dict[str, npt.NDArray[np.float32]], n: int, raw: FloatArray,
              rows: npt.NDArray[np.intp] | None = None) -> FloatArray:
    """Calibrated scores, shape (H, n): raw scores mapped through each key's own tail.

    The key's learned quantiles ``q99`` and ``q999`` of quiet-window scores stand for the
    tail probabilities 1e-2 and 1e-3; above ``q99`` every further ``q999 - q99`` of raw score
    is one more decade of rarity (a log-linear tail through both points). The result never
    exceeds the raw score: a key whose noise the model describes (``q99`` near 2, ``q999``
    near 3) keeps its model scores. ``rows``: the only rows with raw scores above 0 on the
    horizons > 1 (a raw 0 stays 0), so only they are mapped there."""
    if rows is None:
        return _mapped(raw, cols["cal_q"][:n].T, cols["cal_q3"][:n].T)
    if _kernel is not None and raw.dtype == np.float64 and raw.flags.c_contiguous:
        out = np.zeros(raw.shape)
        _kernel.calibrate_rows(raw, cols["cal_q"], cols["cal_q3"], n, np.ascontiguousarray(rows, dtype=np.intp),
                               CAL_INITIAL, out)
        return out
    out = np.zeros_like(raw)
    out[0] = _mapped(raw[0], cols["cal_q"][:n, 0], cols["cal_q3"][:n, 0])
    if len(rows):
        out[1:, rows] = _mapped(raw[1:, rows], cols["cal_q"][rows, 1:].T, cols["cal_q3"][rows, 1:].T)
    return out


def _mapped(raw: FloatArray, q99_32: npt.NDArray[np.float32], q999_32: npt.NDArray[np.float32]) -> FloatArray:
    q99 = q99_32.astype(np.float64)
    span = np.maximum(q999_32.astype(np.float64) - q99, 0.25)
    mapped = CAL_INITIAL + (raw - q99) / span
    out: FloatArray = np.minimum(raw, np.maximum(mapped, 0.0))
    return out


def learn_calibration(cols: dict[str, npt.NDArray[np.float32]], n: int, learn: npt.NDArray[np.bool_],
                      raw: FloatArray) -> None:
    """Move the quantile estimates of the rows where ``learn`` is set towards their raw scores
    ``raw`` (shape (H, n)).

    Log-domain stochastic quantile: up by ``rate * p`` when exceeded, down by
    ``rate * (1 - p)`` otherwise; the rate starts at 4/count so a new key converges fast.
    In the compiled closing loops when they are built (the same bits; numpy takes the exps, of
    every rate a whole count can give once, see :func:`_rate_factors`)."""
    if _kernel is not None and raw.dtype == np.float64 and raw.shape == (len(HORIZONS), n):
        flags = np.ascontiguousarray(learn[:n], dtype=np.bool_).view(np.uint8)
        if _kernel.calibration_learn(cols["cal_q"], cols["cal_q3"], cols["cal_n"], flags, raw, _rate_factors()):
            return
        rate = np.empty(n)
        _kernel.calibration_rate(cols["cal_n"][:n], flags, rate)
        factors = [np.exp(f * rate) for p in (CAL_P, CAL_P3) for f in (p, p - 1.0)]
        _kernel.calibration_step(cols["cal_q"], cols["cal_q3"], cols["cal_n"], flags, raw, *factors)
        return
    count = cols["cal_n"][:n] + learn
    rate = np.where(learn, np.clip(4.0 / np.maximum(count, 1.0), CAL_RATE, 0.5), 0.0).astype(np.float64)
    for col, p in (("cal_q", CAL_P), ("cal_q3", CAL_P3)):
        q = cols[col][:n].T  # (H, n) view
        # each row steps by one of two factors (up or down): exp of n values, not H * n
        q *= np.where(raw > q, np.exp(p * rate), np.exp((p - 1.0) * rate))
        np.clip(q, 0.5, 300.0, out=q)
    cols["cal_n"][:n] = np.minimum(count, 1e6)


_FACTORS: list[FloatArray] = []


def _rate_factors() -> FloatArray:
    """numpy's ``exp(f * rate)`` for ``f`` in (CAL_P, CAL_P - 1, CAL_P3, CAL_P3 - 1) (rows) and the
    rate of each count code of the compiled step (columns: 0 not learning, then ``cal_n + 1``
    = 1 .. CALIBRATION_CODES), the rates computed by the compiled rate loop itself; built once."""
    if not _FACTORS:
        assert _kernel is not None
        codes = _kernel.CALIBRATION_CODES
        rate = np.zeros(codes + 1)
        _kernel.calibration_rate(np.arange(codes, dtype=np.float32), np.ones(codes, dtype=np.uint8), rate[1:])
        _FACTORS.append(np.array([np.exp(f * rate) for p in (CAL_P, CAL_P3) for f in (p, p - 1.0)]))
    return _FACTORS[0]
