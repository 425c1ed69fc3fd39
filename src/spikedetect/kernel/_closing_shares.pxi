# Included by _closing.pyx (one module): the composition detector's per-row steps after the
# tails - which keys open a member (CompositionDetector._opening), which learn with what weight
# (_learn_window) and the learning itself (ShareBank.learn, its exp taken by numpy) - each
# bit-identical to its numpy code.

def composition_open(const unsigned char[:, ::1] qual, const unsigned char[:, ::1] shifting,
                     const double[:, ::1] score, const double[::1] n, const double[::1] learned,
                     const unsigned char[::1] held, long long[::1] hits, double warm_reports, double strong_score,
                     unsigned char[::1] opened, double[::1] weight) -> None:
    """``_opening`` (``hits`` counted in place, ``opened``) and ``_learn_window``'s weights before
    members step (1, or 0 for a warm row where a category qualifies or shifts, a ``held`` row or
    one without reports); ``held``: blocked or with a member; warm: ``learned >= warm_reports``."""
    cdef Py_ssize_t m = qual.shape[0], k = qual.shape[1], r, c
    cdef bint warm, qany, moved, strong, rising
    if shifting.shape[0] != m or shifting.shape[1] != k or score.shape[0] != m or score.shape[1] != k \
            or n.shape[0] != m or learned.shape[0] != m or held.shape[0] != m or hits.shape[0] != m \
            or opened.shape[0] != m or weight.shape[0] != m:
        raise ValueError("composition_open: shapes do not match")
    with nogil:
        for r in range(m):
            warm = learned[r] >= warm_reports
            qany = moved = strong = False
            for c in range(k):
                if qual[r, c]:
                    qany = moved = True
                    if score[r, c] >= strong_score:
                        strong = True
                elif shifting[r, c]:
                    moved = True
            rising = qany and warm and not held[r]
            hits[r] = hits[r] + 1 if rising else 0
            opened[r] = rising and (hits[r] >= 2 or strong) and n[r] > 0.0
            weight[r] = 0.0 if ((moved and warm) or held[r] or n[r] <= 0.0) else 1.0


def composition_learn(const double[:, ::1] x, const double[::1] n, const double[::1] weight, const double[::1] e,
                      double[:, :] shares, double[::1] learned, double warm_reports, double max_rate) -> None:
    """``ShareBank.learn`` once some ``weight`` > 0: per row ``nn`` (n, or 1 where the weight is
    0), the rate (a cold row averages, a warm one ``min(max_rate, 1 - e) * weight``; ``e`` is
    numpy's ``exp(-nn / LEARN_REPORTS)`` of every row), the shares moved towards
    ``x / nn`` (every row, as numpy does) and ``learned`` grown, capped at 1e9."""
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], r, c
    cdef double nn, rate, s
    cdef bint sel
    if n.shape[0] != m or weight.shape[0] != m or e.shape[0] != m or shares.shape[0] != m \
            or shares.shape[1] != k or learned.shape[0] != m:
        raise ValueError("composition_learn: shapes do not match")
    with nogil:
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
