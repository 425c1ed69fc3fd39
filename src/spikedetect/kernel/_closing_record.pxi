# Included by _closing_window.pxi: the evidence rings of one closed window (``gather_evidence``
# with ``evidence.record``, and the once-a-lap resum), bit-identical to the numpy code named in
# each heading (its negative-binomial scores are in _closing_nb.pxi).

include "_closing_record_rows.pxi"


# -- window_scores.gather_evidence: the sums' expectations, then evidence.record -------------------

cdef inline double _sum_mean(Py_ssize_t i, const double[::1] mean, const double[::1] own,
                             const signed char[::1] source, signed char learned, double floor) noexcept nogil:
    """``np.where(source == learned, np.maximum(own, floor), mean)`` for row ``i``."""
    return _np_max(own[i], floor) if source[i] == learned else mean[i]


def evidence_record_window(double[:, ::1] sum_x, float[::1, :] ring_x, double[:, ::1] sum_m, float[::1, :] ring_m,
                           double[:, ::1] sum_v, float[::1, :] ring_v, const double[::1] x, const double[::1] mean,
                           const double[::1] own, const signed char[::1] source, const double[::1] phi,
                           const unsigned char[::1] done, signed char learned, double floor, Py_ssize_t pos,
                           const Py_ssize_t[::1] leaving):
    """``gather_evidence``'s record for the ``len(x)`` rows not ``done``: each row's mean for the
    sums (its own estimate at least ``floor`` where learned, else ``mean``) and that times ``phi``
    recorded with ``x`` as :func:`evidence_record` does (without the once-a-lap resum). False, and
    nothing written, where :func:`evidence_record` would be (a NaN value or running sum)."""
    return bool(_evidence_record_window(sum_x, ring_x, sum_m, ring_m, sum_v, ring_v, x, mean, own, source, phi, done,
                                        learned, floor, pos, leaving))


cdef int _evidence_record_window(double[:, ::1] sum_x, float[::1, :] ring_x, double[:, ::1] sum_m,
                                 float[::1, :] ring_m, double[:, ::1] sum_v, float[::1, :] ring_v,
                                 const double[::1] x, const double[::1] mean, const double[::1] own,
                                 const signed char[::1] source, const double[::1] phi, const unsigned char[::1] done,
                                 signed char learned, double floor, Py_ssize_t pos,
                                 const Py_ssize_t[::1] leaving) except -1:
    """:func:`evidence_record_window`."""
    cdef Py_ssize_t i, k, n = x.shape[0], h = leaving.shape[0]
    cdef double m, v
    cdef bint nan = False
    cdef int got
    _check_rings(sum_x, ring_x, n, h, pos, leaving)
    _check_rings(sum_m, ring_m, n, h, pos, leaving)
    _check_rings(sum_v, ring_v, n, h, pos, leaving)
    if mean.shape[0] < n or own.shape[0] < n or source.shape[0] < n or phi.shape[0] < n or done.shape[0] < n:
        raise ValueError("the arrays are shorter than the counts")
    if n == 0:
        return True
    if _rec_sse2:
        got = _record_rows(sum_x, ring_x, sum_m, ring_m, sum_v, ring_v, x, mean, own, source, phi, done, learned,
                           floor, pos, leaving)
        if got >= 0:
            return got
    with nogil:
        for i in range(n):
            if not done[i]:
                m = _sum_mean(i, mean, own, source, learned, floor)
                v = m * phi[i]
                nan = nan or x[i] != x[i] or m != m or v != v
                for k in range(h):
                    nan = nan or sum_x[i, k] != sum_x[i, k] or sum_m[i, k] != sum_m[i, k] or sum_v[i, k] != sum_v[i, k]
    if nan:
        return False
    with nogil:
        for i in range(n):
            if not done[i]:
                m = _sum_mean(i, mean, own, source, learned, floor)
                _ring_row(sum_x, ring_x, x[i], i, pos, leaving)
                _ring_row(sum_m, ring_m, m, i, pos, leaving)
                _ring_row(sum_v, ring_v, m * phi[i], i, pos, leaving)
    return True


cdef int _record_rows(double[:, ::1] sum_x, float[::1, :] ring_x, double[:, ::1] sum_m, float[::1, :] ring_m,
                      double[:, ::1] sum_v, float[::1, :] ring_v, const double[::1] x, const double[::1] mean,
                      const double[::1] own, const signed char[::1] source, const double[::1] phi,
                      const unsigned char[::1] done, signed char learned, double floor, Py_ssize_t pos,
                      const Py_ssize_t[::1] leaving) noexcept:
    """:func:`spd_record_rows` of the checked arrays (``x`` not empty): 1 recorded, 0 a NaN, -1
    not done there."""
    cdef spd_rings g
    cdef int got
    g.sums[0], g.sums[1], g.sums[2] = &sum_x[0, 0], &sum_m[0, 0], &sum_v[0, 0]
    g.sst[0], g.sst[1], g.sst[2] = sum_x.strides[0] // 8, sum_m.strides[0] // 8, sum_v.strides[0] // 8
    g.ring[0], g.ring[1], g.ring[2] = &ring_x[0, 0], &ring_m[0, 0], &ring_v[0, 0]
    g.rst[0], g.rst[1], g.rst[2] = ring_x.strides[1] // 4, ring_m.strides[1] // 4, ring_v.strides[1] // 4
    with nogil:
        got = spd_record_rows(&g, x.shape[0], leaving.shape[0], &x[0], &mean[0], &own[0], &source[0], &phi[0],
                              &done[0], learned, floor, pos, &leaving[0] if leaving.shape[0] else NULL,
                              _rec_avx and RECORD_AVX_C)
    return got


cdef _check_rings(double[:, ::1] sums, float[::1, :] ring, Py_ssize_t n, Py_ssize_t h, Py_ssize_t pos,
                  const Py_ssize_t[::1] leaving):
    if sums.shape[0] < n or ring.shape[0] < n or sums.shape[1] < h or not 0 <= pos < ring.shape[1]:
        raise ValueError("the rings or sums do not fit")
    for k in range(h):
        if not 0 <= leaving[k] < ring.shape[1]:
            raise IndexError(f"ring position {leaving[k]} is out of bounds")


cdef inline void _ring_row(double[:, ::1] sums, float[::1, :] ring, double v, Py_ssize_t r, Py_ssize_t pos,
                           const Py_ssize_t[::1] leaving) noexcept nogil:
    """``_ring_step`` for one row."""
    cdef Py_ssize_t k
    for k in range(leaving.shape[0]):
        sums[r, k] = sums[r, k] + (v - <double>ring[r, leaving[k]])
    ring[r, pos] = <float>v


# -- evidence._resum: the running sums recomputed once a lap --------------------------------------

cdef double _pairwise(const double* a, Py_ssize_t n) noexcept nogil:
    """numpy's pairwise sum of float64 (``np.add.reduce`` over a contiguous axis): sequential
    from 0.0 below 8 values, eight running sums up to 128, halves (multiples of 8) beyond."""
    cdef Py_ssize_t i, j, n2
    cdef double res = 0.0
    cdef double r[8]
    if n < 8:
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, n2) + _pairwise(a + n2, n - n2)


cdef inline double _reduce(const double* a, Py_ssize_t n, bint pairwise) noexcept nogil:
    """``x[:, idx].sum(axis=1)`` for one row as numpy sums it: from 0.0, one value after the other
    (the gathered array is Fortran-ordered, so numpy adds column after column), or pairwise when
    there is only one row (the array is then C-contiguous too)."""
    cdef Py_ssize_t t
    cdef double res = 0.0
    if pairwise:
        return res + _pairwise(a, n)
    for t in range(n):
        res += a[t]
    return res


cdef bint _resum_ring(const float* ring, Py_ssize_t rst, const Py_ssize_t[::1] rows, bint contiguous,
                      const Py_ssize_t[::1] horizons, const Py_ssize_t* at, double* newest, double* acc,
                      double* out) noexcept nogil:
    """One ring's sums for ``rows`` into ``out`` (horizon k of row i at ``out[k * m + i]``; ``at``:
    the ring positions newest first; ``ring[r + p * rst]``: row r at position p). Several rows are
    summed position after position into ``acc`` (one per row; the ring is position-major, so each
    position is a dense slice, read straight when the rows are ``contiguous``), each row's sum
    still from 0.0 one value after the other, as numpy adds them; a single row pairwise, as numpy
    does then. True when a row's sum over the longest horizon, which every value read goes into,
    is NaN: a NaN was read (or infinities of both signs, which numpy then sums the same)."""
    cdef Py_ssize_t i, k, t, m = rows.shape[0], nh = horizons.shape[0], r0 = rows[0]
    cdef const float* col
    if m == 1:
        for t in range(horizons[nh - 1]):
            newest[t] = <double>ring[r0 + at[t] * rst]
        for k in range(nh):
            out[k] = _reduce(newest, horizons[k], True)
        return out[nh - 1] != out[nh - 1]
    for i in range(m):
        acc[i] = 0.0
    for k in range(nh):
        if horizons[k] == 0:
            memset(out + k * m, 0, m * sizeof(double))
    for t in range(horizons[nh - 1]):
        col = ring + at[t] * rst
        if contiguous:
            col = col + r0
            for i in range(m):
                acc[i] += <double>col[i]
        else:
            for i in range(m):
                acc[i] += <double>col[rows[i]]
        for k in range(nh):
            if horizons[k] == t + 1:
                memcpy(out + k * m, acc, m * sizeof(double))
    out = out + (nh - 1) * m
    for i in range(m):
        if out[i] != out[i]:
            return True
    return False


cdef void _resum_put(double[:, ::1] sums, const Py_ssize_t[::1] rows, Py_ssize_t nh, const double* out) noexcept nogil:
    """The sums :func:`_resum_ring` left in ``out`` into ``sums``."""
    cdef Py_ssize_t i, k, m = rows.shape[0]
    for i in range(m):
        for k in range(nh):
            sums[rows[i], k] = out[k * m + i]


def evidence_resum(float[::1, :] ring_x, float[::1, :] ring_m, float[::1, :] ring_v, double[:, ::1] sum_x,
                   double[:, ::1] sum_m, double[:, ::1] sum_v, const Py_ssize_t[::1] rows,
                   const Py_ssize_t[::1] horizons) -> bint:
    """``evidence._resum``: each running sum of ``rows`` the sum of its horizon's newest ring
    values from position 0 backwards (0, -1, -2, ... around the ring), in numpy's order.
    False, and nothing written, when a sum comes out NaN - a NaN read (which NaN a sum keeps is
    then the compiler's choice), or infinities of both signs: numpy does those."""
    return bool(_evidence_resum(ring_x, ring_m, ring_v, sum_x, sum_m, sum_v, rows, horizons))


cdef int _evidence_resum(float[::1, :] ring_x, float[::1, :] ring_m, float[::1, :] ring_v, double[:, ::1] sum_x,
                         double[:, ::1] sum_m, double[:, ::1] sum_v, const Py_ssize_t[::1] rows,
                         const Py_ssize_t[::1] horizons) except -1:
    """:func:`evidence_resum`."""
    cdef double newest[256]
    cdef double* acc
    cdef double* out
    cdef Py_ssize_t at[256]
    cdef Py_ssize_t i, m, nh = horizons.shape[0], h, size = ring_x.shape[1]
    cdef bint nan, contiguous
    if nh < 1 or horizons[nh - 1] > 256 or sum_x.shape[1] < nh or sum_m.shape[1] < nh or sum_v.shape[1] < nh \
            or size < 1 or ring_m.shape[1] != size or ring_v.shape[1] != size:
        raise ValueError("the horizons or rings do not fit")
    for i in range(nh):
        if not 0 <= horizons[i] <= horizons[nh - 1]:
            raise ValueError("the horizons do not fit")
    for i in range(rows.shape[0]):
        if not (0 <= rows[i] < ring_x.shape[0] and rows[i] < ring_m.shape[0] and rows[i] < ring_v.shape[0]
                and rows[i] < sum_x.shape[0] and rows[i] < sum_m.shape[0] and rows[i] < sum_v.shape[0]):
            raise IndexError(f"row {rows[i]} is out of bounds")
    h = horizons[nh - 1]
    for i in range(h):
        at[i] = (size - i % size) % size
    m = rows.shape[0]
    if m == 0:
        return True
    contiguous = rows[m - 1] - rows[0] == m - 1
    for i in range(1, m):
        contiguous = contiguous and rows[i] == rows[i - 1] + 1
    acc = <double*>malloc((3 * nh + 1) * m * sizeof(double))
    if acc == NULL:
        raise MemoryError()
    out = acc + m
    with nogil:
        nan = _resum_ring(&ring_x[0, 0], ring_x.strides[1] // 4, rows, contiguous, horizons, at, newest, acc, out) \
            or _resum_ring(&ring_m[0, 0], ring_m.strides[1] // 4, rows, contiguous, horizons, at, newest, acc,
                           out + nh * m) \
            or _resum_ring(&ring_v[0, 0], ring_v.strides[1] // 4, rows, contiguous, horizons, at, newest, acc,
                           out + 2 * nh * m)
        if not nan:
            _resum_put(sum_x, rows, nh, out)
            _resum_put(sum_m, rows, nh, out + nh * m)
            _resum_put(sum_v, rows, nh, out + 2 * nh * m)
    free(acc)
    return not nan
