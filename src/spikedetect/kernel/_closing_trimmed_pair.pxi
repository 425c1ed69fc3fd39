# Included by _closing_window.pxi, before _horizon_trimmed: its loops over ring positions and
# candidate rows in C, two candidates at a time in SSE2 registers. Lane by lane these are the
# scalar loops' IEEE operations in their order: a candidate's observed, mean and variance sums
# added newest value first, its largest excess ``max(x - m, 0)`` with numpy's NaN rule, and at
# each horizon the trimmed sum, the mean sum, the mean scored against (at least 1e-9), the
# overdispersion (at least 1) and the running mean sum. The finiteness check (``v - v == 0``) of
# a ring position's values is taken over the whole position before the next one is read, where
# the scalar loop stops at the first value: both then return 0 with ``out`` partly written (the
# caller recomputes it with numpy). tests/core/test_closing_kernel_trimmed_pair.py holds the two
# to each other. Without SSE2 (not x86-64) spd_trimmed returns -1 and the scalar loops run.

cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #define SPD_TRIM_SSE2 1

    /* ring r's column: position c of row r at [r + c * st]; sums: row r's horizon h at [r * sst + h];
       out: (5, nh, k), [c * os0 + h * os1 + j]; acc: 4 * k scratch (observed, mean, variance, excess, k each) */
    static int spd_trimmed(const float* rx, Py_ssize_t stx, const float* rm, Py_ssize_t stm, const float* rv,
                           Py_ssize_t stv, const double* sum_m, Py_ssize_t sst, const Py_ssize_t* cand,
                           Py_ssize_t k, const Py_ssize_t* at, const Py_ssize_t* horizons, Py_ssize_t nh,
                           double* out, Py_ssize_t os0, Py_ssize_t os1, double* acc) {
        Py_ssize_t t, j, h = 0, last = horizons[nh - 1];
        double *ax = acc, *am = acc + k, *av = acc + 2 * k, *ad = acc + 3 * k;
        const __m128d zero = _mm_setzero_pd(), tiny = _mm_set1_pd(1e-9), one = _mm_set1_pd(1.0);
        for (t = 0; t < last; t++) {
            const float *cx = rx + at[t] * stx, *cm = rm + at[t] * stm, *cv = rv + at[t] * stv;
            __m128d fin = _mm_castsi128_pd(_mm_set1_epi32(-1));
            int fin1 = 1;
            for (j = 0; j + 1 < k; j += 2) {
                Py_ssize_t r0 = cand[j], r1 = cand[j + 1];
                __m128d x = _mm_set_pd((double)cx[r1], (double)cx[r0]);
                __m128d m = _mm_set_pd((double)cm[r1], (double)cm[r0]);
                __m128d v = _mm_set_pd((double)cv[r1], (double)cv[r0]);
                fin = _mm_and_pd(fin, _mm_and_pd(_mm_cmpeq_pd(_mm_sub_pd(x, x), zero),
                                                  _mm_and_pd(_mm_cmpeq_pd(_mm_sub_pd(m, m), zero),
                                                             _mm_cmpeq_pd(_mm_sub_pd(v, v), zero))));
                __m128d d = spd_max(_mm_sub_pd(x, m), zero);
                if (t == 0) {
                    _mm_storeu_pd(ax + j, x); _mm_storeu_pd(am + j, m); _mm_storeu_pd(av + j, v);
                    _mm_storeu_pd(ad + j, d);
                } else {
                    _mm_storeu_pd(ax + j, _mm_add_pd(_mm_loadu_pd(ax + j), x));
                    _mm_storeu_pd(am + j, _mm_add_pd(_mm_loadu_pd(am + j), m));
                    _mm_storeu_pd(av + j, _mm_add_pd(_mm_loadu_pd(av + j), v));
                    _mm_storeu_pd(ad + j, spd_max(_mm_loadu_pd(ad + j), d));
                }
            }
            if (j < k) {  /* the last of an odd number */
                Py_ssize_t r = cand[j];
                double x = (double)cx[r], m = (double)cm[r], v = (double)cv[r];
                double d = spd_max1(x - m, 0.0);
                fin1 = x - x == 0.0 && m - m == 0.0 && v - v == 0.0;
                if (t == 0) {
                    ax[j] = x; am[j] = m; av[j] = v; ad[j] = d;
                } else {
                    ax[j] = ax[j] + x; am[j] = am[j] + m; av[j] = av[j] + v; ad[j] = spd_max1(ad[j], d);
                }
            }
            if (_mm_movemask_pd(fin) != 3 || !fin1)
                return 0;
            while (h < nh && t == horizons[h] - 1) {
                double *o0 = out + h * os1, *o1 = o0 + os0, *o2 = o1 + os0, *o3 = o2 + os0, *o4 = o3 + os0;
                for (j = 0; j + 1 < k; j += 2) {
                    __m128d mm = _mm_loadu_pd(am + j), mean = spd_max(mm, tiny);
                    _mm_storeu_pd(o0 + j, _mm_sub_pd(_mm_loadu_pd(ax + j), _mm_loadu_pd(ad + j)));
                    _mm_storeu_pd(o1 + j, mm);
                    _mm_storeu_pd(o2 + j, mean);
                    _mm_storeu_pd(o3 + j, spd_max(_mm_div_pd(_mm_loadu_pd(av + j), mean), one));
                    o4[j] = sum_m[cand[j] * sst + h];
                    o4[j + 1] = sum_m[cand[j + 1] * sst + h];
                }
                if (j < k) {
                    double mean = spd_max1(am[j], 1e-9);
                    o0[j] = ax[j] - ad[j]; o1[j] = am[j]; o2[j] = mean;
                    o3[j] = spd_max1(av[j] / mean, 1.0); o4[j] = sum_m[cand[j] * sst + h];
                }
                h++;
            }
        }
        return 1;
    }
    #else
    #define SPD_TRIM_SSE2 0
    static int spd_trimmed(const float* rx, Py_ssize_t stx, const float* rm, Py_ssize_t stm, const float* rv,
                           Py_ssize_t stv, const double* sum_m, Py_ssize_t sst, const Py_ssize_t* cand,
                           Py_ssize_t k, const Py_ssize_t* at, const Py_ssize_t* horizons, Py_ssize_t nh,
                           double* out, Py_ssize_t os0, Py_ssize_t os1, double* acc) {
        return -1;
    }
    #endif
    """
    int spd_trimmed(const float* rx, Py_ssize_t stx, const float* rm, Py_ssize_t stm, const float* rv,
                    Py_ssize_t stv, const double* sum_m, Py_ssize_t sst, const Py_ssize_t* cand, Py_ssize_t k,
                    const Py_ssize_t* at, const Py_ssize_t* horizons, Py_ssize_t nh, double* out, Py_ssize_t os0,
                    Py_ssize_t os1, double* acc) noexcept nogil
    int SPD_TRIM_SSE2


TRIMMED_SSE2 = bool(SPD_TRIM_SSE2)
cdef bint _trim_sse2 = True


def trimmed_sse2(on: object = None) -> bool:
    """Whether the horizons' trimmed sums take two candidates at a time in SSE2 (``on``: switch it,
    for tests that hold it to the scalar loops); False where there is no SSE2."""
    global _trim_sse2
    if on is not None:
        _trim_sse2 = bool(on)
    return _trim_sse2 and TRIMMED_SSE2
