# Included by _closing.pyx (one module), after _learn_noise and _learn_slot: the learning half of
# a closed window (Scorer._learn) - calibration quantiles and the seasonal baseline - each
# bit-identical to the numpy reference named in its docstring.

ctypedef spd_sparams _Seasonal  # declared in C (_closing_learn_pair.pxi), so the row pairs take it as it is


cdef _Seasonal _seasonal_params(Py_ssize_t lo, Py_ssize_t hi, double w_hi, Py_ssize_t d, tuple params):
    """``params``: (floor_mean, clip_sd ** 2, phi_max, alpha_max, a_phi, a_level, a_dow, a_slot, FLOOR)."""
    cdef _Seasonal p
    p.floor, p.clip_sd2, p.phi_max, p.alpha_max = params[0], params[1], params[2], params[3]
    p.a_phi, p.a_level, p.a_share, p.a_dow, p.a_slot = params[4], params[5], params[5] / 10.0, params[6], params[7]
    p.floor_src = params[8]
    p.lo, p.hi, p.w_hi, p.w_lo, p.d = lo, hi, w_hi, 1.0 - w_hi, d
    return p


cdef inline bint _finite_positive(double po) noexcept nogil:
    return po == po and po - po == 0.0 and po > 0.0


cdef inline void _seasonal_row(const _Seasonal* p, Py_ssize_t r, double x, double mean, signed char source,
                               double tod, bint warm, double factor, double po, double wt,
                               double[::1, :] prof, float[::1, :] prof_w, double[::1, :] dow_num,
                               double[::1, :] dow_den, float[::1, :] dow_w, double[::1] level, float[::1] level_n,
                               float[::1] phi, float[::1] alpha, float[::1] disp_n, double[::1] share,
                               float[::1] share_w) noexcept nogil:
    """``SeasonalBaseline.learn`` of row ``r``: noise, level, weekday ratio, the two profile
    slots, share (``po``: the parent's reports, NaN without a parent)."""
    cdef double n, a
    cdef float w
    _learn_noise(x, mean, p.floor, p.clip_sd2, p.phi_max, p.alpha_max, p.a_phi,
                 source != p.floor_src and wt >= 1.0, &phi[r], &alpha[r], &disp_n[r])
    n = <double>level_n[r] + wt
    a = _np_max(1.0 / _np_max(n, 1.0), p.a_level) * wt
    level[r] += a * (x - level[r])
    level_n[r] = <float>_np_min(n, 1e6)
    if warm:
        w = dow_w[r, p.d] + <float>1.0
        a = <double>_np_maxf(<float>1.0 / w, p.a_dow) * wt
        dow_num[r, p.d] += a * (x - dow_num[r, p.d])
        dow_den[r, p.d] += a * (tod - dow_den[r, p.d])
        dow_w[r, p.d] = _np_minf(w, 1e6)
    if p.w_lo > 0.0:
        _learn_slot(x / factor, p.w_lo, wt, p.a_slot, &prof[r, p.lo], &prof_w[r, p.lo])
    if p.w_hi > 0.0:
        _learn_slot(x / factor, p.w_hi, wt, p.a_slot, &prof[r, p.hi], &prof_w[r, p.hi])
    if _finite_positive(po):
        w = share_w[r] + <float>1.0
        a = <double>_np_maxf(<float>1.0 / w, p.a_share) * wt
        share[r] += a * (x / po - share[r])
        share_w[r] = _np_minf(w, 1e6)


def seasonal_learn_window(dict cols, const unsigned char[::1] learn, const Py_ssize_t[::1] parent,
                          const signed char[::1] signal, const unsigned char[::1] muted, double elevated_weight,
                          const double[::1] x, const double[::1] mean, const signed char[::1] source,
                          const double[::1] tod, const unsigned char[::1] warm, const double[::1] factor,
                          Py_ssize_t lo, Py_ssize_t hi, double w_hi, Py_ssize_t d, tuple params) -> None:
    """``Scorer._learn``'s baseline step for a seasonal baseline, over every row with ``learn``
    set, in row order: its parent's reports (``x[parent]``, NaN without one), weight 1.0 when
    calm (signal 0) or muted else ``elevated_weight``, then :func:`seasonal_learn` of the row -
    what numpy does on the selected rows' subsets (``x`` etc. are the full, unselected arrays)."""
    cdef double[::1, :] prof = cols["prof"], dow_num = cols["dow_num"], dow_den = cols["dow_den"]
    cdef float[::1, :] prof_w = cols["prof_w"], dow_w = cols["dow_w"]
    cdef double[::1] level = cols["level"], share = cols["share"]
    cdef float[::1] level_n = cols["level_n"], phi = cols["phi"], alpha = cols["alpha"]
    cdef float[::1] disp_n = cols["disp_n"], share_w = cols["share_w"]
    cdef _Seasonal p = _seasonal_params(lo, hi, w_hi, d, params)
    with nogil:
        _learn_rows(&p, learn, parent, signal, muted, elevated_weight, x, mean, source, tod, warm, factor,
                    prof, prof_w, dow_num, dow_den, dow_w, level, level_n, phi, alpha, disp_n, share, share_w)


cdef void _learn_rows(const _Seasonal* p, const unsigned char[::1] learn, const Py_ssize_t[::1] parent,
                      const signed char[::1] signal, const unsigned char[::1] muted, double elevated_weight,
                      const double[::1] x, const double[::1] mean, const signed char[::1] source,
                      const double[::1] tod, const unsigned char[::1] warm, const double[::1] factor,
                      double[::1, :] prof, float[::1, :] prof_w, double[::1, :] dow_num, double[::1, :] dow_den,
                      float[::1, :] dow_w, double[::1] level, float[::1] level_n, float[::1] phi, float[::1] alpha,
                      float[::1] disp_n, double[::1] share, float[::1] share_w) noexcept nogil:
    """:func:`seasonal_learn_window`'s loop over the rows: four neighbouring learning rows at a
    time by :func:`spd_seasonal_quad` where it runs, else two by :func:`spd_seasonal_pair` where
    it runs, else one by one."""
    cdef Py_ssize_t r = 0, m = learn.shape[0], up, j
    cdef double po, po1, wt, wt1, nan = NAN
    cdef double pos[4]
    cdef double wts[4]
    cdef int trusted[4]
    cdef int warms[4]
    cdef int shares[4]
    cdef spd_scols c
    cdef bint pairs = _pair_sse2 and SPD_PAIR_SSE2 and m > 1
    cdef bint quads = _quad_avx and LEARN_QUAD_AVX_C and m > 3
    if pairs or quads:
        c.prof_lo, c.prof_hi, c.pw_lo, c.pw_hi = &prof[0, p.lo], &prof[0, p.hi], &prof_w[0, p.lo], &prof_w[0, p.hi]
        c.dow_num, c.dow_den, c.dow_w = &dow_num[0, p.d], &dow_den[0, p.d], &dow_w[0, p.d]
        c.level, c.level_n, c.phi, c.alpha, c.disp_n = &level[0], &level_n[0], &phi[0], &alpha[0], &disp_n[0]
        c.share, c.share_w = &share[0], &share_w[0]
    while r < m:
        if not learn[r]:
            r += 1
            continue
        if quads and r + 3 < m and learn[r + 1] and learn[r + 2] and learn[r + 3]:
            for j in range(4):
                up = parent[r + j]
                pos[j] = x[up] if up >= 0 else nan
                wts[j] = 1.0 if (signal[r + j] == 0 or muted[r + j]) else elevated_weight
                trusted[j] = source[r + j] != p.floor_src and wts[j] >= 1.0
                warms[j] = warm[r + j]
                shares[j] = _finite_positive(pos[j])
            if spd_seasonal_quad(p, &c, r, &x[r], &mean[r], &tod[r], &factor[r], pos, wts, trusted, warms, shares):
                r += 4
                continue
        up = parent[r]
        po = x[up] if up >= 0 else nan
        wt = 1.0 if (signal[r] == 0 or muted[r]) else elevated_weight
        if pairs and r + 1 < m and learn[r + 1]:
            up = parent[r + 1]
            po1 = x[up] if up >= 0 else nan
            wt1 = 1.0 if (signal[r + 1] == 0 or muted[r + 1]) else elevated_weight
            if spd_seasonal_pair(p, &c, r, &x[r], &mean[r], &tod[r], &factor[r], po, po1, wt, wt1,
                                 source[r] != p.floor_src and wt >= 1.0, source[r + 1] != p.floor_src and wt1 >= 1.0,
                                 warm[r], warm[r + 1], _finite_positive(po), _finite_positive(po1)):
                r += 2
                continue
        _seasonal_row(p, r, x[r], mean[r], source[r], tod[r], warm[r], factor[r], po, wt,
                      prof, prof_w, dow_num, dow_den, dow_w, level, level_n, phi, alpha, disp_n, share, share_w)
        r += 1


cdef inline float _f32_clip(float x, float lo, float hi) noexcept nogil:
    """np.clip of a float32 value by float32 bounds: NaN stays NaN, ties keep x."""
    if x != x:
        return x
    if x < lo:
        x = lo
    if x > hi:
        x = hi
    return x


def calibration_rate(const float[::1] cal_n, const unsigned char[::1] learn, double[::1] rate) -> None:
    """``evidence.learn_calibration``'s step size into ``rate``: ``count = cal_n + learn``
    (float32), ``clip(4 / max(count, 1), CAL_RATE, 0.5)`` in float32 where ``learn``, else 0."""
    cdef Py_ssize_t r
    cdef float count
    cdef float lo = <float>0.05, hi = <float>0.5
    for r in range(learn.shape[0]):
        count = cal_n[r] + (<float>1.0 if learn[r] else <float>0.0)
        rate[r] = <double>_f32_clip(<float>4.0 / _np_maxf(count, <float>1.0), lo, hi) if learn[r] else 0.0


def calibration_step(float[:, ::1] cal_q, float[:, ::1] cal_q3, float[::1] cal_n,
                     const unsigned char[::1] learn, const double[:, :] raw, const double[::1] up,
                     const double[::1] down, const double[::1] up3, const double[::1] down3) -> None:
    """The rest of ``evidence.learn_calibration`` for the first ``len(learn)`` rows: each
    quantile ``q`` (float32) times ``up[r]`` where ``raw[h, r] > q`` else ``down[r]`` (numpy's
    ``exp`` of the rates, computed by the caller), in float64 rounded to float32, clipped to
    [0.5, 300]; then ``cal_n = min(cal_n + learn, 1e6)``."""
    cdef Py_ssize_t r, h, nh = cal_q.shape[1]
    cdef double v
    cdef float q
    cdef float lo = <float>0.5, hi = <float>300.0
    for r in range(learn.shape[0]):
        for h in range(nh):
            v = raw[h, r]
            q = cal_q[r, h]
            cal_q[r, h] = _f32_clip(<float>(<double>q * (up[r] if v > <double>q else down[r])), lo, hi)
            q = cal_q3[r, h]
            cal_q3[r, h] = _f32_clip(<float>(<double>q * (up3[r] if v > <double>q else down3[r])), lo, hi)
        cal_n[r] = _np_minf(cal_n[r] + (<float>1.0 if learn[r] else <float>0.0), <float>1e6)


cdef int _RATE_CODES = 80  # a count from 80 on steps at CAL_RATE: 4 / count <= 0.05 (float32)
CALIBRATION_CODES = _RATE_CODES


def calibration_learn(float[:, ::1] cal_q, float[:, ::1] cal_q3, float[::1] cal_n, const unsigned char[::1] learn,
                      const double[:, :] raw, const double[:, ::1] factors) -> bint:
    """:func:`calibration_rate` and :func:`calibration_step` in one pass, the factors looked up by
    count: ``factors[j, c]`` is numpy's ``exp(f_j * rate)`` (``f``: p, p - 1 of CAL_P, then of
    CAL_P3) for the rate of a learning row whose ``cal_n + 1`` is ``c`` (1..80, 80 for every
    count from 80 on), and 1 at ``c = 0`` (not learning: rate 0). False, nothing written, when
    a learning row's count is not a whole number of at least 1 (state read back, not learned
    here): the caller takes the two-pass path."""
    return _calibration_learn(cal_q, cal_q3, cal_n, learn, raw, factors)


cdef bint _calibration_check(const float[::1] cal_n, const unsigned char[::1] learn) noexcept nogil:
    """Whether :func:`calibration_learn` applies: every learning row's ``cal_n + 1`` a whole number
    of at least 1 (or at least the last code)."""
    cdef Py_ssize_t r
    cdef float count
    for r in range(learn.shape[0]):
        if learn[r]:
            count = cal_n[r] + <float>1.0
            if not (count >= <float>1.0) or (count < <float>_RATE_CODES and count != <float>(<int>count)):
                return False
    return True


cdef bint _calibration_learn(float[:, ::1] cal_q, float[:, ::1] cal_q3, float[::1] cal_n,
                             const unsigned char[::1] learn, const double[:, :] raw,
                             const double[:, ::1] factors, bint checked=False) noexcept nogil:
    """:func:`calibration_learn` (``checked``: the caller ran :func:`_calibration_check` on these
    counts and flags and it held)."""
    cdef Py_ssize_t r, h, nh = cal_q.shape[1], m = learn.shape[0]
    cdef Py_ssize_t c
    cdef float count
    cdef double v, up, down, up3, down3
    cdef float q
    cdef float lo = <float>0.5, hi = <float>300.0
    cdef bint row4 = nh == 4 and _cal_sse2
    cdef bint avx4 = nh == 4 and _cal_avx and CALIBRATION_AVX_C
    if not checked and not _calibration_check(cal_n, learn):
        return False
    for r in range(m):
        c = 0
        if learn[r]:
            count = cal_n[r] + <float>1.0
            c = _RATE_CODES if count >= <float>_RATE_CODES else <int>count
        up, down, up3, down3 = factors[0, c], factors[1, c], factors[2, c], factors[3, c]
        if not ((avx4 and spq_cal_row4(&cal_q[r, 0], &cal_q3[r, 0], <const char*>&raw[0, r], raw.strides[0], up,
                                       down, up3, down3, lo, hi))
                or (row4 and spd_cal_row4(&cal_q[r, 0], &cal_q3[r, 0], <const char*>&raw[0, r], raw.strides[0],
                                          up, down, up3, down3, lo, hi))):
            for h in range(nh):
                v = raw[h, r]
                q = cal_q[r, h]
                cal_q[r, h] = _f32_clip(<float>(<double>q * (up if v > <double>q else down)), lo, hi)
                q = cal_q3[r, h]
                cal_q3[r, h] = _f32_clip(<float>(<double>q * (up3 if v > <double>q else down3)), lo, hi)
        cal_n[r] = _np_minf(cal_n[r] + (<float>1.0 if learn[r] else <float>0.0), <float>1e6)
    return True
