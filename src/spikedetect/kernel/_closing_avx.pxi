# Included by _closing.pyx (one module), after _closing_simd.pxi and before the kernels that use
# them: the AVX helpers of the four-row kernels (_closing_learn_quad.pxi). They are _closing_simd's
# selections on four float64 lanes (__m256d), with the same NaN rules: maximum(x, y) is x where x
# is NaN or x > y, else y; minimum likewise with x < y; clip keeps NaN and, on a tie, x. Four
# float32 values are one __m128, so their rules are _closing_simd's spd_maxf, spd_minf, spd_self.
#
# The module is built for every x86-64 (SSE2 only), so these functions carry their own target
# (__attribute__((target("avx")))) and run only where the CPU says it has AVX and the OS keeps its
# registers (__builtin_cpu_supports, checked once at import into SPD_AVX_CPU). "avx" enables no
# fused multiply-add (that is "fma"), and -ffp-contract=off holds anyway: each lane does the IEEE
# operations the scalar loop does, in its order, so the bits are the same on either path.

cdef extern from *:
    """
    #if defined(__SSE2__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    #define SPD_AVX 1
    #define SPD_AVX_FN static inline __attribute__((target("avx")))

    SPD_AVX_FN __m256d spq_sel(__m256d m, __m256d a, __m256d b) {  /* a where m, else b */
        return _mm256_or_pd(_mm256_and_pd(m, a), _mm256_andnot_pd(m, b));
    }
    SPD_AVX_FN __m256d spq_max(__m256d x, __m256d y) {  /* x when NaN or x > y, else y */
        return spq_sel(_mm256_or_pd(_mm256_cmp_pd(x, x, _CMP_UNORD_Q), _mm256_cmp_pd(x, y, _CMP_GT_OQ)), x, y);
    }
    SPD_AVX_FN __m256d spq_min(__m256d x, __m256d y) {
        return spq_sel(_mm256_or_pd(_mm256_cmp_pd(x, x, _CMP_UNORD_Q), _mm256_cmp_pd(x, y, _CMP_LT_OQ)), x, y);
    }
    SPD_AVX_FN __m256d spq_clip(__m256d x, __m256d lo, __m256d hi) {  /* NaN kept, ties keep x */
        x = spq_sel(_mm256_cmp_pd(x, lo, _CMP_LT_OQ), lo, x);
        return spq_sel(_mm256_cmp_pd(x, hi, _CMP_GT_OQ), hi, x);
    }
    SPD_AVX_FN __m256d spq_mask4(const int* f) {  /* lane i set where f[i] */
        return _mm256_castsi256_pd(_mm256_set_epi64x(-(long long)(f[3] != 0), -(long long)(f[2] != 0),
                                                     -(long long)(f[1] != 0), -(long long)(f[0] != 0)));
    }
    SPD_AVX_FN __m128 spq_mask4f(const int* f) {
        return _mm_castsi128_ps(_mm_set_epi32(-(int)(f[3] != 0), -(int)(f[2] != 0), -(int)(f[1] != 0),
                                              -(int)(f[0] != 0)));
    }
    SPD_AVX_FN __m256d spq_widen(const float* p) {  /* four float32 values as float64 */
        return _mm256_cvtps_pd(_mm_loadu_ps(p));
    }
    SPD_AVX_FN void spq_narrow(float* p, __m256d v) {  /* four float64 values rounded to float32 */
        _mm_storeu_ps(p, _mm256_cvtpd_ps(v));
    }

    static int spd_avx_cpu(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx") ? 1 : 0;
    }
    #else
    #define SPD_AVX 0
    static int spd_avx_cpu(void) { return 0; }
    #endif
    """
    int SPD_AVX
    int spd_avx_cpu() noexcept nogil


cdef bint _avx = SPD_AVX and spd_avx_cpu()
AVX = bool(_avx)  # built with the four-row kernels, and this CPU runs them
