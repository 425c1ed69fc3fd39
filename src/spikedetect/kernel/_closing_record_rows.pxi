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

    /* 1 when recorded, 0 when a value read is NaN (nothing written), -1 when not done here */
    static int spd_record_rows(const spd_rings* g, Py_ssize_t n, Py_ssize_t h, const double* x,
                               const double* mean, const double* own, const signed char* source,
                               const double* phi, const unsigned char* done, signed char learned, double floor,
                               Py_ssize_t pos, const Py_ssize_t* leaving) {
        Py_ssize_t r, k, j;
        const __m128d fl = _mm_set1_pd(floor);
        __m128d bad = _mm_setzero_pd();
        if (h > 8) return -1;
        for (r = 0; r < n; r++) {  /* the check: a row's x, m, v and sums */
            if (done[r]) continue;
            double m = spd_sum_mean1(mean, own, source, r, learned, floor);
            __m128d a = _mm_set_pd(m, x[r]);
            bad = _mm_or_pd(bad, _mm_cmpunord_pd(a, _mm_set_pd(m * phi[r], m * phi[r])));
            for (j = 0; j < 3; j++)
                for (k = 0; k < h; k++) {
                    __m128d s = _mm_load_sd(g->sums[j] + r * g->sst[j] + k);
                    bad = _mm_or_pd(bad, _mm_cmpunord_sd(s, s));
                }
        }
        if (_mm_movemask_pd(bad)) return 0;
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
                               Py_ssize_t pos, const Py_ssize_t* leaving) {
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
                        signed char learned, double floor, Py_ssize_t pos, const Py_ssize_t* leaving) noexcept nogil
    int SPD_REC_SSE2


RECORD_SSE2 = bool(SPD_REC_SSE2)
cdef bint _rec_sse2 = True


def record_sse2(on: object = None) -> bool:
    """Whether the evidence record takes the SSE2 rows (``on``: switch it, for tests that hold it
    to the scalar loops); False where there is no SSE2."""
    global _rec_sse2
    if on is not None:
        _rec_sse2 = bool(on)
    return _rec_sse2 and RECORD_SSE2
