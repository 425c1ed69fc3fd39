# Included by _closing.pyx (one module): the loops that score one closed window for every key -
# each bit-identical to the numpy reference named in its heading. Only + - * /, comparisons and
# numpy's min/max rules (_np_max, _np_min); rows are read and written in the reference's order.

# -- evidence.horizon_sums: the candidate rows and their trimmed sums ------------------------------

def horizon_candidates(const double[:, ::1] sum_x, const double[:, ::1] sum_m, const double[:, ::1] sum_v,
                       Py_ssize_t n, double min_excess, Py_ssize_t[::1] cand):
    """The rows < ``n`` whose running excess ``sum_x - sum_m`` reaches ``min_excess`` and two
    standard deviations (``excess * excess >= 4.0 * sum_v``) on some horizon, into ``cand`` in
    row order. Returns how many."""
    return _horizon_candidates(sum_x, sum_m, sum_v, n, min_excess, cand)


cdef Py_ssize_t _horizon_candidates(const double[:, ::1] sum_x, const double[:, ::1] sum_m, const double[:, ::1] sum_v,
                                    Py_ssize_t n, double min_excess, Py_ssize_t[::1] cand) except -1:
    """:func:`horizon_candidates`."""
    cdef Py_ssize_t i, k, m = 0
    cdef double e
    if n > sum_x.shape[0] or n > sum_m.shape[0] or n > sum_v.shape[0] or n > cand.shape[0]:
        raise IndexError(f"{n} rows do not fit the sums or the output")
    with nogil:
        for i in range(n):
            for k in range(sum_x.shape[1]):
                e = sum_x[i, k] - sum_m[i, k]
                if e >= min_excess and e * e >= 4.0 * sum_v[i, k]:
                    cand[m] = i
                    m += 1
                    break
    return m


include "_closing_trimmed_pair.pxi"


cdef inline bint _finite(double v) noexcept nogil:
    return v - v == 0.0


def horizon_trimmed(const float[::1, :] ring_x, const float[::1, :] ring_m, const float[::1, :] ring_v,
                    const double[:, ::1] sum_m, const Py_ssize_t[::1] cand, Py_ssize_t pos,
                    const Py_ssize_t[::1] horizons, double[:, :, ::1] out):
    """``evidence._trimmed`` and the rest of ``horizon_sums`` for the rows ``cand``: into ``out``
    (5, len(horizons), len(cand)) the trimmed observed sum, the mean sum, the mean scored against
    (at least 1e-9), the overdispersion (at least 1) and the running mean sum. The ring is read
    newest first from ``pos``; the sums add up in that order from the newest value (np.cumsum).
    False (``out`` partly written) when a ring value read is not finite: numpy does those."""
    return bool(_horizon_trimmed(ring_x, ring_m, ring_v, sum_m, cand, pos, horizons, out))


cdef int _horizon_trimmed(const float[::1, :] ring_x, const float[::1, :] ring_m, const float[::1, :] ring_v,
                          const double[:, ::1] sum_m, const Py_ssize_t[::1] cand, Py_ssize_t pos,
                          const Py_ssize_t[::1] horizons, double[:, :, ::1] out) except -1:
    """:func:`horizon_trimmed`: ring positions as the outer loop and the candidate rows inner, so
    each pass reads one ring column (the rings are column-major: a row's positions lie a column
    apart, a page or more, where a column's candidates are near one another); each row keeps
    its running sums, added in the same order (newest first) as one row at a time would."""
    cdef Py_ssize_t j, t, s, r, h = 0, k = cand.shape[0], nh = horizons.shape[0], ring = ring_x.shape[1]
    cdef Py_ssize_t at[256]
    cdef double x, m, v, d, mean
    cdef double* acc  # per candidate: observed, mean and variance sums, the largest excess
    cdef bint ok = True
    cdef int got
    if out.shape[0] != 5 or out.shape[1] != nh or out.shape[2] != k or sum_m.shape[1] < nh \
            or ring_m.shape[1] != ring or ring_v.shape[1] != ring or ring < 1 or (nh and horizons[nh - 1] > 256):
        raise ValueError("the output is not (5, horizons, rows), or the rings differ")
    for t in range(horizons[nh - 1] if nh else 0):
        s = (pos - t) % ring
        at[t] = s + ring if s < 0 else s
    for j in range(k):
        if not (0 <= cand[j] < ring_x.shape[0] and cand[j] < ring_m.shape[0] and cand[j] < ring_v.shape[0]
                and cand[j] < sum_m.shape[0]):
            raise IndexError(f"row {cand[j]} is out of bounds")
    if k == 0 or nh == 0:
        return True
    acc = <double*>malloc(4 * k * sizeof(double))
    if acc == NULL:
        raise MemoryError()
    if _trim_sse2:
        with nogil:
            got = spd_trimmed(&ring_x[0, 0], ring_x.strides[1] // 4, &ring_m[0, 0], ring_m.strides[1] // 4,
                              &ring_v[0, 0], ring_v.strides[1] // 4, &sum_m[0, 0], sum_m.strides[0] // 8, &cand[0],
                              k, at, &horizons[0], nh, &out[0, 0, 0], out.strides[0] // 8, out.strides[1] // 8, acc)
        if got >= 0:
            free(acc)
            return got
    with nogil:
        for t in range(horizons[nh - 1]):
            s = at[t]
            for j in range(k):
                r = cand[j]
                x, m, v = ring_x[r, s], ring_m[r, s], ring_v[r, s]
                if not (_finite(x) and _finite(m) and _finite(v)):
                    ok = False
                    break
                d = _np_max(x - m, 0.0)
                if t == 0:
                    acc[4 * j], acc[4 * j + 1], acc[4 * j + 2], acc[4 * j + 3] = x, m, v, d
                else:
                    acc[4 * j] = acc[4 * j] + x
                    acc[4 * j + 1] = acc[4 * j + 1] + m
                    acc[4 * j + 2] = acc[4 * j + 2] + v
                    acc[4 * j + 3] = _np_max(acc[4 * j + 3], d)
            if not ok:
                break
            while h < nh and t == horizons[h] - 1:
                for j in range(k):
                    mean = _np_max(acc[4 * j + 1], 1e-9)
                    out[0, h, j], out[1, h, j], out[2, h, j] = acc[4 * j] - acc[4 * j + 3], acc[4 * j + 1], mean
                    out[3, h, j], out[4, h, j] = _np_max(acc[4 * j + 2] / mean, 1.0), sum_m[cand[j], h]
                h += 1
    free(acc)
    return ok


# -- evidence.calibrate (with candidate rows) -------------------------------------------------------

cdef inline double _mapped(double raw, float q99_32, float q999_32, double initial) noexcept nogil:
    cdef double q99 = <double>q99_32
    cdef double span = _np_max(<double>q999_32 - q99, 0.25)
    return _np_min(raw, _np_max(initial + (raw - q99) / span, 0.0))


def calibrate_rows(const double[:, ::1] raw, const float[:, ::1] q, const float[:, ::1] q3, Py_ssize_t n,
                   const Py_ssize_t[::1] rows, double initial, double[:, ::1] out) -> None:
    """``evidence.calibrate(cols, n, raw, rows)`` into ``out`` (zeros, shaped like ``raw``): the
    first horizon for every row < ``n``, the others for ``rows`` only."""
    _calibrate_rows(raw, q, q3, n, rows, initial, out)


cdef int _calibrate_rows(const double[:, ::1] raw, const float[:, ::1] q, const float[:, ::1] q3, Py_ssize_t n,
                         const Py_ssize_t[::1] rows, double initial, double[:, ::1] out) except -1:
    """:func:`calibrate_rows`."""
    cdef Py_ssize_t i, j, r, h, nh = raw.shape[0]
    if (out.shape[0] != nh or raw.shape[1] < n or out.shape[1] < n or q.shape[0] < n or q3.shape[0] < n
            or q.shape[1] < nh or q3.shape[1] < nh or nh < 1):
        raise ValueError("raw, out and the quantiles do not fit")
    for j in range(rows.shape[0]):
        if not 0 <= rows[j] < n:
            raise IndexError(f"row {rows[j]} is out of bounds for {n} rows")
    with nogil:
        for i in range(n):
            out[0, i] = _mapped(raw[0, i], q[i, 0], q3[i, 0], initial)
        for h in range(1, nh):
            for j in range(rows.shape[0]):
                r = rows[j]
                out[h, r] = _mapped(raw[h, r], q[r, h], q3[r, h], initial)
    return 0


# -- window_scores.parent_prior --------------------------------------------------------------------

def parent_prior(const double[::1] shares, const Py_ssize_t[::1] parent, const signed char[::1] depth,
                 double floor, signed char learned, signed char prior, double[::1] mean, signed char[::1] source,
                 unsigned char[::1] cold, Py_ssize_t[::1] sel, double[::1] value) -> None:
    """``parent_prior`` over ``len(shares)`` rows: the cold rows (not learned, a finite share, a
    parent), level by level from depth 1, borrow a trusted parent's mean times their share (at
    least ``floor``); each level reads its parents before it writes (numpy's fancy indexing)."""
    _parent_prior(shares, parent, depth, floor, learned, prior, mean, source, cold, sel, value)


def parent_prior_cols(const double[::1] share, const float[::1] share_w, const Py_ssize_t[::1] parent,
                      const signed char[::1] depth, double floor, signed char learned, signed char prior,
                      double[::1] mean, signed char[::1] source, unsigned char[::1] cold, Py_ssize_t[::1] sel,
                      double[::1] value, double[::1] shares) -> None:
    """:func:`parent_prior` over ``len(shares)`` rows, their shares those of a seasonal baseline's
    columns (``SeasonalBaseline.shares``: ``share`` where ``share_w >= 1`` (float32), else NaN),
    written into ``shares`` first."""
    cdef Py_ssize_t i, n = shares.shape[0]
    if share.shape[0] < n or share_w.shape[0] < n:
        raise ValueError("the share columns are shorter than the rows")
    for i in range(n):
        shares[i] = share[i] if share_w[i] >= <float>1.0 else NAN
    _parent_prior(shares, parent, depth, floor, learned, prior, mean, source, cold, sel, value)


cdef int _parent_prior(const double[::1] shares, const Py_ssize_t[::1] parent, const signed char[::1] depth,
                       double floor, signed char learned, signed char prior, double[::1] mean,
                       signed char[::1] source, unsigned char[::1] cold, Py_ssize_t[::1] sel,
                       double[::1] value) except -1:
    cdef Py_ssize_t i, k, m, n = shares.shape[0], p
    cdef int d, top = 0
    if mean.shape[0] < n or source.shape[0] < n or parent.shape[0] < n or depth.shape[0] < n or cold.shape[0] < n \
            or sel.shape[0] < n or value.shape[0] < n:
        raise ValueError("arrays shorter than the shares")
    for i in range(n):
        cold[i] = source[i] != learned and _finite(shares[i]) and parent[i] >= 0
        if cold[i]:
            if parent[i] >= n:
                raise IndexError(f"row {i} has parent {parent[i]}, not one of {n} rows")
            top = depth[i] if depth[i] > top else top
    with nogil:
        for d in range(1, top + 1):
            m = 0
            for i in range(n):
                if cold[i] and depth[i] == d:
                    p = parent[i]
                    if source[p] == learned or source[p] == prior:
                        sel[m] = i
                        value[m] = _np_max(shares[i] * mean[p], floor)
                        m += 1
            for k in range(m):
                mean[sel[k]] = value[k]
                source[sel[k]] = prior
    return 0


include "_closing_signals.pxi"


include "_closing_record.pxi"
