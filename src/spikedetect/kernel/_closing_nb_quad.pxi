# Included by _closing.pyx (one module), after _closing_avx.pxi and before _closing_nb.pxi: the end of
# the negative-binomial tails (_nb_finish's _nb_log_sf, and _surprise when it asks) of four
# gathered rows at once in AVX, where the CPU has it. Lane by lane these are _nb_log_sf's and
# _lgamma's IEEE operations in their order; what the scalar code chooses by a branch (lgamma's
# shift below 8, a Poisson row's pmf) is computed for every lane and selected, and the non-Poisson
# pmf is not computed at all when every row is Poisson (its logs are not laid out then). numpy's
# NaN rules for minimum and maximum as _closing_avx's selections. Each lgamma takes a division,
# three a row when not Poisson: what makes the loop worth four lanes.
# tests/core/test_closing_kernel_nb_quad.py holds it to the scalar loop.

cdef extern from *:
    """
    #if SPD_AVX
    #define SPD_NB_AVX 1

    /* _lgamma of four values: c as there (half log 2 pi, 1/12, 1/360, 1/1260, 1/1680) */
    SPD_AVX_FN __m256d spq_lgamma(__m256d x, __m256d log_prod, __m256d log_z, const double* c) {
        const __m256d eight = _mm256_set1_pd(8.0);
        __m256d small = _mm256_cmp_pd(x, eight, _CMP_LT_OQ);
        __m256d z = spq_sel(small, _mm256_add_pd(x, eight), x);
        __m256d inv = _mm256_div_pd(_mm256_set1_pd(1.0), z);
        __m256d inv2 = _mm256_mul_pd(inv, inv);
        __m256d series = _mm256_mul_pd(inv, _mm256_sub_pd(_mm256_set1_pd(c[1]), _mm256_mul_pd(inv2, _mm256_sub_pd(
            _mm256_set1_pd(c[2]), _mm256_mul_pd(inv2, _mm256_sub_pd(_mm256_set1_pd(c[3]),
                                                                    _mm256_mul_pd(inv2, _mm256_set1_pd(c[4]))))))));
        __m256d v = _mm256_sub_pd(_mm256_mul_pd(_mm256_sub_pd(z, _mm256_set1_pd(0.5)), log_z), z);
        v = _mm256_add_pd(_mm256_add_pd(v, _mm256_set1_pd(c[0])), series);
        return _mm256_sub_pd(v, _mm256_and_pd(small, log_prod));  /* log_prod where small, else +0.0 */
    }

    /* gathered rows g .. g + 3 into vals: x, mu, r, pm, l1p: the counts, means, NB sizes,
       overdispersions and log1p(-q) of the gathered rows; logs: the logs' section (m rows each,
       k lgamma arguments a row). 1: written */
    SPD_AVX_FN int spd_log_sf4(const double* x_, const double* mu_, const double* r_, const double* pm_,
                                const double* l1p, const double* logs, Py_ssize_t m, Py_ssize_t k, int poisson,
                                const double* c, double ln10, double cap, int as_surprise, Py_ssize_t g,
                                double* vals) {
        const __m256d x = _mm256_loadu_pd(x_ + g), mu = _mm256_loadu_pd(mu_ + g);
        const __m256d zero = _mm256_setzero_pd();
        __m256d lg1 = spq_lgamma(_mm256_add_pd(x, _mm256_set1_pd(1.0)), _mm256_loadu_pd(logs + g),
                                 _mm256_loadu_pd(logs + k * m + g), c);
        __m256d pmf = _mm256_sub_pd(_mm256_sub_pd(_mm256_mul_pd(x, _mm256_loadu_pd(logs + (2 * k + 1) * m + g)), mu),
                                    lg1);
        if (!poisson) {
            const __m256d r = _mm256_loadu_pd(r_ + g);
            __m256d po = _mm256_cmp_pd(_mm256_loadu_pd(pm_ + g), _mm256_set1_pd(1.0001), _CMP_LE_OQ);
            __m256d lgxr = spq_lgamma(_mm256_add_pd(x, r), _mm256_loadu_pd(logs + m + g),
                                      _mm256_loadu_pd(logs + (k + 1) * m + g), c);
            __m256d lgr = spq_lgamma(r, _mm256_loadu_pd(logs + 2 * m + g), _mm256_loadu_pd(logs + (k + 2) * m + g), c);
            __m256d nb = _mm256_add_pd(_mm256_add_pd(_mm256_sub_pd(_mm256_sub_pd(lgxr, lg1), lgr),
                                                     _mm256_mul_pd(r, _mm256_loadu_pd(l1p + g))),
                                       _mm256_mul_pd(x, _mm256_loadu_pd(logs + 2 * k * m + g)));
            pmf = spq_sel(po, pmf, nb);
        }
        __m256d v = spq_min(_mm256_add_pd(pmf, _mm256_loadu_pd(logs + (2 * k + 2) * m + g)), zero);
        if (as_surprise)
            v = spq_max(spq_min(_mm256_div_pd(_mm256_xor_pd(v, _mm256_set1_pd(-0.0)), _mm256_set1_pd(ln10)),
                                _mm256_set1_pd(cap)), zero);
        _mm256_storeu_pd(vals, v);
        return 1;
    }
    #else
    #define SPD_NB_AVX 0
    static int spd_log_sf4(const double* x_, const double* mu_, const double* r_, const double* pm_,
                           const double* l1p, const double* logs, Py_ssize_t m, Py_ssize_t k, int poisson,
                           const double* c, double ln10, double cap, int as_surprise, Py_ssize_t g, double* vals) {
        return 0;
    }
    #endif
    """
    int spd_log_sf4(const double* x_, const double* mu_, const double* r_, const double* pm_, const double* l1p,
                     const double* logs, Py_ssize_t m, Py_ssize_t k, int poisson, const double* c, double ln10,
                     double cap, int as_surprise, Py_ssize_t g, double* vals) noexcept nogil
    int SPD_NB_AVX


cdef bint NB_AVX_C = SPD_NB_AVX and _avx
NB_AVX = bool(NB_AVX_C)
cdef bint _nb_avx = NB_AVX_C


def nb_avx(on: object = None) -> bool:
    """Whether the tails' end takes four gathered rows at a time in AVX (``on``: switch it, for
    tests that hold it to the scalar loop); False where the CPU has no AVX."""
    global _nb_avx
    if on is not None:
        _nb_avx = bool(on)
    return _nb_avx and NB_AVX_C
