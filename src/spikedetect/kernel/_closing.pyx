# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of the closing path, bit-identical to their numpy references.

Only IEEE arithmetic (+ - * /, comparisons) is done here, row by row, in the order the numpy
code does it elementwise; setup.py compiles with -ffp-contract=off (no fused multiply-add), so
every value rounds as numpy's does. Transcendentals (log, exp, lgamma) stay in numpy: libm's
may differ from numpy's in the last bits (``composition_window`` calls numpy's own float64
loops of them, taken from the ufunc objects: the loops a numpy call runs). ``np.minimum``/``np.maximum`` are spelled out with
numpy's NaN and tie rules; a float32 column compared with or bounded by a Python float is
compared in float32 (NumPy 2's rule for Python scalars), and float32 + bool, 1 / float32 stay
float32 as in numpy; Python numbers are added by ``PyNumber_Add``, as Python adds them. The
references, each the numpy code its caller runs when this extension is not loaded: the tail
sums and ``log_sf`` of :mod:`spikedetect.core.negbin`, ``expect`` and ``learn`` of
:class:`spikedetect.core.detectors.seasonal.SeasonalBaseline`, ``LeafWindow.share_counts``
(composition), ``observe`` (:mod:`spikedetect.core.window_scores`), ``source_sums``
(:mod:`spikedetect.core.ingest_gap`), ``breakdown`` (:mod:`spikedetect.core.expand`) and
``record`` and ``learn_calibration`` (:mod:`spikedetect.core.evidence`), ``Scorer._learn``'s
baseline step;
tests/core/test_closing_kernel.py, test_closing_kernel_sums.py and _learn.py compare them on random and
edge-case inputs.
"""

from cpython.dict cimport PyDict_GetItem
from cpython.number cimport PyNumber_Add, PyNumber_InPlaceAdd, PyNumber_Multiply
from cpython.ref cimport PyObject
from libc.math cimport NAN, ceil
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

cdef int _TERMS = 48


cdef inline double _np_min(double x, double y) noexcept nogil:
    """np.minimum(x, y) as numpy computes it here: x when x is NaN or x < y, else y (so a tie of
    signed zeros gives y)."""
    return x if (x != x or x < y) else y


cdef inline double _np_max(double x, double y) noexcept nogil:
    """np.maximum(x, y): x when x is NaN or x > y, else y."""
    return x if (x != x or x > y) else y


cdef inline float _np_minf(float x, float y) noexcept nogil:
    """np.minimum of float32 values."""
    return x if (x != x or x < y) else y


cdef inline float _np_maxf(float x, float y) noexcept nogil:
    """np.maximum of float32 values."""
    return x if (x != x or x > y) else y


cdef inline double _np_clip(double x, double lo, double hi) noexcept nogil:
    """np.clip(x, lo, hi): NaN stays NaN, and x stays on a tie (clip(-0.0, 0.0, 1) is -0.0)."""
    if x != x:
        return x
    if x < lo:
        x = lo
    if x > hi:
        x = hi
    return x


cdef inline double _tail_row(double k, double aa, double bb, bint stepwise) noexcept nogil:
    """One row of :func:`tail_sum`: the tail terms of count ``k`` 8 at a time until the last term
    is below 1e-10 of the sum (at most 48), then the geometric remainder."""
    cdef int g, j
    cdef double t = 1.0, s = 1.0, r = 0.0, kj = k
    for g in range(_TERMS // 8):
        if stepwise:
            for j in range(8):
                r = (aa * k + bb) / (k + 1.0)
                t = t * r
                s = s + t
                k = k + 1.0
        else:
            for j in range(8):
                kj = k + <double>j
                r = (kj * aa + bb) / (kj + 1.0)
                t = t * r
                s = s + t
            k = kj + 1.0
        if not (t >= 1e-10 * s):
            break
    r = _np_min(r, 0.999999)
    return s + t * r / (1.0 - r)


cdef struct _Expect:
    float need, dow_need, level_need
    double floor, cold, w_hi
    signed char learned, warming, floor_src
    Py_ssize_t lo, hi, d


cdef _Expect _expect_params(Py_ssize_t lo, Py_ssize_t hi, double w_hi, Py_ssize_t d, tuple params):
    """``params``: (warm_slot_weight, weekday warm weight, warm_level_windows, floor_mean,
    cold_phi_factor, LEARNED, WARMING, FLOOR)."""
    cdef _Expect q
    q.need, q.dow_need, q.level_need, q.floor, q.cold = params[0], params[1], params[2], params[3], params[4]
    q.learned, q.warming, q.floor_src = params[5], params[6], params[7]
    q.lo, q.hi, q.w_hi, q.d = lo, hi, w_hi, d
    return q


cdef void _expect_rows(const _Expect* q, const Py_ssize_t* rows, Py_ssize_t n, const double[::1, :] prof,
                       const double[::1, :] dow_num, const double[::1, :] dow_den, const float[::1, :] prof_w,
                       const float[::1, :] dow_w, const double[::1] level, const float[::1] level_n,
                       const float[::1] phi, const float[::1] alpha, double[::1] mean, double[::1] phi_out,
                       signed char[::1] source, double[::1] tod, unsigned char[::1] warm, double[::1] factor,
                       double[::1] own) noexcept nogil:
    """:func:`seasonal_expect` of ``rows[:n]``, or of the rows 0..n-1 when ``rows`` is NULL."""
    cdef Py_ssize_t i, r, lo = q.lo, hi = q.hi, d = q.d
    cdef double w_hi = q.w_hi, t, f, m, p, num, den
    cdef bint wm, lok
    for i in range(n):
        r = rows[i] if rows != NULL else i
        t = (1.0 - w_hi) * prof[r, lo] + w_hi * prof[r, hi]
        wm = prof_w[r, lo] >= q.need and prof_w[r, hi] >= q.need
        num = dow_num[r, d]
        den = dow_den[r, d]
        f = num / (den if den > 1e-9 else 1.0) if (dow_w[r, d] >= q.dow_need and den > 1e-9) else 1.0
        f = _np_clip(f, 0.25, 4.0)
        lok = level_n[r] >= q.level_need
        m = t * f if wm else (level[r] if lok else _np_max(level[r], q.floor))
        source[i] = q.learned if wm else (q.warming if lok else q.floor_src)
        m = _np_max(m, q.floor)
        p = <double>phi[r] + <double>alpha[r] * m
        phi_out[i] = p if wm else p * q.cold
        mean[i] = m
        tod[i] = t
        warm[i] = wm
        factor[i] = f
        own[i] = t * f if wm else level[r]


def seasonal_expect(dict cols, const Py_ssize_t[::1] rows, Py_ssize_t lo, Py_ssize_t hi, double w_hi, Py_ssize_t d,
                    tuple params, double[::1] mean, double[::1] phi_out, signed char[::1] source, double[::1] tod,
                    unsigned char[::1] warm, double[::1] factor, double[::1] own) -> None:
    """``SeasonalBaseline.expect`` for ``rows`` into the output arrays: profile slots ``lo``/``hi``
    (weight ``w_hi`` of the later), weekday ``d``; ``params``: (warm_slot_weight, weekday warm
    weight, warm_level_windows, floor_mean, cold_phi_factor, LEARNED, WARMING, FLOOR)."""
    cdef const double[::1, :] prof = cols["prof"], dow_num = cols["dow_num"], dow_den = cols["dow_den"]
    cdef const float[::1, :] prof_w = cols["prof_w"], dow_w = cols["dow_w"]
    cdef const double[::1] level = cols["level"]
    cdef const float[::1] level_n = cols["level_n"], phi = cols["phi"], alpha = cols["alpha"]
    cdef _Expect q = _expect_params(lo, hi, w_hi, d, params)
    if rows.shape[0] == 0:
        return
    with nogil:
        _expect_rows(&q, &rows[0], rows.shape[0], prof, dow_num, dow_den, prof_w, dow_w, level, level_n, phi, alpha,
                     mean, phi_out, source, tod, warm, factor, own)


cdef inline void _learn_noise(double x, double mean, double floor, double clip_sd2, double phi_max,
                              double alpha_max, float a_phi, bint trusted, float* phi, float* alpha,
                              float* disp_n) noexcept nogil:
    """``SeasonalBaseline._learn_noise`` for one row."""
    cdef double mu = _np_max(mean, floor), ph = phi[0], al = alpha[0], dx = x - mu
    cdef double var = ph * mu + al * mu * mu
    cdef double extra = _np_min(dx * dx, clip_sd2 * var) - mu
    cdef double part_phi = _np_max(ph - 1.0, 0.1) * mu, part_alpha = _np_max(al, 0.002) * mu * mu
    cdef double share = part_alpha / (part_phi + part_alpha)
    cdef double phi_obs = 1.0 + extra * (1.0 - share) / mu, alpha_obs = extra * share / (mu * mu)
    cdef float n = disp_n[0] + (<float>1.0 if trusted else <float>0.0)  # float32 + bool stays float32
    cdef double a = <double>_np_maxf(<float>1.0 / _np_maxf(n, 1.0), a_phi) if trusted else 0.0
    phi[0] = <float>_np_clip(ph + a * (phi_obs - ph), 1.0, phi_max)
    alpha[0] = <float>_np_clip(al + a * (alpha_obs - al), 0.0, alpha_max)
    disp_n[0] = _np_minf(n, 1e6)


cdef inline void _learn_slot(double y, double part, double wt, double a_slot, double* prof,
                             float* prof_w) noexcept nogil:
    """One profile slot of ``SeasonalBaseline._learn_profile`` for one row."""
    cdef double pw = <double>prof_w[0] + part * wt
    cdef double a = part * _np_max(1.0 / _np_max(pw, 1e-9), a_slot) * wt
    prof[0] += a * (y - prof[0])
    prof_w[0] = <float>_np_min(pw, 1e6)


include "_closing_simd.pxi"
include "_closing_avx.pxi"
include "_closing_tail_pair.pxi"
include "_closing_cal_row.pxi"
include "_closing_learn_pair.pxi"
include "_closing_learn_quad.pxi"
include "_closing_nb_quad.pxi"
include "_closing_learn.pxi"


def seasonal_learn(dict cols, const Py_ssize_t[::1] rows, const double[::1] x, const double[::1] mean,
                   const signed char[::1] source, const double[::1] tod, const unsigned char[::1] warm,
                   const double[::1] factor, const double[::1] parent_observed, const double[::1] wt,
                   Py_ssize_t lo, Py_ssize_t hi, double w_hi, Py_ssize_t d, tuple params) -> None:
    """``SeasonalBaseline.learn`` for ``rows`` (distinct): noise, level, weekday ratio, the two
    profile slots, share. ``params``: (floor_mean, clip_sd ** 2, phi_max, alpha_max, a_phi,
    a_level, a_dow, a_slot, FLOOR)."""
    cdef double[::1, :] prof = cols["prof"], dow_num = cols["dow_num"], dow_den = cols["dow_den"]
    cdef float[::1, :] prof_w = cols["prof_w"], dow_w = cols["dow_w"]
    cdef double[::1] level = cols["level"], share = cols["share"]
    cdef float[::1] level_n = cols["level_n"], phi = cols["phi"], alpha = cols["alpha"]
    cdef float[::1] disp_n = cols["disp_n"], share_w = cols["share_w"]
    cdef _Seasonal p = _seasonal_params(lo, hi, w_hi, d, params)
    cdef Py_ssize_t i
    with nogil:
        for i in range(rows.shape[0]):
            _seasonal_row(&p, rows[i], x[i], mean[i], source[i], tod[i], warm[i], factor[i], parent_observed[i],
                          wt[i], prof, prof_w, dow_num, dow_den, dow_w, level, level_n, phi, alpha, disp_n,
                          share, share_w)


include "_closing_nb.pxi"
include "_closing_sums.pxi"
include "_closing_gap.pxi"
include "_closing_breakdown.pxi"
include "_closing_breakdown_sums.pxi"
include "_closing_tree.pxi"
include "_closing_held.pxi"
include "_closing_tails.pxi"
include "_closing_comp_window.pxi"
include "_closing_comp_close.pxi"
include "_closing_shares.pxi"
include "_closing_window.pxi"
include "_closing_leaf_index.pxi"
include "_closing_leaves.pxi"
include "_closing_leaf_breakdown.pxi"
include "_closing_fused.pxi"
