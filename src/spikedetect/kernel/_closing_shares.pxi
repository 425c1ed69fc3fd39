# Included by _closing.pyx (one module): the composition shares' learning (ShareBank.learn, its exp
# taken by numpy) bit-identical to its numpy code, for a window whose members step in Python
# (the other windows learn in composition_back, _closing_tails.pxi).

def composition_learn(const double[:, ::1] x, const double[::1] n, const double[::1] weight, const double[::1] e,
                      double[:, :] shares, double[::1] learned, double warm_reports, double max_rate) -> None:
    """``ShareBank.learn`` once some ``weight`` > 0: per row ``nn`` (n, or 1 where the weight is
    0), the rate (a cold row averages, a warm one ``min(max_rate, 1 - e) * weight``; ``e`` is
    numpy's ``exp(-nn / LEARN_REPORTS)`` of every row), the shares moved towards
    ``x / nn`` (every row, as numpy does) and ``learned`` grown, capped at 1e9."""
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1]
    if n.shape[0] != m or weight.shape[0] != m or e.shape[0] != m or shares.shape[0] != m \
            or shares.shape[1] != k or learned.shape[0] != m:
        raise ValueError("composition_learn: shapes do not match")
    if m == 0:
        return
    with nogil:
        _share_learn_rows(x, shares, learned, m, k, &n[0], &e[0], &weight[0], warm_reports, max_rate)
