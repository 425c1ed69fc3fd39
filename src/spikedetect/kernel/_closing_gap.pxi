# Included by _closing.pyx (one module), after _closing_sums.pxi: the services of one ingest-gap window
# (IngestGapDetector.close_window) whose steps open, grow or close no gap - the quiet ones (``_quiet``:
# only ``_learn``) and those whose silent runs start, go on or end without one turning silent
# (``_runs``, ``_step`` finding nothing, then ``_learn`` unless a run scores ELEVATED_SCORE) - the
# same steps in the same order; the others are left to the Python steps, nothing of theirs touched.

from libc.math cimport exp as _c_exp, log as _c_log

cdef enum:
    _MAX_COUNTS = 32  # "*" and the sources with a share (at most MAX_SOURCES + 1 of them)


cdef struct _GapConsts:
    double warm, learn_reports, max_rate, min_share, gap_score, elevated, min_windows, ln10
    Py_ssize_t max_sources


cdef double _source_value(object name, list names, const double* acc, const unsigned char* seen, Py_ssize_t ns):
    """The window's reports of source ``name`` (0.0 when it sent none): ``by_src.get(name, 0.0)``."""
    cdef Py_ssize_t s
    for s in range(ns):
        if seen[s] and names[s] == name:
            return acc[s]
    return 0.0


cdef inline double _zero_log_prob(double mu, double phi) noexcept nogil:
    """``ingest_gap.zero_log_prob``: ``math.log`` is libm's ``log`` (a NaN given back as it is)."""
    if phi <= 1.0001:
        return mu
    return mu * (phi if phi != phi else _c_log(phi)) / (phi - 1.0)


cdef int _gap_runs(dict runs, dict shares, list names, const double* acc, const unsigned char* seen, Py_ssize_t ns,
                   double total, double mu, double ph, bint judged, bint warm, double ws, object every,
                   _GapConsts* c_, double* top) except -1:
    """``_runs`` (the silent runs of ``"*"`` and of each source with a share moved by this window)
    and ``_step``'s look for a silent one: 1 - nothing moved - when a run turns silent (``_step``
    opens a gap) or there are too many sources; else 0, the runs moved and their ``top`` score."""
    cdef double n_[_MAX_COUNTS]
    cdef double mean_[_MAX_COUNTS]
    cdef double w_[_MAX_COUNTS]
    cdef double z_[_MAX_COUNTS]
    cdef double m_[_MAX_COUNTS]
    cdef bint live[_MAX_COUNTS]
    cdef list keys = [every]
    cdef Py_ssize_t nc = 1, i
    cdef double v
    if len(shares) + 1 > _MAX_COUNTS:
        return 1
    n_[0], mean_[0] = total, mu
    for name, share in shares.items():
        if <double>share >= c_.min_share:
            keys.append(name)
            n_[nc] = _source_value(name, names, acc, seen, ns)
            mean_[nc] = mu * <double>share
            nc += 1
    top[0] = 0.0
    for i in range(nc):  # (first without moving anything: a silent run is the Python steps')
        live[i] = not (n_[i] > 0 or not judged or (i > 0 and not warm))
        if not live[i]:
            continue
        run = runs.get(keys[i])
        if run is None:
            w_[i], z_[i], m_[i] = 0.0, 0.0, 0.0
        else:
            w_[i], z_[i], m_[i] = run[1], run[2], run[3]
        w_[i] = w_[i] + 1.0
        z_[i] = z_[i] + _zero_log_prob(mean_[i], ph)
        m_[i] = m_[i] + mean_[i]
        v = z_[i] / c_.ln10
        if v > top[0]:
            top[0] = v
        if w_[i] >= c_.min_windows and v >= c_.gap_score:
            return 1
    for i in range(nc):
        if not live[i]:
            runs.pop(keys[i], None)
            continue
        run = runs.get(keys[i])
        if run is None:
            run = runs[keys[i]] = [ws, 0.0, 0.0, 0.0]
        run[1], run[2], run[3] = w_[i], z_[i], m_[i]
    for s in [s for s in runs if s not in keys]:
        del runs[s]
    return 0


cdef int _gap_learn(object st, dict shares, list names, const double* acc, const unsigned char* seen, Py_ssize_t ns,
                    double total, double learned, _GapConsts* c_) except -1:
    """``IngestGapDetector._learn`` of a window that brought no new source."""
    cdef double rate, keep, v, y
    if learned < c_.warm:
        rate = total / (learned + total)
    else:
        y = 1 - _c_exp(-total / c_.learn_reports)
        rate = y if y < c_.max_rate else c_.max_rate
    keep = 1.0 - rate
    for name in list(shares):
        v = _source_value(name, names, acc, seen, ns)
        shares[name] = keep * <double>shares[name] + rate * v / total
    y = learned + total
    st.learned = 1e9 if 1e9 < y else y
    return 0


cdef bint _gap_quiet(dict shares, list names, const double* acc, const unsigned char* seen, Py_ssize_t ns,
                     double total, double learned, bint judged, _GapConsts* c_) except -1:
    """``_quiet`` of a service without runs and without ``"*"`` among its shares (and reports)."""
    if not judged or learned < c_.warm:
        return True
    for name, share in shares.items():
        if share >= c_.min_share and not _source_value(name, names, acc, seen, ns) > 0:
            return False
    return True


def gap_quiet_learn(list order, dict states, object index, object whole, const double[::1] observed,
                    const double[:] expected, const double[:] phi, const unsigned char[::1] judged,
                    const Py_ssize_t[::1] src, const double[::1] counts, const Py_ssize_t[::1] starts,
                    list frame_services, dict source_names, double ws, tuple consts) -> list:
    """``IngestGapDetector.close_window``'s services whose steps open, grow or close nothing, the
    same steps in the same order: of the services ``order``, each known one (``states``) with a
    global key (``(svc, whole)`` in ``index``: its ``observed`` reports, ``expected``, ``phi``
    and ``judged`` at that row), no open gap, no ``"*"`` among its shares, no new source this window
    and no run turning silent: its reports per source summed over its span of the frame (``src``
    the leaves' source ids into ``source_names[svc]``, ``counts`` theirs, the span
    ``starts[j]:starts[j + 1]`` of ``frame_services[j]``, from +0.0 in leaf order), then ``_quiet``
    and ``_learn``, or ``_runs`` (window ``ws``) and ``_learn`` below ELEVATED_SCORE. Returns the
    others, in order, for the Python steps. ``consts``: (ALL, WARM_REPORTS, LEARN_REPORTS,
    MAX_RATE, MIN_SHARE, MAX_SOURCES, GAP_SCORE, ELEVATED_SCORE, MIN_WINDOWS, ln 10)."""
    cdef object every = consts[0]
    cdef _GapConsts c_
    cdef list rest = [], names
    cdef dict shares, runs
    cdef Py_ssize_t i, j, s, lo, hi, ns, row, nsvc = len(frame_services), cap = 0
    cdef double total, learned, top
    cdef double* acc = NULL
    cdef unsigned char* seen = NULL
    cdef bint fits, learn
    if len(consts) != 10:
        raise ValueError("gap_quiet_learn: ten constants")
    c_.warm, c_.learn_reports, c_.max_rate, c_.min_share = consts[1], consts[2], consts[3], consts[4]
    c_.max_sources, c_.gap_score, c_.elevated = consts[5], consts[6], consts[7]
    c_.min_windows, c_.ln10 = consts[8], consts[9]
    if starts.shape[0] < nsvc + 1:
        raise ValueError("gap_quiet_learn: starts too short")
    try:
        for svc in order:
            got = index.get((svc, whole))
            st = states.get(svc)
            if got is None or st is None or st.gap is not None:
                rest.append(svc)
                continue
            row = got
            if not 0 <= row < observed.shape[0] or row >= judged.shape[0] or row >= expected.shape[0] \
                    or row >= phi.shape[0]:
                raise IndexError(f"row {row} is out of bounds")
            total = observed[row]
            shares = st.shares
            if every in shares or len(shares) > c_.max_sources:
                rest.append(svc)
                continue
            lo = hi = 0
            for j in range(nsvc):
                if frame_services[j] == svc:
                    lo, hi = starts[j], starts[j + 1]
                    break
            if lo < 0 or hi > src.shape[0] or hi > counts.shape[0]:
                raise IndexError("gap_quiet_learn: span out of bounds")
            names = source_names.get(svc, [])
            ns = len(names)
            if ns + 1 > cap:
                free(acc)
                free(seen)
                acc, seen, cap = NULL, NULL, 0
                acc = <double*>malloc((ns + 1) * sizeof(double))
                seen = <unsigned char*>malloc((ns + 1) * sizeof(unsigned char))
                if acc == NULL or seen == NULL:
                    raise MemoryError()
                cap = ns + 1
            for s in range(ns):
                acc[s] = 0.0
                seen[s] = 0
            for i in range(lo, hi):
                s = src[i]
                if s < 0 or s >= ns:
                    raise IndexError(f"source {s} is out of bounds for {ns} sources")
                seen[s] = 1
                acc[s] += counts[i]
            fits = True
            for s in range(ns):  # _learn's usual window: no new source
                if seen[s] and names[s] not in shares:
                    fits = False
                    break
            if not fits:
                rest.append(svc)
                continue
            learned = st.learned
            runs = st.runs
            if not runs and total > 0 and _gap_quiet(shares, names, acc, seen, ns, total, learned, judged[row], &c_):
                learn = True
            else:
                if _gap_runs(runs, shares, names, acc, seen, ns, total, expected[row], phi[row], judged[row],
                             learned >= c_.warm, ws, every, &c_, &top):
                    rest.append(svc)
                    continue
                learn = total > 0 and top < c_.elevated
            if learn:
                _gap_learn(st, shares, names, acc, seen, ns, total, learned, &c_)
    finally:
        free(acc)
        free(seen)
    return rest
