"""Count-aware surprise: how unlikely is an observed count under the expected one?

The score of a window is ``-log10 P(X >= observed)`` where X is negative binomial with
the expected mean and variance ``phi * mean`` (``phi`` is the learned overdispersion;
``phi <= 1`` is Poisson). Everything is vectorised over keys with numpy, so a closed
window is scored for every key at once; the tail sums run in the compiled closing loops
(:mod:`spikedetect.kernel`) when they are built, with the same bits as :func:`_tail_sum`.

>>> import numpy as np
>>> s = surprise(np.array([3.0, 300.0]), np.array([1.0, 10.0]), np.array([1.0, 1.0]))
>>> bool(s[0] < 2), bool(s[1] > 100)   # 3 where 1 is usual: no alarm; 300 where 10: alarm
(True, True)
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import numpy.typing as npt

from spikedetect.kernel import closing as _kernel

FloatArray = npt.NDArray[np.float64]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LN10 = math.log(10.0)
_TERMS = 48  # tail terms summed explicitly before a geometric remainder
_STEPS = np.arange(8.0)[:, None]  # tail terms summed per pass
MAX_SCORE = 300.0  # scores are capped here (P below 1e-300 is "certain")


def lgamma(x: FloatArray) -> FloatArray:
    """log Gamma(x) for x > 0, vectorised (Stirling series after shifting x to >= 8).

    >>> round(float(lgamma(np.array([0.5]))[0]), 10) == round(math.lgamma(0.5), 10)
    True
    """
    x = np.asarray(x, dtype=np.float64)
    small = x < 8.0
    if small.any():
        # Gamma(x) = Gamma(x + 8) / (x (x+1) ... (x+7)) for the small ones, in one product
        xs = np.where(small, x, 1.0)
        prod = xs * (xs + 1.0) * (xs + 2.0) * (xs + 3.0) * (xs + 4.0) * (xs + 5.0) * (xs + 6.0) * (xs + 7.0)
        shift = np.where(small, np.log(prod), 0.0)
        z = np.where(small, x + 8.0, x)
    else:
        shift = np.zeros_like(x)
        z = x
    inv = 1.0 / z
    inv2 = inv * inv
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 * (1 / 1680))))
    result: FloatArray = (z - 0.5) * np.log(z) - z + _HALF_LOG_2PI + series - shift
    return result


def log_sf(observed: FloatArray, mean: FloatArray, phi: FloatArray) -> FloatArray:
    """Natural log of P(X >= observed) for a negative binomial (Poisson when phi <= 1).

    Observed counts may be non-integer (rates); they are rounded up. For observed at or
    below the mean the result is 0 (no upward surprise is claimed).
    """
    if _kernel is not None and np.ndim(observed) == 1 and np.shape(observed) == np.shape(mean) == np.shape(phi):
        return _log_sf_compiled(_kernel, observed, mean, phi)
    x = np.ceil(np.asarray(observed, dtype=np.float64))
    mu = np.maximum(np.asarray(mean, dtype=np.float64), 1e-9)
    phi = np.asarray(phi, dtype=np.float64)
    out = np.zeros(np.broadcast(x, mu, phi).shape, dtype=np.float64)
    mask = x > mu
    if not mask.any():
        return out
    xm, mm = x[mask] if x.shape else x, mu[mask] if mu.shape else mu
    pm = phi[mask] if phi.shape else np.full_like(xm, float(phi))
    xm = np.broadcast_to(xm, mm.shape) if xm.shape != mm.shape else xm
    poisson = pm <= 1.0001
    if poisson.all():  # Poisson only (e.g. composition tails): the same values, without the NB terms
        log_pmf = _poisson_log_pmf(xm, mm, lgamma(xm + 1.0))
        ratio_sum = tail_sums(xm, np.zeros_like(xm), mm)
        out[mask] = np.minimum(log_pmf + np.log(ratio_sum), 0.0)
        return out
    r = np.where(poisson, 1.0, mm / np.maximum(pm - 1.0, 1e-4))
    q = np.where(poisson, 0.0, mm / (mm + r))  # NB "success" odds
    log_pmf = _log_pmf(xm, mm, poisson, r, q)
    # pmf(k + 1) / pmf(k) = (a k + b) / (k + 1): NB a = q, b = r q; Poisson a = 0, b = mean.
    ratio_sum = tail_sums(xm, np.where(poisson, 0.0, q), np.where(poisson, mm, r * q))
    out[mask] = np.minimum(log_pmf + np.log(ratio_sum), 0.0)
    return out


_CONSTS = (_HALF_LOG_2PI, 1 / 12, 1 / 360, 1 / 1260, 1 / 1680)  # lgamma's, for the compiled loops
# numpy's own float64 loops of log, log1p and exp, as (ufunc, position of "d->d" in its types): the
# compiled closing loops call them on the values a ufunc call would get (the same bits)
UFUNC_LOOPS = tuple((u, u.types.index("d->d")) for u in (np.log, np.log1p, np.exp))
_NO_SUMS = np.zeros((5, 0, 0))  # no horizon sums: log_sf of the counts alone
_NO_ROWS = np.zeros(0, dtype=np.intp)
_SCRATCH: list[tuple[npt.NDArray[np.intp], FloatArray]] = []  # free scratch arrays (see _scratch)


def _log_sf_compiled(kernel: ModuleType, observed: FloatArray, mean: FloatArray, phi: FloatArray) -> FloatArray:
    """:func:`log_sf` of 1-d arrays in the compiled closing loops (:func:`nb_tails`)."""
    x, mu, p = (np.ascontiguousarray(v, dtype=np.float64) for v in (observed, mean, phi))
    out = np.empty(len(x))
    nb_tails(kernel, x, mu, p, _NO_SUMS, _NO_ROWS, False, out.reshape(1, -1))
    return out


def nb_tails(kernel: ModuleType, observed: FloatArray, mean: FloatArray, phi: FloatArray, sums: FloatArray,
             rows: npt.NDArray[np.intp], as_surprise: bool, out: FloatArray) -> None:
    """:func:`log_sf` of ``observed`` (float64, contiguous) and of the horizon sums ``sums`` (5, H-1,
    len(rows): observed, -, mean, phi, -) of the candidate ``rows``, in the compiled closing loops
    (``kernel.nb_prepare`` and ``nb_finish``), the same steps, the logs taken by numpy on the
    gathered values (libm's may differ from numpy's in the last bits), in scratch arrays kept between calls.
    Into ``out`` (every value written): the log tails, (1, n), or their :func:`surprise` laid
    out as ``window_scores.raw_scores`` does, (H, n)."""
    idx, work = bufs = _scratch(kernel, len(observed) + sums.shape[1] * sums.shape[2])
    prepared = kernel.nb_prepare(observed, mean, phi, sums, idx, work)
    take_logs(work, prepared)
    kernel.nb_finish(idx, work, prepared[0], prepared[1], rows, _CONSTS, _LN10, MAX_SCORE, as_surprise, out)
    _SCRATCH.append(bufs)


def take_logs(work: FloatArray, prepared: tuple[int, bool, int, int, int, int, int]) -> None:
    """The logs ``kernel.nb_prepare`` left to numpy, into ``work`` where it said (its returned
    ``prepared``: rows, all Poisson, where the values start, how many, where their logs go, where
    ``-q`` is, where ``log1p(-q)`` goes)."""
    m, poisson, at, size, logs, negq, log1p = prepared
    if m:
        np.log(work[at:at + size], out=work[logs:logs + size])
        if not poisson:
            np.log1p(work[negq:negq + m], out=work[log1p:log1p + m])


def _scratch(kernel: ModuleType, total: int) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Scratch arrays of the compiled tails for ``total`` values, taken from :data:`_SCRATCH` (each
    caller its own: a list's pop is atomic) and grown as needed; the caller puts them back."""
    bufs = _SCRATCH.pop() if _SCRATCH else None
    if bufs is None or len(bufs[0]) < total:
        size = max(total, 2 * len(bufs[0]) if bufs is not None else 0, 1024)
        bufs = (np.empty(size, dtype=np.intp), np.empty(kernel.NB_WORK * size))
    return bufs


def _poisson_log_pmf(xm: FloatArray, mm: FloatArray, lg_x1: FloatArray) -> FloatArray:
    """Poisson log pmf at ``xm`` of mean ``mm``, given ``lg_x1`` = lgamma(xm + 1)."""
    out: FloatArray = xm * np.log(mm) - mm - lg_x1
    return out


def _log_pmf(xm: FloatArray, mm: FloatArray, poisson: npt.NDArray[np.bool_], r: FloatArray,
             q: FloatArray) -> FloatArray:
    """log pmf at ``xm``: negative binomial of size ``r`` and odds ``q``, or Poisson of mean
    ``mm`` where ``poisson``."""
    # the three log-gammas in one call (elementwise: the same values as three calls)
    size = xm.size
    lg = lgamma(np.concatenate((np.ravel(xm + 1.0), np.ravel(xm + r), np.ravel(r))))
    lg_x1, lg_xr, lg_r = (lg[i * size:(i + 1) * size].reshape(xm.shape) for i in range(3))
    log_pmf_nb = (lg_xr - lg_x1 - lg_r
                  + r * np.log1p(-q) + xm * np.log(np.where(poisson, 0.5, q)))
    log_pmf_po = _poisson_log_pmf(xm, mm, lg_x1)
    log_pmf: FloatArray = np.where(poisson, log_pmf_po, log_pmf_nb)
    return log_pmf


def _stepwise(xm: FloatArray) -> bool:
    """Counts so large that k + j is no longer exact: the tail is summed one term at a time."""
    return len(xm) > 0 and float(xm.max()) >= 2.0**52


def tail_sums(xm: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """:func:`_tail_sum`, in the compiled closing loops when they are built (the same bits)."""
    if _kernel is None:
        return _tail_sum(xm, a, b)
    out = np.empty(len(xm))
    _kernel.tail_sum(np.ascontiguousarray(xm, dtype=np.float64), np.ascontiguousarray(a, dtype=np.float64),
                     np.ascontiguousarray(b, dtype=np.float64), _stepwise(xm), out)
    return out


def _tail_sum(xm: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """Sum of pmf(x + j) / pmf(x) for j >= 0, where pmf(k + 1) / pmf(k) = (a k + b) / (k + 1),
    with a geometric remainder after _TERMS terms. Terms are summed 8 at a time and only for
    rows whose tail has not yet converged."""
    ratio_sum = np.ones_like(xm)
    term = np.ones_like(xm)
    k = xm.copy()
    ratio = np.zeros_like(xm)
    active = np.arange(len(xm))
    eight_terms = _eight_terms_stepwise if _stepwise(xm) else _eight_terms
    for _ in range(_TERMS // 8):
        ka, ta, sa, ra = eight_terms(k[active], term[active], ratio_sum[active], a[active], b[active])
        k[active], term[active], ratio_sum[active], ratio[active] = ka, ta, sa, ra
        active = active[ta >= 1e-10 * sa]
        if len(active) == 0:
            break
    ratio = np.minimum(ratio, 0.999999)
    ratio_sum += term * ratio / (1.0 - ratio)
    return ratio_sum


Terms = tuple[FloatArray, FloatArray, FloatArray, FloatArray]


def _eight_terms(ka: FloatArray, ta: FloatArray, sa: FloatArray, aa: FloatArray, ba: FloatArray) -> Terms:
    """Eight more tail terms: (next k, last term, sum, last ratio). The 8 ratios as one
    (8, rows) array (k + j is exact for whole numbers), then the terms and their sum one step
    after the other (the same rounding as one at a time)."""
    kj = ka + _STEPS
    rj = kj * aa
    rj += ba
    rj /= kj + 1.0
    for j in range(8):
        ta *= rj[j]
        sa += ta
    return kj[-1] + 1.0, ta, sa, rj[-1]


def _eight_terms_stepwise(ka: FloatArray, ta: FloatArray, sa: FloatArray, aa: FloatArray,
                          ba: FloatArray) -> Terms:
    """:func:`_eight_terms` one term at a time, for counts where k + j is no longer exact."""
    ra = ta
    for _ in range(8):
        ra = (aa * ka + ba) / (ka + 1.0)
        ta = ta * ra
        sa = sa + ta
        ka = ka + 1.0
    return ka, ta, sa, ra


def surprise(observed: FloatArray, mean: FloatArray, phi: FloatArray) -> FloatArray:
    """``-log10 P(X >= observed)``, capped at :data:`MAX_SCORE`; 0 when observed <= mean."""
    scores: FloatArray = np.minimum(-log_sf(observed, mean, phi) / _LN10, MAX_SCORE)
    return np.maximum(scores, 0.0)
