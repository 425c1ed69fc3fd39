# Included by _closing.pyx (one module): one window of the composition detector
# (CompositionDetector.close_window's score_tails, _opening, forget_evidence and ShareBank.learn),
# bit-identical to their numpy code, in two passes around the numpy calls left: the one log_sf
# call of the tails (negbin.nb_tails) and the learning's exp. Scratch, float64 ``f`` (m rows, k
# columns, cells = 3 m k): n | -n / LEARN_REPORTS | its exp | weight | counts, means of the tails'
# candidates | raw | score (m k); uint8 ``b``: used | qual | shifting (m k each); intp ``idx``: the
# candidates' raw positions (cells), then the rows that step (m).

cdef extern from "math.h":
    bint signbit(double x) nogil


cdef struct _Back:
    double p_floor, ln10, open_s, close_s, min_ex, min_ratio, close_ratio, rise, half_ex, warm, strong, max_rate


cdef class CompositionArrays(HeldViews):
    """The arrays a composition window works on - the share bank's ``shares``, ``acc``,
    ``learned`` and ``hits`` and the scratch ``f``, ``b``, ``idx``, ``tail`` (given to
    :meth:`hold` each window; a :class:`HeldViews`: viewed again only when one of them was
    replaced) - with the constants of both passes, taken once rather than every call.
    ``front``: (P_FLOOR, DECAY short, DECAY long, ln CUSUM_RATIO, CUSUM_RATIO - 1, LEARN_REPORTS);
    ``back``: (P_FLOOR, ln 10, OPEN_SCORE, CLOSE_SCORE, MIN_EXCESS, MIN_RATIO, CLOSE_RATIO,
    MIN_SHARE_RISE, MIN_EXCESS / 2, WARM_REPORTS, 2 OPEN_SCORE, MAX_RATE)."""
    cdef double[:, ::1] shares
    cdef double[:, :, ::1] acc
    cdef double[::1] learned
    cdef long long[::1] hits
    cdef double[::1] f
    cdef unsigned char[::1] b
    cdef Py_ssize_t[::1] idx
    cdef double[:, ::1] tail
    cdef double p_floor, d0, d1, lnr, cr1, learn_reports
    cdef _Back back

    def __init__(self, tuple front, tuple back):
        self.p_floor, self.d0, self.d1, self.lnr, self.cr1, self.learn_reports = front
        (self.back.p_floor, self.back.ln10, self.back.open_s, self.back.close_s, self.back.min_ex,
         self.back.min_ratio, self.back.close_ratio, self.back.rise, self.back.half_ex, self.back.warm,
         self.back.strong, self.back.max_rate) = back

    def take(self, tuple arrays) -> None:
        """View ``arrays``: (shares, acc, learned, hits, f, b, idx, tail)."""
        self.hold(arrays)

    cdef int build(self, tuple objs) except -1:
        self.shares, self.acc, self.learned, self.hits, self.f, self.b, self.idx, self.tail = objs
        if self.acc.shape[0] != self.shares.shape[0] or self.acc.shape[1] != self.shares.shape[1] \
                or self.acc.shape[2] != 5 or self.learned.shape[0] != self.shares.shape[0] \
                or self.hits.shape[0] != self.shares.shape[0] or self.tail.shape[0] != 1:
            raise ValueError("CompositionArrays: the arrays do not fit")
        return 0


cdef inline void _horizon(Py_ssize_t h, Py_ssize_t r, Py_ssize_t c, double nr, double p,
                          const double[:, ::1] x, const double[:, :, ::1] acc,
                          double* obs, double* mean, double* total) noexcept nogil:
    """Horizon ``h``'s count, expectation and total of one cell (after the sums moved):
    (x, n p, n * 1.0), (S, E, E / p) short, (S, E, E / p) long."""
    if h == 0:
        obs[0] = x[r, c]
        mean[0] = nr * p
        total[0] = nr * 1.0
    else:
        obs[0] = acc[r, c, 2 * h - 2]
        mean[0] = acc[r, c, 2 * h - 1]
        total[0] = mean[0] / p


cdef bint _whole_sums(const double[:, ::1] x, double* n) noexcept nogil:
    """Each row's sum into ``n`` when every count is a whole number of at least +0.0 and every
    sum is below 2**53 (then every partial sum is exact: numpy's ``x.sum(axis=1)`` in any order);
    False (``n`` partly written) otherwise."""
    cdef Py_ssize_t r, c
    cdef double s, v
    for r in range(x.shape[0]):
        s = 0.0
        for c in range(x.shape[1]):
            v = x[r, c]
            if not (v >= 0.0 and v < 9007199254740992.0 and v == ceil(v)) or signbit(v):
                return False
            s = s + v
        if not s < 9007199254740992.0:
            return False
        n[r] = s
    return True


cdef Py_ssize_t _front_rows(const double[:, ::1] x, const double[:, ::1] shares, double[:, :, ::1] acc,
                            Py_ssize_t m, Py_ssize_t k, double p_floor, double d0, double d1, double lnr, double cr1,
                            double learn_reports, double* f, Py_ssize_t* idx) noexcept nogil:
    """:func:`composition_front` once the totals are in ``f``, in one pass over the cells: each
    horizon's candidates gathered in its own third of the outputs, then put end to end (the
    order of ``poisson_scores``: horizon, row, column). Returns how many."""
    cdef Py_ssize_t mk = m * k, cells = 3 * mk, r, c, h, i, at, got[3]
    cdef double p, e1, xv, o, mu, tot
    cdef double* n = f
    cdef double* obs = f + 4 * m
    cdef double* mean = f + 4 * m + cells
    got[0] = got[1] = got[2] = 0
    for r in range(m):
        f[m + r] = -n[r] / learn_reports
        for c in range(k):
            p = _np_max(shares[r, c], p_floor)
            e1 = n[r] * p
            xv = x[r, c]
            acc[r, c, 0] = d0 * acc[r, c, 0] + xv
            acc[r, c, 1] = d0 * acc[r, c, 1] + e1
            acc[r, c, 2] = d1 * acc[r, c, 2] + xv
            acc[r, c, 3] = d1 * acc[r, c, 3] + e1
            acc[r, c, 4] = _np_max(0.0, acc[r, c, 4] + xv * lnr - e1 * cr1)
            if not (shares[r, c] > 0.0 or xv > 0.0):
                continue
            for h in range(3):
                _horizon(h, r, c, n[r], p, x, acc, &o, &mu, &tot)
                if o >= mu + 1.5 and o >= 1.2 * mu:
                    at = h * mk + got[h]
                    idx[at] = (h * m + r) * k + c
                    obs[at] = o
                    mean[at] = mu
                    got[h] += 1
    at = got[0]
    for h in range(1, 3):
        for i in range(got[h]):
            idx[at + i] = idx[h * mk + i]
            obs[at + i] = obs[h * mk + i]
            mean[at + i] = mean[h * mk + i]
        at += got[h]
    return at


def composition_front(CompositionArrays a not None, const double[:, ::1] x, bint given_n) -> Py_ssize_t:
    """The first pass over the ``m`` rows (``x``: (m, k)): each row's total into ``a.f`` (or, with
    ``given_n``, the one numpy put there), ``-n / LEARN_REPORTS``, ``move_sums`` on ``a.acc`` (in
    place) and the candidates of ``poisson_scores`` in its order (raw position, count, mean).
    Returns how many, or -1 - nothing moved - when a total is not surely numpy's (not every count
    whole: numpy's sum is to be given)."""
    return _composition_front(a, x, given_n, "composition_front")


cdef Py_ssize_t _composition_front(CompositionArrays a, const double[:, ::1] x, bint given_n, str caller) except -2:
    """:func:`composition_front` (also the start of ``composition_window``); ``caller`` names
    it in the error."""
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], cells = 3 * m * k, got
    a.viewing()
    if a.shares.shape[0] < m or a.shares.shape[1] < k or a.f.shape[0] < 4 * m + 3 * cells + m * k \
            or a.idx.shape[0] < cells + m:
        raise ValueError(f"{caller}: the arrays do not fit")
    if m == 0:
        return 0
    with nogil:
        if given_n or _whole_sums(x, &a.f[0]):
            got = _front_rows(x, a.shares, a.acc, m, k, a.p_floor, a.d0, a.d1, a.lnr, a.cr1, a.learn_reports,
                              &a.f[0], &a.idx[0])
        else:
            got = -1
    return got


cdef void _score_row(Py_ssize_t r, Py_ssize_t m, Py_ssize_t k, const double[:, ::1] x, const double[:, ::1] shares,
                     const double[:, :, ::1] acc, const double* n, const double* raw, double* score,
                     unsigned char* used, unsigned char* qual, unsigned char* shifting, _Back* c_) noexcept nogil:
    """``score_tails``' scores and flags of row ``r`` (numpy's order), at ``r * k`` in each output."""
    cdef Py_ssize_t c, h, at
    cdef double p, o, mu, tot, rw, best, ex, cus
    cdef bint hq, lq, sh, sr, u
    for c in range(k):
        at = r * k + c
        p = _np_max(shares[r, c], c_.p_floor)
        u = shares[r, c] > 0.0 or x[r, c] > 0.0
        hq = lq = sh = False
        best = 0.0
        for h in range(3):
            _horizon(h, r, c, n[r], p, x, acc, &o, &mu, &tot)
            rw = raw[(h * m + r) * k + c]
            best = rw if h == 0 else _np_max(best, rw)
            ex = o - mu
            sr = ex >= c_.rise * _np_max(tot, 1e-9)
            if rw >= c_.open_s and ex >= c_.min_ex and o >= c_.min_ratio * mu and sr:
                hq = True
            if h > 0 and ex >= c_.min_ex and o >= c_.close_ratio * mu and sr:
                lq = True
            if rw >= c_.close_s and o >= c_.close_ratio * mu and ex >= c_.half_ex:
                sh = True
        cus = acc[r, c, 4] / c_.ln10
        used[at] = u
        score[at] = best * (1.0 if u else 0.0)
        qual[at] = (hq or (cus >= c_.open_s and lq)) and u
        shifting[at] = sh or cus >= c_.close_s


cdef void _share_learn_rows(const double[:, ::1] x, double[:, :] shares, double[::1] learned, Py_ssize_t m,
                            Py_ssize_t k, const double* n, const double* e, const double* weight, double warm_reports,
                            double max_rate) noexcept nogil:
    """``ShareBank.learn`` once some weight is > 0, every row as numpy does: per row ``nn`` (n, or
    1 where the weight is 0), the rate (a cold row averages, a warm one ``min(max_rate, 1 - e) *
    weight``; ``e`` is numpy's ``exp(-n / LEARN_REPORTS)``, used only where the weight is > 0), the
    shares moved towards ``x / nn`` and ``learned`` grown, capped at 1e9."""
    cdef Py_ssize_t r, c
    cdef double nn, rate, s
    cdef bint sel
    for r in range(m):
        sel = weight[r] > 0.0
        nn = n[r] if sel else 1.0
        if learned[r] < warm_reports:
            rate = nn / (learned[r] + nn)
        else:
            rate = _np_min(max_rate, 1.0 - e[r]) * weight[r]
        if not sel:
            rate = 0.0
        for c in range(k):
            s = shares[r, c]
            shares[r, c] = s + rate * (x[r, c] / nn - s)
        learned[r] = _np_min(learned[r] + n[r] * weight[r], 1e9)


cdef void _forget_learn(const double[:, ::1] x, double[:, ::1] shares, double[:, :, ::1] acc, double[::1] learned,
                        const unsigned char[::1] held, Py_ssize_t m, Py_ssize_t k, const double* n, const double* e,
                        const double* weight, bint learning, _Back* c_) noexcept nogil:
    """The end of a window where no member steps: ``forget_evidence`` of the blocked rows, then
    ``ShareBank.learn`` (``composition_learn``: every row, as numpy does) when some row learns."""
    cdef Py_ssize_t r, c
    for r in range(m):
        if held[r] & 1:
            for c in range(k):
                acc[r, c, 0] = acc[r, c, 1]
                acc[r, c, 2] = acc[r, c, 3]
                acc[r, c, 4] = 0.0
    if learning:
        _share_learn_rows(x, shares, learned, m, k, n, e, weight, c_.warm, c_.max_rate)


def composition_back(CompositionArrays a not None, const double[:, ::1] x, const unsigned char[::1] held,
                     Py_ssize_t got) -> Py_ssize_t:
    """The second pass, once ``a.tail`` holds the candidates' ``log_sf`` and ``a.f`` the exp: per
    row the scores and flags (``-tail / ln 10`` at the candidates, 0 elsewhere), ``_opening``
    (``hits`` counted in place) and the learning weight. The rows that step - an open member
    (``held`` bit 2) or one opening now - go to ``a.idx`` after the candidates; returns how many.
    When none does, the window ends here as numpy ends it: blocked rows (``held`` bit 1) forget
    their evidence and the rows learn (``ShareBank.learn``, once some weight is > 0); else the
    caller steps the rows, then does both."""
    return _composition_back(a, x, held, got)


cdef Py_ssize_t _composition_back(CompositionArrays a, const double[:, ::1] x, const unsigned char[::1] held,
                                  Py_ssize_t got) except -1:
    """:func:`composition_back` (also the end of ``composition_window``)."""
    a.viewing()  # (before the views are copied)
    cdef _Back c_ = a.back
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], cells = 3 * m * k, r, c, i, steps = 0, learning = 0
    cdef double *n
    cdef double *e
    cdef double *weight
    cdef double *raw
    cdef double *score
    cdef bint warm, qany, moved, strong, rising, opened
    cdef double[:, ::1] shares = a.shares, tail = a.tail
    cdef double[:, :, ::1] acc = a.acc
    cdef double[::1] learned = a.learned, f = a.f
    cdef long long[::1] hits = a.hits
    cdef unsigned char[::1] b = a.b
    cdef Py_ssize_t[::1] idx = a.idx
    if shares.shape[0] < m or shares.shape[1] < k or held.shape[0] != m or tail.shape[1] < got \
            or not 0 <= got <= cells or f.shape[0] < 4 * m + 3 * cells + m * k or b.shape[0] < 3 * m * k \
            or idx.shape[0] < cells + m:
        raise ValueError("composition_back: the arrays do not fit")
    for i in range(got):
        if not 0 <= idx[i] < cells:
            raise IndexError("composition_back: candidate out of range")
    if m == 0:
        return 0
    n, e, weight = &f[0], &f[2 * m], &f[3 * m]
    raw, score = &f[4 * m + 2 * cells], &f[4 * m + 3 * cells]
    with nogil:
        for i in range(cells):
            raw[i] = 0.0
        for i in range(got):
            raw[idx[i]] = -tail[0, i] / c_.ln10
        for r in range(m):
            _score_row(r, m, k, x, shares, acc, n, raw, score, &b[0], &b[m * k], &b[2 * m * k], &c_)
            warm = learned[r] >= c_.warm
            qany = moved = strong = False
            for c in range(k):
                if b[m * k + r * k + c]:
                    qany = moved = True
                    if score[r * k + c] >= c_.strong:
                        strong = True
                elif b[2 * m * k + r * k + c]:
                    moved = True
            rising = qany and warm and not held[r]
            hits[r] = hits[r] + 1 if rising else 0
            opened = rising and (hits[r] >= 2 or strong) and n[r] > 0.0
            weight[r] = 0.0 if ((moved and warm) or held[r] or n[r] <= 0.0) else 1.0
            learning += weight[r] > 0.0
            if opened or held[r] & 2:
                idx[cells + steps] = r
                steps += 1
        if steps == 0:
            _forget_learn(x, shares, acc, learned, held, m, k, n, e, weight, learning, &c_)
    return steps
