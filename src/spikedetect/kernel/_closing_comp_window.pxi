# Included by _closing.pyx (one module), after _closing_nb.pxi and _closing_tails.pxi: one window of
# the composition detector in one call (``composition_window``) - ``composition_front``, the
# candidates' ``log_sf`` (``negbin.nb_tails``: ``nb_prepare``, its logs, ``nb_finish``), the
# learning's exp and ``composition_back`` - where FusedWindow made five calls and four numpy
# calls between them. The logs and the exp are still numpy's: its own float64 inner loops
# (``np.log``, ``np.log1p``, ``np.exp``, the ones a ufunc call on these contiguous float64 arrays
# runs, taken from the ufunc objects), called here on the same values, so the same bits.

cdef extern from *:
    """
    typedef void (*sd_ufunc_loop)(char **, const Py_ssize_t *, const Py_ssize_t *, void *);
    /* the head of numpy's PyUFuncObject (numpy/ufuncobject.h), the same in NumPy 1 and 2 */
    typedef struct {
        PyObject_HEAD
        int nin, nout, nargs;
        int identity;
        sd_ufunc_loop *functions;
        void *const *data;
        int ntypes;
    } sd_ufunc_head;
    """
    ctypedef void (*sd_ufunc_loop)(char **, const Py_ssize_t *, const Py_ssize_t *, void *) noexcept nogil
    ctypedef struct sd_ufunc_head:
        int nin, nout, ntypes
        sd_ufunc_loop *functions
        void **data


cdef struct _Loop:
    sd_ufunc_loop f
    void* data


cdef _Loop _ufunc_loop(object ufunc, Py_ssize_t i) except *:
    """The inner loop ``i`` of a one-in one-out numpy ufunc (``ufunc.types[i]`` is ``"d->d"``)."""
    cdef sd_ufunc_head* head = <sd_ufunc_head*><PyObject*>ufunc
    cdef _Loop loop
    if type(ufunc).__name__ != "ufunc" or ufunc.types[i] != "d->d" or head.nin != 1 or head.nout != 1 \
            or not 0 <= i < head.ntypes or head.functions[i] == NULL:
        raise ValueError(f"{ufunc!r}: no float64 loop at {i}")
    loop.f, loop.data = head.functions[i], head.data[i]
    return loop


cdef inline void _apply(_Loop* loop, double* src, double* dst, Py_ssize_t n) noexcept nogil:
    """``ufunc(src[:n], out=dst[:n])`` as numpy runs it on contiguous float64 arrays: one call of
    the loop over all ``n`` values (src and dst do not overlap)."""
    cdef char* args[2]
    cdef Py_ssize_t dims[1]
    cdef Py_ssize_t steps[2]
    if n <= 0:
        return
    args[0], args[1] = <char*>src, <char*>dst
    dims[0] = n
    steps[0] = steps[1] = sizeof(double)
    loop.f(args, dims, steps, loop.data)


cdef int _nb_logs(_Loop* log, _Loop* log1p, double[::1] work, Py_ssize_t nm, bint poisson, Py_ssize_t start,
                  Py_ssize_t size, Py_ssize_t logs, Py_ssize_t negq, Py_ssize_t log1p_at) except -1:
    """``negbin.take_logs(work, prepared)`` for :func:`nb_prepare`'s ``prepared`` (``nm``, ``poisson``,
    ``start``, ``size``, ``logs``, ``negq``, ``log1p_at``) with numpy's loops: log of ``size`` values
    from ``start`` into ``logs``, and log1p of ``-q`` unless all rows are Poisson. Refused (nothing
    run) when a range leaves ``work`` or an output overlaps its input: numpy would copy that input
    first, a direct loop call would not (nb_prepare's layout never does either)."""
    cdef Py_ssize_t end = work.shape[0]
    cdef double* w
    if not nm:
        return 0
    if not (0 <= start and 0 <= logs and 0 <= negq and 0 <= log1p_at and 0 < nm and 0 <= size
            and max(start, logs) + size <= end and max(negq, log1p_at) + nm <= end
            and (logs >= start + size or start >= logs + size) and (log1p_at >= negq + nm or negq >= log1p_at + nm)):
        raise ValueError("the logs do not fit the scratch")
    w = &work[0]
    with nogil:
        _apply(log, w + start, w + logs, size)
        if not poisson:
            _apply(log1p, w + negq, w + log1p_at, nm)
    return 0


cdef class CompositionWindow(CompositionArrays):
    """:class:`CompositionArrays` with what one call of :func:`composition_window` needs besides:
    numpy's loops of log, log1p and exp (``loops``: ``((np.log, i), (np.log1p, j), (np.exp, k))``,
    ``i``... the positions of ``"d->d"`` in their ``types``), ``negbin``'s constants (``nb``:
    (``_CONSTS``, ``_LN10``, ``MAX_SCORE``)) and the tails' scratch (grown by doubling)."""
    cdef _Loop log, log1p, exp
    cdef double nb_c[5]
    cdef double nb_ln10, nb_cap
    cdef Py_ssize_t[::1] nb_idx, no_rows
    cdef double[::1] nb_work, ones
    cdef double[:, :, ::1] no_sums

    def __init__(self, tuple front, tuple back, tuple loops, tuple nb):
        import numpy
        CompositionArrays.__init__(self, front, back)
        self.log = _ufunc_loop(loops[0][0], loops[0][1])
        self.log1p = _ufunc_loop(loops[1][0], loops[1][1])
        self.exp = _ufunc_loop(loops[2][0], loops[2][1])
        consts, self.nb_ln10, self.nb_cap = nb
        for i in range(5):
            self.nb_c[i] = consts[i]
        self.no_rows = numpy.zeros(0, dtype=numpy.intp)
        self.no_sums = numpy.zeros((5, 0, 0))
        self._grow(0)

    cdef int _grow(self, Py_ssize_t total) except -1:
        """Room for the tails of ``total`` candidates (as ``negbin._scratch`` gives it)."""
        cdef Py_ssize_t size
        if self.nb_idx is not None and self.nb_idx.shape[0] >= total:
            return 0
        import numpy  # here, not above the test: an import statement looks numpy up each time it runs
        size = max(total, 2 * (0 if self.nb_idx is None else self.nb_idx.shape[0]), 1024)
        self.nb_idx = numpy.empty(size, dtype=numpy.intp)
        self.nb_work = numpy.empty(NB_WORK * size)
        self.ones = numpy.ones(size)
        return 0

    cdef int _tails(self, Py_ssize_t m, Py_ssize_t cells, Py_ssize_t got) except -1:
        """``negbin.nb_tails`` of the ``got`` candidates ``composition_front`` left in ``f`` (counts
        at ``4 m``, means at ``4 m + cells``, overdispersion 1) into ``tail[:, :got]``."""
        cdef Py_ssize_t at = 4 * m, nm, size, logs, negq, log1p, start
        cdef bint poisson
        self._grow(got)
        nm, poisson, start, size, logs, negq, log1p = _nb_prepare(
            self.f[at:at + got], self.f[at + cells:at + cells + got], self.ones[:got], self.no_sums, self.nb_idx,
            self.nb_work)
        _nb_logs(&self.log, &self.log1p, self.nb_work, nm, poisson, start, size, logs, negq, log1p)
        _nb_finish(self.nb_idx, self.nb_work, nm, poisson, self.no_rows, self.nb_c, self.nb_ln10, self.nb_cap,
                   False, self.tail[:, :got])
        return 0


def composition_window(CompositionWindow a not None, const double[:, ::1] x, const unsigned char[::1] held) -> Py_ssize_t:
    """One composition window in one call, when every count is whole (else -1, nothing moved:
    then the passes one by one, numpy's sums given): :func:`composition_front`, the candidates'
    ``log_sf`` into ``a.tail``, ``exp(-n / LEARN_REPORTS)`` into ``a.f`` and
    :func:`composition_back`, whose rows that step it returns (in ``a.idx`` after the candidates)."""
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], cells = 3 * m * k, got
    a.viewing()
    if a.tail.shape[1] < cells:  # (before the front moves anything)
        raise ValueError("composition_window: the arrays do not fit")
    got = _composition_front(a, x, False, "composition_window")
    if got < 0:
        return -1
    if got:
        a._tails(m, cells, got)
    _apply(&a.exp, &a.f[m], &a.f[2 * m], m)
    return _composition_back(a, x, held, got)
