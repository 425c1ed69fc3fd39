# Included by _closing.pyx (one module), before _closing_learn.pxi: _seasonal_row of two learning
# rows at once in SSE2 registers (_learn_rows takes it for each pair of neighbouring learning
# rows). Lane by lane these are _seasonal_row's IEEE operations in its order - the noise model,
# the level, the weekday ratio, the two profile slots, the share - float64 where it computes in
# float64 and float32 where in float32 (its float32 counts, 1 / w), with numpy's NaN rules for
# minimum, maximum and clip as bit selections. What a row computes only under a condition (warm,
# a finite positive parent) is computed for both lanes and kept where the condition holds, so a
# row's stored bits are the scalar ones (tests/core/test_closing_kernel_learn_pair.py holds the
# two to each other). Without SSE2 (not x86-64) spd_seasonal_pair returns 0 and the rows go one
# by one.

cdef extern from *:
    """
    typedef struct {  /* _Seasonal of _closing_learn.pxi: one window's learning parameters */
        double floor, clip_sd2, phi_max, alpha_max, a_level, a_slot, w_lo, w_hi;
        float a_phi, a_share, a_dow;
        signed char floor_src;
        Py_ssize_t lo, hi, d;
    } spd_sparams;

    typedef struct {  /* each a column: row r at [r] */
        double *prof_lo, *prof_hi, *dow_num, *dow_den, *level, *share;
        float *pw_lo, *pw_hi, *dow_w, *level_n, *phi, *alpha, *disp_n, *share_w;
    } spd_scols;

    #if defined(__SSE2__)
    #include <emmintrin.h>
    #define SPD_PAIR_SSE2 1

    static inline void spd_slot2(__m128d y, double part, __m128d wt, double a_slot, double* prof, float* prof_w) {
        __m128d pw = _mm_add_pd(_mm_cvtps_pd(spd_load2f(prof_w)), _mm_mul_pd(_mm_set1_pd(part), wt));
        __m128d a = _mm_mul_pd(_mm_mul_pd(_mm_set1_pd(part), spd_max(_mm_div_pd(_mm_set1_pd(1.0),
                               spd_max(pw, _mm_set1_pd(1e-9))), _mm_set1_pd(a_slot))), wt);
        __m128d pr = _mm_loadu_pd(prof);
        _mm_storeu_pd(prof, _mm_add_pd(pr, _mm_mul_pd(a, _mm_sub_pd(y, pr))));
        spd_store2f(prof_w, _mm_cvtpd_ps(spd_min(pw, _mm_set1_pd(1e6))));
    }

    /* rows r, r + 1 (xs, means, tods, factors: at row r of their arrays; po, wt: the parent's
       reports and the weight of each; trusted, warm, share: each row's conditions). 1: learned */
    static int spd_seasonal_pair(const spd_sparams* p, const spd_scols* c, Py_ssize_t r, const double* xs,
                                 const double* means, const double* tods, const double* factors, double po0,
                                 double po1, double wt0, double wt1, int trusted0, int trusted1, int warm0,
                                 int warm1, int share0, int share1) {
        const __m128d one = _mm_set1_pd(1.0);
        const __m128d x = _mm_loadu_pd(xs), mean = _mm_loadu_pd(means), tod = _mm_loadu_pd(tods);
        const __m128d factor = _mm_loadu_pd(factors), po = _mm_set_pd(po1, po0), wt = _mm_set_pd(wt1, wt0);
        const __m128 onef = _mm_set1_ps(1.0f), e6f = _mm_set1_ps(1e6f);
        /* the noise model */
        __m128d mu = spd_max(mean, _mm_set1_pd(p->floor));
        __m128 phf = spd_load2f(c->phi + r), alf = spd_load2f(c->alpha + r);
        __m128d ph = _mm_cvtps_pd(phf), al = _mm_cvtps_pd(alf), dx = _mm_sub_pd(x, mu);
        __m128d mu2 = _mm_mul_pd(mu, mu);
        __m128d var = _mm_add_pd(_mm_mul_pd(ph, mu), _mm_mul_pd(_mm_mul_pd(al, mu), mu));
        __m128d extra = _mm_sub_pd(spd_min(_mm_mul_pd(dx, dx), _mm_mul_pd(_mm_set1_pd(p->clip_sd2), var)), mu);
        __m128d part_phi = _mm_mul_pd(spd_max(_mm_sub_pd(ph, one), _mm_set1_pd(0.1)), mu);
        __m128d part_alpha = _mm_mul_pd(_mm_mul_pd(spd_max(al, _mm_set1_pd(0.002)), mu), mu);
        __m128d share = _mm_div_pd(part_alpha, _mm_add_pd(part_phi, part_alpha));
        __m128d phi_obs = _mm_add_pd(one, _mm_div_pd(_mm_mul_pd(extra, _mm_sub_pd(one, share)), mu));
        __m128d alpha_obs = _mm_div_pd(_mm_mul_pd(extra, share), mu2);
        __m128 tr = spd_mask2f(trusted0, trusted1);
        __m128 n = _mm_add_ps(spd_load2f(c->disp_n + r), _mm_and_ps(tr, onef));
        __m128d a = _mm_and_pd(spd_mask2(trusted0, trusted1),
                               _mm_cvtps_pd(spd_maxf(_mm_div_ps(onef, spd_maxf(n, onef)), _mm_set1_ps(p->a_phi))));
        spd_store2f(c->phi + r, _mm_cvtpd_ps(spd_clip(_mm_add_pd(ph, _mm_mul_pd(a, _mm_sub_pd(phi_obs, ph))), one,
                                                      _mm_set1_pd(p->phi_max))));
        spd_store2f(c->alpha + r, _mm_cvtpd_ps(spd_clip(_mm_add_pd(al, _mm_mul_pd(a, _mm_sub_pd(alpha_obs, al))),
                                                        _mm_setzero_pd(), _mm_set1_pd(p->alpha_max))));
        spd_store2f(c->disp_n + r, spd_minf(n, e6f));
        /* the level */
        __m128d ln = _mm_add_pd(_mm_cvtps_pd(spd_load2f(c->level_n + r)), wt);
        a = _mm_mul_pd(spd_max(_mm_div_pd(one, spd_max(ln, one)), _mm_set1_pd(p->a_level)), wt);
        __m128d lv = _mm_loadu_pd(c->level + r);
        _mm_storeu_pd(c->level + r, _mm_add_pd(lv, _mm_mul_pd(a, _mm_sub_pd(x, lv))));
        spd_store2f(c->level_n + r, _mm_cvtpd_ps(spd_min(ln, _mm_set1_pd(1e6))));
        /* the weekday ratio, where warm */
        if (warm0 || warm1) {
            __m128d wm = spd_mask2(warm0, warm1);
            __m128 wmf = spd_mask2f(warm0, warm1);
            __m128 w0 = spd_load2f(c->dow_w + r);
            __m128 w = _mm_add_ps(w0, onef);
            a = _mm_mul_pd(_mm_cvtps_pd(spd_maxf(_mm_div_ps(onef, w), _mm_set1_ps(p->a_dow))), wt);
            __m128d num = _mm_loadu_pd(c->dow_num + r), den = _mm_loadu_pd(c->dow_den + r);
            _mm_storeu_pd(c->dow_num + r, spd_sel(wm, _mm_add_pd(num, _mm_mul_pd(a, _mm_sub_pd(x, num))), num));
            _mm_storeu_pd(c->dow_den + r, spd_sel(wm, _mm_add_pd(den, _mm_mul_pd(a, _mm_sub_pd(tod, den))), den));
            spd_store2f(c->dow_w + r, spd_self(wmf, spd_minf(w, e6f), w0));
        }
        /* the two profile slots */
        if (p->w_lo > 0.0)
            spd_slot2(_mm_div_pd(x, factor), p->w_lo, wt, p->a_slot, c->prof_lo + r, c->pw_lo + r);
        if (p->w_hi > 0.0)
            spd_slot2(_mm_div_pd(x, factor), p->w_hi, wt, p->a_slot, c->prof_hi + r, c->pw_hi + r);
        /* the share, where the parent's reports are finite and positive */
        if (share0 || share1) {
            __m128d sm = spd_mask2(share0, share1);
            __m128 smf = spd_mask2f(share0, share1);
            __m128 w0 = spd_load2f(c->share_w + r);
            __m128 w = _mm_add_ps(w0, onef);
            a = _mm_mul_pd(_mm_cvtps_pd(spd_maxf(_mm_div_ps(onef, w), _mm_set1_ps(p->a_share))), wt);
            __m128d sh = _mm_loadu_pd(c->share + r);
            _mm_storeu_pd(c->share + r, spd_sel(sm, _mm_add_pd(sh, _mm_mul_pd(a, _mm_sub_pd(_mm_div_pd(x, po), sh))), sh));
            spd_store2f(c->share_w + r, spd_self(smf, spd_minf(w, e6f), w0));
        }
        return 1;
    }
    #else
    #define SPD_PAIR_SSE2 0
    static int spd_seasonal_pair(const spd_sparams* p, const spd_scols* c, Py_ssize_t r, const double* xs,
                                 const double* means, const double* tods, const double* factors, double po0,
                                 double po1, double wt0, double wt1, int trusted0, int trusted1, int warm0,
                                 int warm1, int share0, int share1) {
        return 0;
    }
    #endif
    """
    ctypedef struct spd_sparams:
        double floor, clip_sd2, phi_max, alpha_max, a_level, a_slot, w_lo, w_hi
        float a_phi, a_share, a_dow
        signed char floor_src
        Py_ssize_t lo, hi, d
    ctypedef struct spd_scols:
        double *prof_lo
        double *prof_hi
        double *dow_num
        double *dow_den
        double *level
        double *share
        float *pw_lo
        float *pw_hi
        float *dow_w
        float *level_n
        float *phi
        float *alpha
        float *disp_n
        float *share_w
    int spd_seasonal_pair(const spd_sparams* p, const spd_scols* c, Py_ssize_t r, const double* xs,
                          const double* means, const double* tods, const double* factors, double po0, double po1,
                          double wt0, double wt1, int trusted0, int trusted1, int warm0, int warm1, int share0,
                          int share1) noexcept nogil
    int SPD_PAIR_SSE2


LEARN_PAIR_SSE2 = bool(SPD_PAIR_SSE2)
cdef bint _pair_sse2 = True


def learn_pair_sse2(on: object = None) -> bool:
    """Whether the seasonal learn takes two rows at a time in SSE2 (``on``: switch it, for tests
    that hold it to the row-by-row loop); False where there is no SSE2."""
    global _pair_sse2
    if on is not None:
        _pair_sse2 = bool(on)
    return _pair_sse2 and LEARN_PAIR_SSE2
