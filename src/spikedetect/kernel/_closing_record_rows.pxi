# Included by _closing_record.pxi: the evidence record of a window's rows (_evidence_record_window's
# two loops) in C over plain pointers, two rows at a time in SSE2 registers. Lane by lane these are
# the scalar loops' IEEE operations in their order: a row's sum mean (its own estimate, at least
# the floor with numpy's NaN rule, where learned, else the mean), that times phi, then for each
# ring and each horizon k ``sum[r, k] + (value - ring[r, leaving[k]])`` with the ring value
# widened to float64, and last the value rounded to float32 into ring position ``pos`` (after the
# leaving values were read: the longest horizon leaves from ``pos`` itself). The NaN check before
# it reads the same values as the scalar check; nothing is written when one is NaN. A row pair's two
# float32 ring values move as one 64-bit load or store (spd_load2f, spd_store2f: _closing_simd.pxi). So the bits are
# the scalar loops' (tests/core/test_closing_kernel_record_rows.py holds the two to each other).
# Without SSE2 (not x86-64), or with more than 8 horizons, spd_record_rows returns -1 and the
# scalar loops run.

cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #define SPD_REC_SSE2 1

    typedef struct {
        double* sums[3];           /* sum_x, sum_m, sum_v: row r's horizon k at [r * sst[j] + k] */
        Py_ssize_t sst[3];
        float* ring[3];            /* ring_x, ring_m, ring_v: row r, position c at [r + c * rst[j]] */
        Py_ssize_t rst[3];
    } spd_rings;

    /* the sum mean of rows r, r + 1: np.where(source == learned, np.maximum(own, floor), mean) */
    static inline __m128d spd_sum_mean2(const double* mean, const double* own, const signed char* source,
                                        Py_ssize_t r, signed char learned, __m128d fl) {
        return spd_sel(spd_mask2(source[r] == learned, source[r + 1] == learned),
                       spd_max(_mm_loadu_pd(own + r), fl), _mm_loadu_pd(mean + r));
    }

    static inline double spd_sum_mean1(const double* mean, const double* own, const signed char* source,
                                       Py_ssize_t r, signed char learned, double fl) {
        return source[r] == learned ? spd_max1(own[r], fl) : mean[r];
    }

    /* one ring's step of rows r, r + 1 (values val) */
    static inline void spd_ring2(double* s, Py_ssize_t sst, float* ring, Py_ssize_t rst, __m128d val,
                                 Py_ssize_t r, Py_ssize_t pos, const Py_ssize_t* leaving, Py_ssize_t h) {
        Py_ssize_t k;
        double* s0 = s + r * sst;
        double* s1 = s0 + sst;
        for (k = 0; k < h; k++) {
            __m128d old = _mm_cvtps_pd(spd_load2f(ring + r + leaving[k] * rst));
            __m128d sum = _mm_loadh_pd(_mm_load_sd(s0 + k), s1 + k);
            sum = _mm_add_pd(sum, _mm_sub_pd(val, old));
            _mm_storel_pd(s0 + k, sum);
            _mm_storeh_pd(s1 + k, sum);
        }
        spd_store2f(ring + r + pos * rst, _mm_cvtpd_ps(val));
    }

    static inline void spd_ring1(double* s, Py_ssize_t sst, float* ring, Py_ssize_t rst, double val,
                                 Py_ssize_t r, Py_ssize_t pos, const Py_ssize_t* leaving, Py_ssize_t h) {
        Py_ssize_t k;
        for (k = 0; k < h; k++)
            s[r * sst + k] = s[r * sst + k] + (val - (double)ring[r + leaving[k] * rst]);
        ring[r + pos * rst] = (float)val;
    }

    /* the check of one row not done: whether its x, m, v or a running sum is NaN */
    static inline int spd_record_bad1(const spd_rings* g, Py_ssize_t r, Py_ssize_t h, const double* x,
                                      const double* mean, const double* own, const signed char* source,
                                      const double* phi, signed char learned, double floor) {
        Py_ssize_t j, k;
        double m = spd_sum_mean1(mean, own, source, r, learned, floor);
        __m128d bad = _mm_cmpunord_pd(_mm_set_pd(m, x[r]), _mm_set_pd(m * phi[r], m * phi[r]));
        for (j = 0; j < 3; j++)
            for (k = 0; k < h; k++) {
                __m128d s = _mm_load_sd(g->sums[j] + r * g->sst[j] + k);
                bad = _mm_or_pd(bad, _mm_cmpunord_sd(s, s));
            }
        return _mm_movemask_pd(bad) != 0;
    }

    /* the check of rows r .. n - 1 one by one: whether one not done is bad */
    static int spd_record_bad_from(const spd_rings* g, Py_ssize_t r, Py_ssize_t n, Py_ssize_t h, const double* x,
                                   const double* mean, const double* own, const signed char* source,
                                   const double* phi, const unsigned char* done, signed char learned, double floor) {
        for (; r < n; r++)
            if (!done[r] && spd_record_bad1(g, r, h, x, mean, own, source, phi, learned, floor))
                return 1;
        return 0;
    }

    #if SPD_AVX
    #define SPD_REC_AVX 1
    /* the check of every row not done, four rows at a time where none of them is done and their
       running sums are three a row, back to back (h == 3, sst 3): the same values read */
    SPD_AVX_FN int spq_record_bad(const spd_rings* g, Py_ssize_t n, Py_ssize_t h, const double* x,
                                  const double* mean, const double* own, const signed char* source,
                                  const double* phi, const unsigned char* done, signed char learned, double floor) {
        Py_ssize_t r = 0, j;
        const __m256d fl = _mm256_set1_pd(floor);
        __m256d bad = _mm256_setzero_pd();
        if (h == 3 && g->sst[0] == 3 && g->sst[1] == 3 && g->sst[2] == 3) {
            for (; r + 3 < n; r += 4) {
                if (done[r] | done[r + 1] | done[r + 2] | done[r + 3]) {
                    if (spd_record_bad_from(g, r, r + 4, h, x, mean, own, source, phi, done, learned, floor))
                        return 1;
                    continue;
                }
                int f[4] = {source[r] == learned, source[r + 1] == learned, source[r + 2] == learned,
                            source[r + 3] == learned};
                __m256d m = spq_sel(spq_mask4(f), spq_max(_mm256_loadu_pd(own + r), fl), _mm256_loadu_pd(mean + r));
                __m256d xv = _mm256_loadu_pd(x + r), v = _mm256_mul_pd(m, _mm256_loadu_pd(phi + r));
                bad = _mm256_or_pd(bad, _mm256_cmp_pd(xv, m, _CMP_UNORD_Q));
                bad = _mm256_or_pd(bad, _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
                for (j = 0; j < 3; j++) {
                    const double* s = g->sums[j] + r * 3;
                    __m256d a = _mm256_loadu_pd(s), b = _mm256_loadu_pd(s + 4), c = _mm256_loadu_pd(s + 8);
                    bad = _mm256_or_pd(bad, _mm256_cmp_pd(a, b, _CMP_UNORD_Q));
                    bad = _mm256_or_pd(bad, _mm256_cmp_pd(c, c, _CMP_UNORD_Q));
                }
            }
        }
        return _mm256_movemask_pd(bad) || spd_record_bad_from(g, r, n, h, x, mean, own, source, phi, done, learned,
                                                             floor);
    }
    #else
    #define SPD_REC_AVX 0
    static int spq_record_bad(const spd_rings* g, Py_ssize_t n, Py_ssize_t h, const double* x,
                              const double* mean, const double* own, const signed char* source,
                              const double* phi, const unsigned char* done, signed char learned, double floor) {
        /* no AVX: the row-by-row check (check_avx is never set then) */
        return spd_record_bad_from(g, 0, n, h, x, mean, own, source, phi, done, learned, floor);
    }
    #endif

    /* 1 when recorded, 0 when a value read is NaN (nothing written), -1 when not done here;
       check_avx: the check may take spq_record_bad */
    static int spd_record_rows(const spd_rings* g, Py_ssize_t n, Py_ssize_t h, const double* x,
                               const double* mean, const double* own, const signed char* source,
                               const double* phi, const unsigned char* done, signed char learned, double floor,
                               Py_ssize_t pos, const Py_ssize_t* leaving, int check_avx) {
        Py_ssize_t r;
        const __m128d fl = _mm_set1_pd(floor);
        if (h > 8) return -1;
        if (check_avx ? spq_record_bad(g, n, h, x, mean, own, source, phi, done, learned, floor)  /* the check */
                      : spd_record_bad_from(g, 0, n, h, x, mean, own, source, phi, done, learned, floor))
            return 0;
        for (r = 0; r < n; ) {
            if (r + 1 < n && !done[r] && !done[r + 1]) {
                __m128d m = spd_sum_mean2(mean, own, source, r, learned, fl);
                spd_ring2(g->sums[0], g->sst[0], g->ring[0], g->rst[0], _mm_loadu_pd(x + r), r, pos, leaving, h);
                spd_ring2(g->sums[1], g->sst[1], g->ring[1], g->rst[1], m, r, pos, leaving, h);
                spd_ring2(g->sums[2], g->sst[2], g->ring[2], g->rst[2], _mm_mul_pd(m, _mm_loadu_pd(phi + r)), r, pos,
                          leaving, h);
                r += 2;
                continue;
            }
            if (!done[r]) {
                double m = spd_sum_mean1(mean, own, source, r, learned, floor);
                spd_ring1(g->sums[0], g->sst[0], g->ring[0], g->rst[0], x[r], r, pos, leaving, h);
                spd_ring1(g->sums[1], g->sst[1], g->ring[1], g->rst[1], m, r, pos, leaving, h);
                spd_ring1(g->sums[2], g->sst[2], g->ring[2], g->rst[2], m * phi[r], r, pos, leaving, h);
            }
            r += 1;
        }
        return 1;
    }
    #else
    #define SPD_REC_SSE2 0
    typedef struct {
        double* sums[3];
        Py_ssize_t sst[3];
        float* ring[3];
        Py_ssize_t rst[3];
    } spd_rings;
    static int spd_record_rows(const spd_rings* g, Py_ssize_t n, Py_ssize_t h, const double* x,
                               const double* mean, const double* own, const signed char* source,
                               const double* phi, const unsigned char* done, signed char learned, double floor,
                               Py_ssize_t pos, const Py_ssize_t* leaving, int check_avx) {
        return -1;
    }
    #endif
    """
    ctypedef struct spd_rings:
        double* sums[3]
        Py_ssize_t sst[3]
        float* ring[3]
        Py_ssize_t rst[3]
    int spd_record_rows(const spd_rings* g, Py_ssize_t n, Py_ssize_t h, const double* x, const double* mean,
                        const double* own, const signed char* source, const double* phi, const unsigned char* done,
                        signed char learned, double floor, Py_ssize_t pos, const Py_ssize_t* leaving,
                        int check_avx) noexcept nogil
    int SPD_REC_SSE2
    int SPD_REC_AVX


RECORD_SSE2 = bool(SPD_REC_SSE2)
cdef bint _rec_sse2 = True
cdef bint RECORD_AVX_C = SPD_REC_AVX and _avx
RECORD_AVX = bool(RECORD_AVX_C)
cdef bint _rec_avx = RECORD_AVX_C


def record_sse2(on: object = None) -> bool:
    """Whether the evidence record takes the SSE2 rows (``on``: switch it, for tests that hold it
    to the scalar loops); False where there is no SSE2."""
    global _rec_sse2
    if on is not None:
        _rec_sse2 = bool(on)
    return _rec_sse2 and RECORD_SSE2


def record_avx(on: object = None) -> bool:
    """Whether the SSE2 rows' NaN check takes four rows at a time in AVX (``on``: switch it, for
    tests); False where the CPU has no AVX."""
    global _rec_avx
    if on is not None:
        _rec_avx = bool(on)
    return _rec_avx and RECORD_AVX_C
