# Included by _closing.pyx (one module), after _tail_row, _closing_simd.pxi and _closing_avx.pxi:
# the negative-binomial tail sums of many rows, four rows at a time in AVX where the CPU has it,
# then two at a time in SSE2 registers. Lane by lane these are _tail_row's IEEE operations in its
# order (not stepwise: each group of 8 terms from k + j, the running term and sum, the stop test
# after each group, then the geometric remainder with numpy's minimum). A lane that has stopped
# keeps its values while the others go on: each group is computed for every lane and kept where
# the lane was still going. The four-row loop is the two-row one on four lanes. Stepwise calls (a
# count from 2**52) and the last rows short of a pair take _tail_row.
# tests/core/test_closing_kernel_tail_pair.py holds all three to each other. Without SSE2 (not
# x86-64) spd_tail_pairs does no row and _tail_row does them all.

cdef extern from *:
    """
    #if defined(__SSE2__)
    #define SPD_TAIL_SSE2 1
    /* rows 0 .. m - 1 rounded down to pairs: out[i] = _tail_row(k[i], a[i], b[i], not stepwise);
       b and out may be one array (a pair is read before it is written). Returns the rows done. */
    static Py_ssize_t spd_tail_pairs(const double* k, const double* a, const double* b, double* out, Py_ssize_t m) {
        Py_ssize_t i;
        int g, j;
        const __m128d one = _mm_set1_pd(1.0), eps = _mm_set1_pd(1e-10), cap = _mm_set1_pd(0.999999);
        for (i = 0; i + 1 < m; i += 2) {
            __m128d kk = _mm_loadu_pd(k + i), aa = _mm_loadu_pd(a + i), bb = _mm_loadu_pd(b + i);
            __m128d t = one, s = one, r = _mm_setzero_pd();
            __m128d going = _mm_castsi128_pd(_mm_set1_epi32(-1));
            for (g = 0; g < 6; g++) {  /* _TERMS // 8 */
                __m128d t2 = t, s2 = s, r2 = r, kj = kk;
                for (j = 0; j < 8; j++) {
                    kj = _mm_add_pd(kk, _mm_set1_pd((double)j));
                    r2 = _mm_div_pd(_mm_add_pd(_mm_mul_pd(kj, aa), bb), _mm_add_pd(kj, one));
                    t2 = _mm_mul_pd(t2, r2);
                    s2 = _mm_add_pd(s2, t2);
                }
                t = spd_sel(going, t2, t);
                s = spd_sel(going, s2, s);
                r = spd_sel(going, r2, r);
                kk = spd_sel(going, _mm_add_pd(kj, one), kk);
                going = _mm_and_pd(going, _mm_cmpge_pd(t, _mm_mul_pd(eps, s)));
                if (!_mm_movemask_pd(going))
                    break;
            }
            r = spd_min(r, cap);
            _mm_storeu_pd(out + i, _mm_add_pd(s, _mm_div_pd(_mm_mul_pd(t, r), _mm_sub_pd(one, r))));
        }
        return i;
    }
    #else
    #define SPD_TAIL_SSE2 0
    static Py_ssize_t spd_tail_pairs(const double* k, const double* a, const double* b, double* out, Py_ssize_t m) {
        return 0;
    }
    #endif
    #if SPD_AVX
    #define SPD_TAIL_AVX 1
    /* spd_tail_pairs four rows at a time in AVX (where the CPU has it: _closing_avx.pxi): rows
       0 .. m - 1 rounded down to fours. Returns the rows done. */
    SPD_AVX_FN Py_ssize_t spd_tail_quads(const double* k, const double* a, const double* b, double* out,
                                         Py_ssize_t m) {
        Py_ssize_t i;
        int g, j;
        const __m256d one = _mm256_set1_pd(1.0), eps = _mm256_set1_pd(1e-10), cap = _mm256_set1_pd(0.999999);
        for (i = 0; i + 3 < m; i += 4) {
            __m256d kk = _mm256_loadu_pd(k + i), aa = _mm256_loadu_pd(a + i), bb = _mm256_loadu_pd(b + i);
            __m256d t = one, s = one, r = _mm256_setzero_pd();
            __m256d going = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
            for (g = 0; g < 6; g++) {  /* _TERMS // 8 */
                __m256d t2 = t, s2 = s, r2 = r, kj = kk;
                for (j = 0; j < 8; j++) {
                    kj = _mm256_add_pd(kk, _mm256_set1_pd((double)j));
                    r2 = _mm256_div_pd(_mm256_add_pd(_mm256_mul_pd(kj, aa), bb), _mm256_add_pd(kj, one));
                    t2 = _mm256_mul_pd(t2, r2);
                    s2 = _mm256_add_pd(s2, t2);
                }
                t = spq_sel(going, t2, t);
                s = spq_sel(going, s2, s);
                r = spq_sel(going, r2, r);
                kk = spq_sel(going, _mm256_add_pd(kj, one), kk);
                going = _mm256_and_pd(going, _mm256_cmp_pd(t, _mm256_mul_pd(eps, s), _CMP_GE_OQ));
                if (!_mm256_movemask_pd(going))
                    break;
            }
            r = spq_min(r, cap);
            _mm256_storeu_pd(out + i, _mm256_add_pd(s, _mm256_div_pd(_mm256_mul_pd(t, r), _mm256_sub_pd(one, r))));
        }
        return i;
    }
    #else
    #define SPD_TAIL_AVX 0
    static Py_ssize_t spd_tail_quads(const double* k, const double* a, const double* b, double* out, Py_ssize_t m) {
        return 0;
    }
    #endif
    """
    Py_ssize_t spd_tail_pairs(const double* k, const double* a, const double* b, double* out,
                              Py_ssize_t m) noexcept nogil
    Py_ssize_t spd_tail_quads(const double* k, const double* a, const double* b, double* out,
                              Py_ssize_t m) noexcept nogil
    int SPD_TAIL_SSE2
    int SPD_TAIL_AVX


TAIL_SSE2 = bool(SPD_TAIL_SSE2)
cdef bint _tail_sse2 = True
cdef bint TAIL_AVX_C = SPD_TAIL_AVX and _avx
TAIL_AVX = bool(TAIL_AVX_C)
cdef bint _tail_avx = TAIL_AVX_C


def tail_sse2(on: object = None) -> bool:
    """Whether the tail sums take two rows at a time in SSE2 (``on``: switch it, for tests that
    hold it to the scalar loop); False where there is no SSE2."""
    global _tail_sse2
    if on is not None:
        _tail_sse2 = bool(on)
    return _tail_sse2 and TAIL_SSE2


def tail_avx(on: object = None) -> bool:
    """Whether the tail sums take four rows at a time in AVX before the SSE2 pairs (``on``: switch
    it, for tests); False where the CPU has no AVX."""
    global _tail_avx
    if on is not None:
        _tail_avx = bool(on)
    return _tail_avx and TAIL_AVX_C


cdef void _tail_rows(const double* k, const double* a, const double* b, double* out, Py_ssize_t m,
                     bint stepwise) noexcept nogil:
    """``out[i] = _tail_row(k[i], a[i], b[i], stepwise)`` for rows 0 .. m - 1 (``b`` and ``out`` may
    be one array)."""
    cdef Py_ssize_t i, done = 0
    if _tail_avx and TAIL_AVX_C and not stepwise:
        done = spd_tail_quads(k, a, b, out, m)
    if _tail_sse2 and not stepwise:
        done += spd_tail_pairs(k + done, a + done, b + done, out + done, m - done)
    for i in range(done, m):
        out[i] = _tail_row(k[i], a[i], b[i], stepwise)


def tail_sum(const double[::1] xm, const double[::1] a, const double[::1] b, bint stepwise,
             double[::1] out) -> None:
    """``negbin._tail_sum(xm, a, b)`` into ``out`` (:func:`_tail_row` per row). ``stepwise``:
    k + j is no longer exact (the reference's choice for the whole call)."""
    cdef Py_ssize_t n = xm.shape[0]
    if a.shape[0] < n or b.shape[0] < n or out.shape[0] < n:
        raise ValueError("the arrays are shorter than the counts")
    if n == 0:
        return
    with nogil:
        _tail_rows(&xm[0], &a[0], &b[0], &out[0], n, stepwise)
