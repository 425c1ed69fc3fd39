# Included by _closing.pyx (one module), after _closing_learn_pair.pxi and before _closing_learn.pxi:
# _seasonal_row of four learning rows at once in AVX registers (_learn_rows takes it for each run
# of four neighbouring learning rows, where the CPU has AVX: _closing_avx.pxi). It is
# spd_seasonal_pair on four lanes instead of two - the same IEEE operations in the same order,
# float64 where _seasonal_row computes in float64 and float32 (four lanes of an __m128) where in
# float32, numpy's NaN rules as bit selections, and what a row computes only under a condition
# computed for all four and kept where the condition holds. The division is what the learn is
# bound by (~10 a row), and an AVX division takes four lanes in about the time SSE2 takes two.
# tests/core/test_closing_kernel_learn_pair.py holds the quads, the pairs and the row-by-row loop
# to each other.

cdef extern from *:
    """
    #if SPD_AVX
    #define SPD_QUAD_AVX 1

    SPD_AVX_FN void spq_slot4(__m256d y, double part, __m256d wt, double a_slot, double* prof, float* prof_w) {
        __m256d pw = _mm256_add_pd(spq_widen(prof_w), _mm256_mul_pd(_mm256_set1_pd(part), wt));
        __m256d a = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(part), spq_max(_mm256_div_pd(_mm256_set1_pd(1.0),
                                  spq_max(pw, _mm256_set1_pd(1e-9))), _mm256_set1_pd(a_slot))), wt);
        __m256d pr = _mm256_loadu_pd(prof);
        _mm256_storeu_pd(prof, _mm256_add_pd(pr, _mm256_mul_pd(a, _mm256_sub_pd(y, pr))));
        spq_narrow(prof_w, spq_min(pw, _mm256_set1_pd(1e6)));
    }

    /* rows r .. r + 3 (xs, means, tods, factors: at row r of their arrays; pos, wts: the parent's
       reports and the weight of each row; trusted, warm, share: each row's conditions). 1: learned */
    SPD_AVX_FN int spd_seasonal_quad(const spd_sparams* p, const spd_scols* c, Py_ssize_t r, const double* xs,
                                      const double* means, const double* tods, const double* factors,
                                      const double* pos, const double* wts, const int* trusted, const int* warm,
                                      const int* share) {
        const __m256d one = _mm256_set1_pd(1.0);
        const __m256d x = _mm256_loadu_pd(xs), mean = _mm256_loadu_pd(means), tod = _mm256_loadu_pd(tods);
        const __m256d factor = _mm256_loadu_pd(factors), po = _mm256_loadu_pd(pos), wt = _mm256_loadu_pd(wts);
        const __m128 onef = _mm_set1_ps(1.0f), e6f = _mm_set1_ps(1e6f);
        /* the noise model */
        __m256d mu = spq_max(mean, _mm256_set1_pd(p->floor));
        __m256d ph = spq_widen(c->phi + r), al = spq_widen(c->alpha + r), dx = _mm256_sub_pd(x, mu);
        __m256d mu2 = _mm256_mul_pd(mu, mu);
        __m256d var = _mm256_add_pd(_mm256_mul_pd(ph, mu), _mm256_mul_pd(_mm256_mul_pd(al, mu), mu));
        __m256d extra = _mm256_sub_pd(spq_min(_mm256_mul_pd(dx, dx), _mm256_mul_pd(_mm256_set1_pd(p->clip_sd2), var)),
                                      mu);
        __m256d part_phi = _mm256_mul_pd(spq_max(_mm256_sub_pd(ph, one), _mm256_set1_pd(0.1)), mu);
        __m256d part_alpha = _mm256_mul_pd(_mm256_mul_pd(spq_max(al, _mm256_set1_pd(0.002)), mu), mu);
        __m256d sh = _mm256_div_pd(part_alpha, _mm256_add_pd(part_phi, part_alpha));
        __m256d phi_obs = _mm256_add_pd(one, _mm256_div_pd(_mm256_mul_pd(extra, _mm256_sub_pd(one, sh)), mu));
        __m256d alpha_obs = _mm256_div_pd(_mm256_mul_pd(extra, sh), mu2);
        __m128 n = _mm_add_ps(_mm_loadu_ps(c->disp_n + r), _mm_and_ps(spq_mask4f(trusted), onef));
        __m256d a = _mm256_and_pd(spq_mask4(trusted), _mm256_cvtps_pd(spd_maxf(_mm_div_ps(onef, spd_maxf(n, onef)),
                                                                                _mm_set1_ps(p->a_phi))));
        spq_narrow(c->phi + r, spq_clip(_mm256_add_pd(ph, _mm256_mul_pd(a, _mm256_sub_pd(phi_obs, ph))), one,
                                        _mm256_set1_pd(p->phi_max)));
        spq_narrow(c->alpha + r, spq_clip(_mm256_add_pd(al, _mm256_mul_pd(a, _mm256_sub_pd(alpha_obs, al))),
                                          _mm256_setzero_pd(), _mm256_set1_pd(p->alpha_max)));
        _mm_storeu_ps(c->disp_n + r, spd_minf(n, e6f));
        /* the level */
        __m256d ln = _mm256_add_pd(spq_widen(c->level_n + r), wt);
        a = _mm256_mul_pd(spq_max(_mm256_div_pd(one, spq_max(ln, one)), _mm256_set1_pd(p->a_level)), wt);
        __m256d lv = _mm256_loadu_pd(c->level + r);
        _mm256_storeu_pd(c->level + r, _mm256_add_pd(lv, _mm256_mul_pd(a, _mm256_sub_pd(x, lv))));
        spq_narrow(c->level_n + r, spq_min(ln, _mm256_set1_pd(1e6)));
        /* the weekday ratio, where warm */
        if (warm[0] || warm[1] || warm[2] || warm[3]) {
            __m256d wm = spq_mask4(warm);
            __m128 w0 = _mm_loadu_ps(c->dow_w + r);
            __m128 w = _mm_add_ps(w0, onef);
            a = _mm256_mul_pd(_mm256_cvtps_pd(spd_maxf(_mm_div_ps(onef, w), _mm_set1_ps(p->a_dow))), wt);
            __m256d num = _mm256_loadu_pd(c->dow_num + r), den = _mm256_loadu_pd(c->dow_den + r);
            _mm256_storeu_pd(c->dow_num + r, spq_sel(wm, _mm256_add_pd(num, _mm256_mul_pd(a, _mm256_sub_pd(x, num))),
                                                     num));
            _mm256_storeu_pd(c->dow_den + r, spq_sel(wm, _mm256_add_pd(den, _mm256_mul_pd(a, _mm256_sub_pd(tod, den))),
                                                     den));
            _mm_storeu_ps(c->dow_w + r, spd_self(spq_mask4f(warm), spd_minf(w, e6f), w0));
        }
        /* the two profile slots */
        if (p->w_lo > 0.0)
            spq_slot4(_mm256_div_pd(x, factor), p->w_lo, wt, p->a_slot, c->prof_lo + r, c->pw_lo + r);
        if (p->w_hi > 0.0)
            spq_slot4(_mm256_div_pd(x, factor), p->w_hi, wt, p->a_slot, c->prof_hi + r, c->pw_hi + r);
        /* the share, where the parent's reports are finite and positive */
        if (share[0] || share[1] || share[2] || share[3]) {
            __m256d sm = spq_mask4(share);
            __m128 w0 = _mm_loadu_ps(c->share_w + r);
            __m128 w = _mm_add_ps(w0, onef);
            a = _mm256_mul_pd(_mm256_cvtps_pd(spd_maxf(_mm_div_ps(onef, w), _mm_set1_ps(p->a_share))), wt);
            __m256d s = _mm256_loadu_pd(c->share + r);
            _mm256_storeu_pd(c->share + r, spq_sel(sm, _mm256_add_pd(s, _mm256_mul_pd(a, _mm256_sub_pd(
                                                   _mm256_div_pd(x, po), s))), s));
            _mm_storeu_ps(c->share_w + r, spd_self(spq_mask4f(share), spd_minf(w, e6f), w0));
        }
        return 1;
    }
    #else
    #define SPD_QUAD_AVX 0
    static int spd_seasonal_quad(const spd_sparams* p, const spd_scols* c, Py_ssize_t r, const double* xs,
                                 const double* means, const double* tods, const double* factors, const double* pos,
                                 const double* wts, const int* trusted, const int* warm, const int* share) {
        return 0;
    }
    #endif
    """
    int spd_seasonal_quad(const spd_sparams* p, const spd_scols* c, Py_ssize_t r, const double* xs,
                          const double* means, const double* tods, const double* factors, const double* pos,
                          const double* wts, const int* trusted, const int* warm, const int* share) noexcept nogil
    int SPD_QUAD_AVX


cdef bint LEARN_QUAD_AVX_C = SPD_QUAD_AVX and _avx
LEARN_QUAD_AVX = bool(LEARN_QUAD_AVX_C)
cdef bint _quad_avx = LEARN_QUAD_AVX_C


def learn_quad_avx(on: object = None) -> bool:
    """Whether the seasonal learn takes four rows at a time in AVX (``on``: switch it, for tests
    that hold it to the pairs and the row-by-row loop); False where the CPU has no AVX."""
    global _quad_avx
    if on is not None:
        _quad_avx = bool(on)
    return _quad_avx and LEARN_QUAD_AVX_C
