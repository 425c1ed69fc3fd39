# Included by _closing.pyx (one module), before _closing_learn.pxi: one row's four calibration
# quantile steps of _calibration_learn (q99 and q999 of each of the four horizons) in SSE2
# registers - the same IEEE operations lane by lane as the scalar loop: the float32 quantile
# widened to float64, compared with the raw score (false for NaN), times the up or down factor
# in float64, rounded to float32, then clipped to [lo, hi] with NaN kept (below lo first, then
# above hi). So the bits are the scalar loop's (tests/core/test_closing_kernel_learn.py holds
# them to it and to numpy). Where the CPU has AVX (_closing_avx.pxi), spq_cal_row4 does the same
# with the four widened quantiles in one register. Without SSE2 (not x86-64), spd_cal_row4 says
# so and the scalar loop runs.

cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #define SPD_CAL_SSE2 1

    static inline __m128 spd_cal_step4(__m128 q, __m128d r01, __m128d r23, double up, double down,
                                       __m128 lo, __m128 hi) {
        const __m128d u = _mm_set1_pd(up), d = _mm_set1_pd(down);
        __m128d q01 = _mm_cvtps_pd(q), q23 = _mm_cvtps_pd(_mm_movehl_ps(q, q));
        __m128d m01 = _mm_cmpgt_pd(r01, q01), m23 = _mm_cmpgt_pd(r23, q23);
        __m128d p01 = _mm_mul_pd(q01, spd_sel(m01, u, d)), p23 = _mm_mul_pd(q23, spd_sel(m23, u, d));
        __m128 x = _mm_movelh_ps(_mm_cvtpd_ps(p01), _mm_cvtpd_ps(p23));
        x = spd_self(_mm_cmplt_ps(x, lo), lo, x);
        return spd_self(_mm_cmpgt_ps(x, hi), hi, x);
    }

    /* q, q3: the row's four float32 quantiles each; raw: its horizon-0 score, the next ones
       hstride bytes apart */
    static inline int spd_cal_row4(float* q, float* q3, const char* raw, Py_ssize_t hstride, double up,
                                   double down, double up3, double down3, float lo, float hi) {
        const __m128 l = _mm_set1_ps(lo), h = _mm_set1_ps(hi);
        __m128d r01 = _mm_set_pd(*(const double*)(raw + hstride), *(const double*)raw);
        __m128d r23 = _mm_set_pd(*(const double*)(raw + 3 * hstride), *(const double*)(raw + 2 * hstride));
        _mm_storeu_ps(q, spd_cal_step4(_mm_loadu_ps(q), r01, r23, up, down, l, h));
        _mm_storeu_ps(q3, spd_cal_step4(_mm_loadu_ps(q3), r01, r23, up3, down3, l, h));
        return 1;
    }
    #else
    #define SPD_CAL_SSE2 0
    static inline int spd_cal_row4(float* q, float* q3, const char* raw, Py_ssize_t hstride, double up,
                                   double down, double up3, double down3, float lo, float hi) {
        return 0;
    }
    #endif
    #if SPD_AVX
    #define SPD_CAL_AVX 1
    /* spd_cal_step4 with the four widened quantiles in one AVX register (where the CPU has it):
       the same operations on the same lanes */
    SPD_AVX_FN __m128 spq_cal_step4(__m128 q, __m256d r, double up, double down, __m128 lo, __m128 hi) {
        __m256d q4 = _mm256_cvtps_pd(q);
        __m256d p = _mm256_mul_pd(q4, spq_sel(_mm256_cmp_pd(r, q4, _CMP_GT_OQ), _mm256_set1_pd(up),
                                              _mm256_set1_pd(down)));
        __m128 x = _mm256_cvtpd_ps(p);
        x = spd_self(_mm_cmplt_ps(x, lo), lo, x);
        return spd_self(_mm_cmpgt_ps(x, hi), hi, x);
    }

    SPD_AVX_FN int spq_cal_row4(float* q, float* q3, const char* raw, Py_ssize_t hstride, double up,
                                double down, double up3, double down3, float lo, float hi) {
        const __m128 l = _mm_set1_ps(lo), h = _mm_set1_ps(hi);
        __m256d r = _mm256_set_pd(*(const double*)(raw + 3 * hstride), *(const double*)(raw + 2 * hstride),
                                  *(const double*)(raw + hstride), *(const double*)raw);
        _mm_storeu_ps(q, spq_cal_step4(_mm_loadu_ps(q), r, up, down, l, h));
        _mm_storeu_ps(q3, spq_cal_step4(_mm_loadu_ps(q3), r, up3, down3, l, h));
        return 1;
    }
    #else
    #define SPD_CAL_AVX 0
    static inline int spq_cal_row4(float* q, float* q3, const char* raw, Py_ssize_t hstride, double up,
                                   double down, double up3, double down3, float lo, float hi) {
        return 0;
    }
    #endif
    """
    int spd_cal_row4(float* q, float* q3, const char* raw, Py_ssize_t hstride, double up, double down,
                     double up3, double down3, float lo, float hi) noexcept nogil
    int spq_cal_row4(float* q, float* q3, const char* raw, Py_ssize_t hstride, double up, double down,
                     double up3, double down3, float lo, float hi) noexcept nogil
    int SPD_CAL_SSE2
    int SPD_CAL_AVX


CALIBRATION_SSE2 = bool(SPD_CAL_SSE2)
cdef bint _cal_sse2 = True
cdef bint CALIBRATION_AVX_C = SPD_CAL_AVX and _avx
CALIBRATION_AVX = bool(CALIBRATION_AVX_C)
cdef bint _cal_avx = CALIBRATION_AVX_C


def calibration_sse2(on: object = None) -> bool:
    """Whether the calibration step takes the SSE2 row (``on``: switch it, for tests that hold it
    to the scalar loop); False where there is no SSE2."""
    global _cal_sse2
    if on is not None:
        _cal_sse2 = bool(on)
    return _cal_sse2 and CALIBRATION_SSE2


def calibration_avx(on: object = None) -> bool:
    """Whether the calibration step's row takes AVX instead of SSE2 (``on``: switch it, for
    tests); False where the CPU has no AVX."""
    global _cal_avx
    if on is not None:
        _cal_avx = bool(on)
    return _cal_avx and CALIBRATION_AVX_C
