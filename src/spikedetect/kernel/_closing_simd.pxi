# Included by _closing.pyx (one module), before the kernels that use them: the SSE2 helpers they share
# (_closing_cal_row.pxi, _closing_learn_pair.pxi, _closing_record_rows.pxi, _closing_trimmed_pair.pxi).
# numpy's NaN rules as bit selections, lane by lane what _np_max, _np_min, _np_maxf, _np_minf and
# _np_clip do for one value: maximum(x, y) is x where x is NaN or x > y, else y (so a tie gives y);
# minimum likewise with x < y; clip keeps NaN and, on a tie, x. Two float32 values move as one
# 64-bit load or store through __m128i (a type that may alias). spd_max1 is _np_max for their C
# scalar tails; the rest exists only with SSE2.

cdef extern from *:
    """
    static inline double spd_max1(double x, double y) { return (x != x || x > y) ? x : y; }

    #if defined(__SSE2__)
    #include <emmintrin.h>

    static inline __m128d spd_sel(__m128d m, __m128d a, __m128d b) {  /* a where m, else b */
        return _mm_or_pd(_mm_and_pd(m, a), _mm_andnot_pd(m, b));
    }
    static inline __m128 spd_self(__m128 m, __m128 a, __m128 b) {
        return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b));
    }
    static inline __m128d spd_max(__m128d x, __m128d y) {  /* x when NaN or x > y, else y */
        return spd_sel(_mm_or_pd(_mm_cmpunord_pd(x, x), _mm_cmpgt_pd(x, y)), x, y);
    }
    static inline __m128d spd_min(__m128d x, __m128d y) {
        return spd_sel(_mm_or_pd(_mm_cmpunord_pd(x, x), _mm_cmplt_pd(x, y)), x, y);
    }
    static inline __m128 spd_maxf(__m128 x, __m128 y) {
        return spd_self(_mm_or_ps(_mm_cmpunord_ps(x, x), _mm_cmpgt_ps(x, y)), x, y);
    }
    static inline __m128 spd_minf(__m128 x, __m128 y) {
        return spd_self(_mm_or_ps(_mm_cmpunord_ps(x, x), _mm_cmplt_ps(x, y)), x, y);
    }
    static inline __m128d spd_clip(__m128d x, __m128d lo, __m128d hi) {  /* NaN kept, ties keep x */
        x = spd_sel(_mm_cmplt_pd(x, lo), lo, x);
        return spd_sel(_mm_cmpgt_pd(x, hi), hi, x);
    }
    static inline __m128 spd_load2f(const float* p) {
        return _mm_castsi128_ps(_mm_loadl_epi64((const __m128i*)p));
    }
    static inline void spd_store2f(float* p, __m128 v) {
        _mm_storel_epi64((__m128i*)p, _mm_castps_si128(v));
    }
    static inline __m128d spd_mask2(int a, int b) {  /* lane 0 from a, lane 1 from b */
        return _mm_castsi128_pd(_mm_set_epi64x(-(long long)(b != 0), -(long long)(a != 0)));
    }
    static inline __m128 spd_mask2f(int a, int b) {
        return _mm_castsi128_ps(_mm_set_epi32(0, 0, -(int)(b != 0), -(int)(a != 0)));
    }
    #endif
    """
    double spd_max1(double x, double y) noexcept nogil
