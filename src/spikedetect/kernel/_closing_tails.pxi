# Included by _closing.pyx (one module): the composition tails of one window
# (composition.tails.score_tails), bit-identical to its numpy code. Two passes around the one
# log_sf call numpy makes: the sums move and the candidates are gathered, then scores and flags.

cdef inline void _horizon(Py_ssize_t h, Py_ssize_t r, Py_ssize_t c, double nr, double p,
                          const double[:, ::1] x, const double[:, :, :] acc,
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


def tails_move(const double[:, ::1] x, const double[::1] n, const double[:, :] shares, double[:, :, :] acc,
               tuple consts, unsigned char[:, ::1] used, double[::1] raw, double[::1] obs, double[::1] mean,
               Py_ssize_t[::1] idx) -> Py_ssize_t:
    """``score_tails``' first half: ``move_sums`` on ``acc`` (in place), ``used``, ``raw`` zeroed
    (3 m k: horizon, row, column) and the candidates of ``poisson_scores`` in its order (the
    ``raw`` index, count and mean of each) into ``idx``, ``obs``, ``mean``. Returns how many.
    ``consts``: (P_FLOOR, DECAY short, DECAY long, ln CUSUM_RATIO, CUSUM_RATIO - 1)."""
    cdef double p_floor = consts[0], d0 = consts[1], d1 = consts[2], lnr = consts[3], cr1 = consts[4]
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], r, c, h, got = 0
    cdef double p, e1, xv, o, mu, tot
    if n.shape[0] != m or shares.shape[0] != m or shares.shape[1] != k or acc.shape[0] != m \
            or acc.shape[1] != k or acc.shape[2] != 5 or used.shape[0] != m or used.shape[1] != k \
            or raw.shape[0] != 3 * m * k or obs.shape[0] < 3 * m * k or mean.shape[0] < 3 * m * k \
            or idx.shape[0] < 3 * m * k:
        raise ValueError("tails_move: shapes do not match")
    with nogil:
        for r in range(m):
            for c in range(k):
                p = _np_max(shares[r, c], p_floor)
                e1 = n[r] * p
                xv = x[r, c]
                acc[r, c, 0] = d0 * acc[r, c, 0] + xv
                acc[r, c, 1] = d0 * acc[r, c, 1] + e1
                acc[r, c, 2] = d1 * acc[r, c, 2] + xv
                acc[r, c, 3] = d1 * acc[r, c, 3] + e1
                acc[r, c, 4] = _np_max(0.0, acc[r, c, 4] + xv * lnr - e1 * cr1)
                used[r, c] = shares[r, c] > 0.0 or xv > 0.0
        for h in range(3):
            for r in range(m):
                for c in range(k):
                    raw[(h * m + r) * k + c] = 0.0
                    if not used[r, c]:
                        continue
                    _horizon(h, r, c, n[r], _np_max(shares[r, c], p_floor), x, acc, &o, &mu, &tot)
                    if o >= mu + 1.5 and o >= 1.2 * mu:
                        idx[got] = (h * m + r) * k + c
                        obs[got] = o
                        mean[got] = mu
                        got += 1
    return got


def tails_score(const double[:, ::1] x, const double[::1] n, const double[:, :] shares, const double[:, :, :] acc,
                tuple consts, const unsigned char[:, ::1] used, double[::1] raw, const Py_ssize_t[::1] idx,
                const double[::1] tail, double[:, ::1] score, unsigned char[:, ::1] qual,
                unsigned char[:, ::1] shifting) -> None:
    """``score_tails``' second half: the candidates' ``tail`` scores into ``raw`` at ``idx``, then
    per cell the best score (times used), qualifying and shifting, in numpy's order. ``consts``:
    (P_FLOOR, ln 10, OPEN_SCORE, CLOSE_SCORE, MIN_EXCESS, MIN_RATIO, CLOSE_RATIO, MIN_SHARE_RISE,
    MIN_EXCESS / 2)."""
    cdef double p_floor = consts[0], ln10 = consts[1], open_s = consts[2], close_s = consts[3]
    cdef double min_ex = consts[4], min_ratio = consts[5], close_ratio = consts[6], rise = consts[7]
    cdef double half_ex = consts[8]
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], r, c, h, i
    cdef double p, o, mu, tot, rw, best, ex, cus
    cdef bint hq, lq, sh, sr
    if n.shape[0] != m or shares.shape[0] != m or shares.shape[1] != k or acc.shape[0] != m \
            or acc.shape[1] != k or acc.shape[2] != 5 or used.shape[0] != m or used.shape[1] != k \
            or raw.shape[0] != 3 * m * k or score.shape[0] != m or score.shape[1] != k \
            or qual.shape[0] != m or qual.shape[1] != k or shifting.shape[0] != m or shifting.shape[1] != k:
        raise ValueError("tails_score: shapes do not match")
    if tail.shape[0] > idx.shape[0]:
        raise ValueError("tails_score: more tails than candidates")
    for i in range(tail.shape[0]):
        if idx[i] < 0 or idx[i] >= raw.shape[0]:
            raise IndexError("tails_score: candidate out of range")
        raw[idx[i]] = tail[i]
    with nogil:
        for r in range(m):
            for c in range(k):
                p = _np_max(shares[r, c], p_floor)
                hq = lq = sh = False
                best = 0.0
                for h in range(3):
                    _horizon(h, r, c, n[r], p, x, acc, &o, &mu, &tot)
                    rw = raw[(h * m + r) * k + c]
                    best = rw if h == 0 else _np_max(best, rw)
                    ex = o - mu
                    sr = ex >= rise * _np_max(tot, 1e-9)
                    if rw >= open_s and ex >= min_ex and o >= min_ratio * mu and sr:
                        hq = True
                    if h > 0 and ex >= min_ex and o >= close_ratio * mu and sr:
                        lq = True
                    if rw >= close_s and o >= close_ratio * mu and ex >= half_ex:
                        sh = True
                cus = acc[r, c, 4] / ln10
                score[r, c] = best * (1.0 if used[r, c] else 0.0)
                qual[r, c] = (hq or (cus >= open_s and lq)) and used[r, c]
                shifting[r, c] = sh or cus >= close_s
