# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of the closing path, bit-identical to their numpy references.

Only IEEE arithmetic (+ - * /, comparisons) is done here, row by row, in the order the numpy
code does it elementwise; setup.py compiles with -ffp-contract=off (no fused multiply-add), so
every value rounds as numpy's does. Transcendentals (log, exp, lgamma) stay in numpy: libm's
may differ from numpy's in the last bits. ``np.minimum``/``np.maximum`` are spelled out with
numpy's NaN rule (a NaN operand wins). The references: :func:`spikedetect.core.negbin._tail_sum`
(tests/core/test_closing_kernel.py compares them on random and edge-case inputs).
"""

cdef int _TERMS = 48


cdef inline double _np_min(double x, double y) noexcept nogil:
    """np.minimum(x, y): x when x <= y or x is NaN, else y."""
    return x if (x <= y or x != x) else y


def tail_sum(const double[::1] xm, const double[::1] a, const double[::1] b, bint stepwise,
             double[::1] out) -> None:
    """``negbin._tail_sum(xm, a, b)`` into ``out``: per row, the tail terms 8 at a time until
    the last term is below 1e-10 of the sum (at most 48), then the geometric remainder.
    ``stepwise``: k + j is no longer exact (the reference's choice for the whole call)."""
    cdef Py_ssize_t i, n = xm.shape[0]
    cdef int g, j
    cdef double k, t, s, r, aa, bb, kj
    with nogil:
        for i in range(n):
            k = xm[i]
            aa = a[i]
            bb = b[i]
            t = 1.0
            s = 1.0
            r = 0.0
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
            out[i] = s + t * r / (1.0 - r)
