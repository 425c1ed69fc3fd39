# Included by _closing.pyx (one module): each key's signal and reported score from one closed
# window's calibrated scores - ``window_scores.give_signals`` (``IncidentPolicy.signals``,
# ``_horizon_signals`` and ``keep_open_horizon``) and the muting of ``score_window``, row by row
# with the same comparisons, the same arithmetic and numpy's max rules.

cdef struct _Rule:
    double min_excess, ratio1, half_excess, close, open2, open, extreme, extreme_ratio, extreme_ratio2
    double sharp_ratio, keep_expected, keep_excess
    signed char calm, elevated, anomalous, most


cdef _Rule _rule(tuple p):
    """(min_excess, 1 + min_excess_ratio, 0.5 * min_excess, close_threshold, 2 * open_threshold,
    open_threshold, extreme_threshold, extreme_ratio, 2 * extreme_ratio, sustained_sharp_ratio,
    KEEP_OPEN_EXPECTED, KEEP_OPEN_EXCESS * min_excess, CALM, ELEVATED, ANOMALOUS, EXTREME)."""
    cdef _Rule c
    (c.min_excess, c.ratio1, c.half_excess, c.close, c.open2, c.open, c.extreme, c.extreme_ratio,
     c.extreme_ratio2, c.sharp_ratio, c.keep_expected, c.keep_excess, c.calm, c.elevated, c.anomalous, c.most) = p
    return c


cdef inline signed char _one_window(double x, double e, double s, _Rule* c, bint last) noexcept nogil:
    """``signals``' one-window rule without (``last`` False) or with its final EXTREME step."""
    cdef double excess = x - e
    cdef bint big = excess >= c.min_excess and x >= e * c.ratio1
    cdef bint sharp
    if last:
        sharp = (s >= c.open2 and x >= e * c.extreme_ratio) or (s >= c.open and x >= e * c.extreme_ratio2)
        return c.most if big and (s >= c.extreme or sharp) else -1
    if big and s >= c.open:
        return c.anomalous
    if excess < c.half_excess:
        return c.calm
    return c.elevated if s >= c.close else c.calm


cdef inline Py_ssize_t _keep(const double[:, :, ::1] hz, Py_ssize_t j, double rate, const double[::1] windows,
                             _Rule* c) noexcept nogil:
    """``keep_open_horizon`` for candidate ``j``: the first horizon expecting enough, or over
    which the excess rate adds up to enough; the last when none does."""
    cdef Py_ssize_t h, nh = windows.shape[0]
    for h in range(nh):
        if hz[4, h, j] >= c.keep_expected or rate * windows[h] >= c.keep_excess:
            return h
    return nh - 1


cdef inline signed char _horizons(signed char part, const double[:, :, ::1] hz, const double[:, ::1] cal,
                                  Py_ssize_t j, Py_ssize_t r, bint free, Py_ssize_t keep,
                                  const unsigned char[::1] sharp_rows, _Rule* c, double* best) noexcept nogil:
    """``_horizon_signals`` for candidate ``j`` (row ``r``, signal so far ``part``); ``best``: the
    score the row reports over the horizons (its keep horizon's when not ``free``)."""
    cdef Py_ssize_t h
    cdef double exc, ratio, s
    cdef bint big, opened, anom = False, sharp = False, elev_any = False, elev_keep = False, raised
    for h in range(hz.shape[1]):
        exc = hz[0, h, j] - hz[1, h, j]
        ratio = hz[0, h, j] / hz[2, h, j]
        s = cal[h + 1, r]
        big = exc >= c.min_excess and ratio >= c.ratio1
        opened = big and s >= c.open
        anom = anom or opened
        sharp = sharp or (sharp_rows[h] and opened and ratio >= c.sharp_ratio)
        raised = s >= c.close and exc >= c.half_excess
        elev_any = elev_any or raised
        elev_keep = raised if h == keep else elev_keep
        best[0] = s if h == 0 else _np_max(best[0], s)
    if not free:
        best[0] = cal[keep + 1, r]
    if (elev_any if free else elev_keep) and part < c.elevated:
        part = c.elevated
    if anom and free and part < c.anomalous:
        part = c.anomalous
    return c.most if sharp and free else part


def window_signals(const double[::1] observed, const double[::1] expected, const double[:, ::1] cal,
                   const Py_ssize_t[::1] cand, const double[:, :, ::1] hz, const unsigned char[::1] tracked,
                   const double[::1] rates, const double[::1] windows, const unsigned char[::1] sharp_rows,
                   tuple params, signed char[::1] sig, double[::1] score) -> None:
    """``give_signals`` into ``sig`` and ``score`` (n rows): ``cal`` the calibrated scores (H, n);
    ``cand`` the candidate rows and ``hz`` their sums as ``horizon_trimmed`` gives them, ``rates`` their excess rates; ``windows`` the horizons >
    1 as floats, ``sharp_rows`` those long enough for the sustained-sharp rule."""
    cdef _Rule c = _rule(params)
    cdef Py_ssize_t j, n = observed.shape[0], k = cand.shape[0]
    if (expected.shape[0] < n or cal.shape[1] < n or tracked.shape[0] < n or sig.shape[0] < n or score.shape[0] < n
            or hz.shape[2] < k or rates.shape[0] < k or hz.shape[0] != 5 or cal.shape[0] < hz.shape[1] + 1
            or windows.shape[0] != hz.shape[1] or sharp_rows.shape[0] != hz.shape[1] or hz.shape[1] < 1):
        raise ValueError("the arrays do not fit")
    for j in range(k):
        if not 0 <= cand[j] < n:
            raise IndexError(f"row {cand[j]} is out of bounds for {n} rows")
    with nogil:
        _signal_rows(observed, expected, cal, cand, hz, tracked, rates, windows, sharp_rows, &c, sig, score, n)


cdef inline void _signal_rows(const double[::1] observed, const double[::1] expected, const double[:, ::1] cal,
                              const Py_ssize_t[::1] cand, const double[:, :, ::1] hz, const unsigned char[::1] tracked,
                              const double[::1] rates, const double[::1] windows, const unsigned char[::1] sharp_rows,
                              _Rule* c, signed char[::1] sig, double[::1] score, Py_ssize_t n) noexcept nogil:
    """:func:`window_signals`' loops (arrays checked by the caller); shared with the fused path."""
    cdef Py_ssize_t i, j, r
    cdef signed char last
    cdef double best = 0.0
    for i in range(n):
        sig[i] = _one_window(observed[i], expected[i], cal[0, i], c, False)
        score[i] = cal[0, i]
    for j in range(cand.shape[0]):
        r = cand[j]
        sig[r] = _horizons(sig[r], hz, cal, j, r, not tracked[r], _keep(hz, j, rates[j], windows, c),
                           sharp_rows, c, &best)
        score[r] = _np_max(score[r], best)
    for i in range(n):
        last = _one_window(observed[i], expected[i], cal[0, i], c, True)
        if last >= 0:
            sig[i] = last


def mute(signed char[::1] sig, const signed char[::1] source, const long long[::1] mute_until, long long ws,
         signed char floor, signed char anomalous, signed char elevated, unsigned char[::1] muted) -> None:
    """``score_window``'s muting: rows with a floor baseline or relearning until after ``ws`` are
    ``muted``, and their signals at ``anomalous`` or above become ``elevated``."""
    cdef Py_ssize_t n = sig.shape[0]
    if source.shape[0] < n or mute_until.shape[0] < n or muted.shape[0] < n:
        raise ValueError("the arrays do not fit")
    with nogil:
        _mute_rows(sig, source, mute_until, ws, floor, anomalous, elevated, muted, n)


cdef inline void _mute_rows(signed char[::1] sig, const signed char[::1] source, const long long[::1] mute_until,
                            long long ws, signed char floor, signed char anomalous, signed char elevated,
                            unsigned char[::1] muted, Py_ssize_t n) noexcept nogil:
    """:func:`mute`'s loop (arrays checked by the caller); shared with the fused path."""
    cdef Py_ssize_t i
    for i in range(n):
        muted[i] = source[i] == floor or mute_until[i] > ws
        if muted[i] and sig[i] >= anomalous:
            sig[i] = elevated
