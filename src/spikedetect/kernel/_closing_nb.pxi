# Included by _closing.pyx (one module), after _tail_row: the negative-binomial tails of one call
# of ``negbin.log_sf`` (or ``window_scores.raw_scores``' ``surprise`` of a window's counts and its
# candidates' horizon sums) in two passes around the only two numpy calls left, the logs: every
# step but the logs is arithmetic here, bit-identical to the numpy code named in each docstring.
# Scratch layout in ``work`` (float64, at least NB_WORK times the rows): the gathered counts,
# means and overdispersions (``total`` each), then per gathered row (``m``) the NB size and odds,
# the values to take logs of, their logs, ``-q`` and ``log1p(-q)`` (see _nb_layout).

NB_WORK = 25  # work values per row (3 gathered + 22 per gathered row at most)


cdef struct _NbLayout:
    Py_ssize_t xm, mm, pm, r, q, args, nargs, logs, negq, log1p, k


cdef inline _NbLayout _nb_layout(Py_ssize_t total, Py_ssize_t m, bint poisson) noexcept nogil:
    """Where each array of :func:`nb_prepare` lies in ``work``; ``k``: lgamma arguments per row
    (1 when all rows are Poisson, else 3). ``args`` holds, per section of ``m``: lgamma's product
    for each argument, its z, log(q or 0.5), log(mean), the tail's ratio sum."""
    cdef _NbLayout o
    o.k = 1 if poisson else 3
    o.xm, o.mm, o.pm = 0, total, 2 * total
    o.r = 3 * total
    o.q = o.r + m
    o.args = o.q + m
    o.nargs = (2 * o.k + 3) * m
    o.logs = o.args + o.nargs
    o.negq = o.logs + o.nargs
    o.log1p = o.negq + m
    return o


cdef inline double _lgamma_prod(double x) noexcept nogil:
    """The product ``negbin.lgamma`` takes the log of for x < 8 (1 otherwise: not used)."""
    if not (x < 8.0):
        return 1.0
    return x * (x + 1.0) * (x + 2.0) * (x + 3.0) * (x + 4.0) * (x + 5.0) * (x + 6.0) * (x + 7.0)


cdef inline double _lgamma(double x, double log_prod, double log_z, const double* c) noexcept nogil:
    """``negbin.lgamma`` of x given log(product) and log(z); c: half log 2 pi, 1/12, 1/360, 1/1260,
    1/1680 (Python's values)."""
    cdef bint small = x < 8.0
    cdef double z = x + 8.0 if small else x
    cdef double inv = 1.0 / z
    cdef double inv2 = inv * inv
    cdef double series = inv * (c[1] - inv2 * (c[2] - inv2 * (c[3] - inv2 * c[4])))
    return (z - 0.5) * log_z - z + c[0] + series - (log_prod if small else 0.0)


cdef inline double _surprise(double log_sf, double ln10, double cap) noexcept nogil:
    """``surprise`` of one ``log_sf``: ``np.maximum(np.minimum(-log_sf / ln10, cap), 0.0)``."""
    return _np_max(_np_min(-log_sf / ln10, cap), 0.0)


cdef Py_ssize_t _nb_gather(const double[::1] observed, const double[::1] mean, const double[::1] phi,
                           const double[:, :, ::1] hz, Py_ssize_t[::1] idx, double* xm, double* mm, double* pm,
                           bint* poisson) noexcept nogil:
    """``log_sf``'s first steps over ``observed``, ``mean``, ``phi`` followed by the candidates'
    sums (``hz[0]``, ``hz[2]``, ``hz[3]`` row after row, as ``np.concatenate`` of them raveled):
    ``x = ceil(observed)``, ``mu = max(mean, 1e-9)``; the positions where x > mu into ``idx``, ``xm``,
    ``mm``, ``pm``. Returns how many; ``poisson``: all of them have phi <= 1.0001."""
    cdef Py_ssize_t i, h, j, n = observed.shape[0], k = hz.shape[2], m = 0
    cdef bint po = True
    for i in range(n):
        m = _gather_one(i, observed[i], mean[i], phi[i], m, &idx[0], xm, mm, pm, &po)
    i = n
    for h in range(hz.shape[1]):  # position n + h * k + j
        for j in range(k):
            m = _gather_one(i, hz[0, h, j], hz[2, h, j], hz[3, h, j], m, &idx[0], xm, mm, pm, &po)
            i += 1
    poisson[0] = po
    return m


cdef inline Py_ssize_t _gather_one(Py_ssize_t i, double x, double mu, double p, Py_ssize_t m, Py_ssize_t* idx,
                                   double* xm, double* mm, double* pm, bint* po) noexcept nogil:
    """:func:`_nb_gather`'s step at position ``i``, without branches on the data: each value is
    written at ``m``, and kept (``m + 1`` returned) when above."""
    cdef bint above
    x = ceil(x)
    mu = _np_max(mu, 1e-9)
    above = x > mu
    idx[m], xm[m], mm[m], pm[m] = i, x, mu, p
    po[0] = po[0] & ((not above) | (p <= 1.0001))
    return m + above


def nb_prepare(const double[::1] observed, const double[::1] mean, const double[::1] phi,
               const double[:, :, ::1] hz, Py_ssize_t[::1] idx, double[::1] work) -> tuple:
    """Everything of ``log_sf`` before its logs, for the counts gathered by :func:`_nb_gather`:
    the NB size ``r = mean / max(phi - 1, 1e-4)`` and odds ``q = mean / (mean + r)`` (1 and 0 where
    Poisson), the values whose logs are needed (lgamma's products and z of xm + 1, xm + r and r -
    only xm + 1 when all rows are Poisson - then q or 0.5, the mean), the tail's ratio sum
    (``negbin._tail_sum``, stepwise when a count reaches 2**52) and ``-q``, into ``work``. Returns
    (m, all Poisson, where the values to take logs of start, how many, where their logs go, where
    ``-q`` is, where ``log1p(-q)`` goes): the caller takes those with numpy, then
    :func:`nb_finish`."""
    return _nb_prepare(observed, mean, phi, hz, idx, work)


cdef tuple _nb_prepare(const double[::1] observed, const double[::1] mean, const double[::1] phi,
                       const double[:, :, ::1] hz, Py_ssize_t[::1] idx, double[::1] work):
    """:func:`nb_prepare`."""
    cdef Py_ssize_t n = observed.shape[0], total = n + hz.shape[1] * hz.shape[2], m, i, j
    cdef bint poisson, po, stepwise = False
    cdef double v, rr, qq, x, mu
    cdef double* w
    cdef _NbLayout o
    if mean.shape[0] != n or phi.shape[0] != n or hz.shape[0] != 5 or idx.shape[0] < total \
            or work.shape[0] < NB_WORK * total:
        raise ValueError("the arrays do not fit")
    if total == 0:
        return 0, True, 0, 0, 0, 0, 0
    w = &work[0]
    with nogil:
        m = _nb_gather(observed, mean, phi, hz, idx, w, w + total, w + 2 * total, &poisson)
        o = _nb_layout(total, m, poisson)
        for i in range(m):
            stepwise = stepwise or w[o.xm + i] >= 4503599627370496.0  # 2.0 ** 52
        for i in range(m):
            x, mu = w[o.xm + i], w[o.mm + i]
            po = poisson or w[o.pm + i] <= 1.0001
            rr = 1.0 if po else mu / _np_max(w[o.pm + i] - 1.0, 1e-4)
            qq = 0.0 if po else mu / (mu + rr)
            w[o.r + i], w[o.q + i], w[o.negq + i] = rr, qq, -qq
            for j in range(o.k):
                v = x + 1.0 if j == 0 else (x + rr if j == 1 else rr)
                w[o.args + j * m + i] = _lgamma_prod(v)
                w[o.args + (o.k + j) * m + i] = v + 8.0 if v < 8.0 else v
            w[o.args + 2 * o.k * m + i] = 0.5 if po else qq
            w[o.args + (2 * o.k + 1) * m + i] = mu
            w[o.args + (2 * o.k + 2) * m + i] = mu if po else rr * qq  # the tail's b, then its sum:
        _tail_rows(w + o.xm, w + o.q, w + o.args + (2 * o.k + 2) * m, w + o.args + (2 * o.k + 2) * m, m, stepwise)
    return m, poisson, o.args, o.nargs, o.logs, o.negq, o.log1p


cdef inline double _nb_log_sf(const double* w, const _NbLayout* o, Py_ssize_t m, Py_ssize_t i, bint poisson,
                              const double* c) noexcept nogil:
    """``np.minimum(log_pmf + log(ratio_sum), 0.0)`` of gathered row ``i``: ``negbin._log_pmf`` (or
    the Poisson one) from the logs in ``w``."""
    cdef Py_ssize_t k = o.k
    cdef const double* logs = w + o.logs
    cdef double x = w[o.xm + i], mu = w[o.mm + i], r = w[o.r + i], lg1, lgxr, lgr, log_pmf
    lg1 = _lgamma(x + 1.0, logs[i], logs[k * m + i], c)
    if poisson or w[o.pm + i] <= 1.0001:
        log_pmf = x * logs[(2 * k + 1) * m + i] - mu - lg1
    else:
        lgxr = _lgamma(x + r, logs[m + i], logs[(k + 1) * m + i], c)
        lgr = _lgamma(r, logs[2 * m + i], logs[(k + 2) * m + i], c)
        log_pmf = lgxr - lg1 - lgr + r * w[o.log1p + i] + x * logs[2 * k * m + i]
    return _np_min(log_pmf + logs[(2 * k + 2) * m + i], 0.0)


def nb_finish(const Py_ssize_t[::1] idx, const double[::1] work, Py_ssize_t m, bint poisson,
              const Py_ssize_t[::1] rows, tuple consts, double ln10, double cap, bint as_surprise,
              double[:, ::1] out) -> None:
    """The end of :func:`nb_prepare`'s ``log_sf`` once numpy took the logs: into ``out`` (H, n) -
    every value written - ``min(log_pmf + log(ratio_sum), 0)`` at each gathered position (``log_sf``:
    0 elsewhere; ``out`` is then (1, n) and ``rows`` empty), or with ``as_surprise`` its surprise
    (``raw_scores``: a position past ``n`` is horizon ``1 + t // k`` of candidate ``rows[t % k]``,
    and the surprise of 0 where nothing was gathered: each row's first horizon and the candidates'
    others; 0 elsewhere). ``consts``: ``negbin._CONSTS``."""
    cdef double c[5]
    cdef Py_ssize_t i
    for i in range(5):
        c[i] = consts[i]
    _nb_finish(idx, work, m, poisson, rows, c, ln10, cap, as_surprise, out)


cdef int _nb_finish(const Py_ssize_t[::1] idx, const double[::1] work, Py_ssize_t m, bint poisson,
                    const Py_ssize_t[::1] rows, const double* c, double ln10, double cap, bint as_surprise,
                    double[:, ::1] out) except -1:
    """:func:`nb_finish` (``c``: the five constants)."""
    cdef Py_ssize_t g, i, j, h, n = out.shape[1], k = rows.shape[0], nh = out.shape[0] - 1
    cdef Py_ssize_t total = n + nh * k
    cdef double zero = _surprise(0.0, ln10, cap), v
    cdef double vals[4]
    cdef const double* w
    cdef _NbLayout o = _nb_layout(total, m, poisson)
    if nh < 0 or not 0 <= m <= total or idx.shape[0] < m or work.shape[0] < NB_WORK * total \
            or (not as_surprise and (nh != 0 or k != 0)):
        raise ValueError("the arrays do not fit")
    for j in range(k):
        if not 0 <= rows[j] < n:
            raise IndexError(f"row {rows[j]} is out of bounds for {n} rows")
    for g in range(m):
        if not 0 <= idx[g] < total:
            raise IndexError(f"position {idx[g]} is out of bounds")
    with nogil:
        for h in range(nh + 1):
            for i in range(n):
                out[h, i] = 0.0
        if as_surprise:
            for i in range(n):
                out[0, i] = zero
            for h in range(1, nh + 1):
                for j in range(k):
                    out[h, rows[j]] = zero
        g = 0
        w = &work[0] if m else NULL
        while _nb_avx and NB_AVX_C and g + 3 < m and spd_log_sf4(w + o.xm, w + o.mm, w + o.r, w + o.pm, w + o.log1p,
                                                                  w + o.logs, m, o.k, poisson, c, ln10, cap,
                                                                  as_surprise, g, vals):
            for j in range(4):  # four at a time (_closing_nb_quad.pxi), then one by one
                _nb_put(out, n, k, rows, idx[g + j], vals[j])
            g += 4
        for i in range(g, m):
            v = _nb_log_sf(&work[0], &o, m, i, poisson, c)
            if as_surprise:
                v = _surprise(v, ln10, cap)
            _nb_put(out, n, k, rows, idx[i], v)
    return 0


cdef inline void _nb_put(double[:, ::1] out, Py_ssize_t n, Py_ssize_t k, const Py_ssize_t[::1] rows, Py_ssize_t p,
                         double v) noexcept nogil:
    """Gathered position ``p``'s value into ``out``: row ``p`` of the window, or horizon
    ``1 + t // k`` of candidate ``rows[t % k]`` (``t = p - n``)."""
    cdef Py_ssize_t t = p - n
    if p < n:
        out[0, p] = v
    else:
        out[1 + t // k, rows[t % k]] = v
