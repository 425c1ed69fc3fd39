# Included by _closing.pyx (one module), last: the seasonal closing path of one window in three
# calls instead of some forty (spikedetect.core.window_fused). :class:`SeasonalViews` keeps typed
# memoryviews of a seasonal baseline's columns and the keyspace's arrays from window to window
# (a :class:`HeldViews`: rebuilt whenever one of those arrays is another object than the one
# viewed), so a view is never stale; the calls run the same cdef loops as the per-step entry
# points, in the same order, so every value is bit-identical.

import numpy as np


cdef class SeasonalViews(HeldViews):
    """Memoryviews of one seasonal baseline's columns and its keyspace's ``parent``, ``depth``,
    ``closed_ws`` and ``mute_until``, and the scratch arrays of the fused calls (grown by
    doubling). ``builds`` counts how often the views were (re)built."""
    cdef double[::1, :] prof, dow_num, dow_den
    cdef float[::1, :] prof_w, dow_w, ring_x, ring_m, ring_v
    cdef double[::1] level, share
    cdef float[::1] level_n, phi, alpha, disp_n, share_w, cal_n
    cdef double[:, ::1] sum_x, sum_m, sum_v
    cdef float[:, ::1] cal_q, cal_q3
    cdef const Py_ssize_t[::1] parent
    cdef const signed char[::1] depth
    cdef long long[::1] closed_ws
    cdef const long long[::1] mute_until
    cdef public object work, idx, cand  # scratch: the tails', the candidates
    cdef Py_ssize_t[::1] idx_v, cand_v, sel_v
    cdef double[::1] work_v, value_v, shares_v
    cdef unsigned char[::1] cold_v, flags_v
    cdef object factors_obj, sharp_obj, logs_obj
    cdef _Loop log_loop, log1p_loop  # numpy's float64 loops of log and log1p (logs_obj: where from)
    cdef const double[:, ::1] factors
    cdef const unsigned char[::1] sharp
    # the window last scored: its arrays (for identity) and views of them
    cdef tuple w_objs
    cdef const double[::1] w_obs
    cdef double[::1] w_mean, w_tod, w_factor
    cdef signed char[::1] w_source, w_sig
    cdef unsigned char[::1] w_warm, w_done, w_muted, w_tracked
    cdef double[:, ::1] w_raw
    cdef double[:, :, ::1] w_block

    def __init__(self):
        self.w_objs = None

    def __reduce__(self):
        """A copy (``copy.deepcopy`` or pickle of the keyspace holding this) starts empty: these
        are views of the original's arrays, rebuilt from the copy's on its first window."""
        return SeasonalViews, ()

    cdef int refresh(self, dict cols, object parent, object depth, object closed_ws, object mute_until) except -1:
        """View the baseline's columns and the keyspace's arrays (rebuilt unless each is the
        one viewed)."""
        return self.hold((cols["prof"], cols["prof_w"], cols["dow_num"], cols["dow_den"], cols["dow_w"], cols["level"],
                          cols["level_n"], cols["phi"], cols["alpha"], cols["disp_n"], cols["share"], cols["share_w"],
                          cols["ring_x"], cols["ring_m"], cols["ring_v"], cols["sum_x"], cols["sum_m"], cols["sum_v"],
                          cols["cal_q"], cols["cal_q3"], cols["cal_n"], parent, depth, closed_ws, mute_until))

    cdef int build(self, tuple objs) except -1:
        """The views of :meth:`refresh`'s arrays, in its order."""
        (self.prof, self.prof_w, self.dow_num, self.dow_den, self.dow_w, self.level, self.level_n, self.phi,
         self.alpha, self.disp_n, self.share, self.share_w, self.ring_x, self.ring_m, self.ring_v, self.sum_x,
         self.sum_m, self.sum_v, self.cal_q, self.cal_q3, self.cal_n, self.parent, self.depth, self.closed_ws,
         self.mute_until) = objs
        return 0

    cdef int scratch(self, Py_ssize_t n, Py_ssize_t total) except -1:
        """Room in the scratch arrays for ``n`` rows and ``total`` tail values."""
        cdef Py_ssize_t size
        if self.cand is None or self.cand_v.shape[0] < n:
            size = max(n, 2 * (self.cand_v.shape[0] if self.cand is not None else 0), 64)
            self.cand = np.empty(size, dtype=np.intp)
            self.cand_v = self.cand
            self.sel_v = np.empty(size, dtype=np.intp)
            self.value_v = np.empty(size)
            self.shares_v = np.empty(size)
            self.cold_v = np.empty(size, dtype=np.uint8)
            self.flags_v = np.empty(size, dtype=np.uint8)
        if self.idx is None or self.idx_v.shape[0] < total:
            size = max(total, 2 * (self.idx_v.shape[0] if self.idx is not None else 0), 1024)
            self.idx = np.empty(size, dtype=np.intp)
            self.idx_v = self.idx
            self.work = np.empty(NB_WORK * size)
            self.work_v = self.work
        return 0


def fused_score_first(SeasonalViews v not None, dict cols, object parent, object depth, object closed_ws, object mute_until,
                      const double[::1] observed, long long ws, tuple expect, tuple prior, tuple record,
                      tuple logs=None):
    """``score_window`` up to the tails' logs (through them, given ``logs``), for the ``len(observed)``
    rows: ``expect`` (``SeasonalBaseline.expect``: lo, hi, w_hi, d, its params), ``parent_prior``
    (``prior``: floor, LEARNED, PARENT_PRIOR), ``done``, ``gather_evidence``'s record and once-a-lap
    resum and its candidates and block (``record``: LEARNED, MEAN_FLOOR, pos, the leaving positions,
    the long horizons, min_excess), then ``nb_prepare`` and, given ``logs``, its logs
    (:func:`_take_logs`; without, the caller takes them). Returns (stage, mean, phi, source, tod,
    warm, factor, own, done, k, block, prepared): stage 0 when all of it ran (the candidates are
    ``v.cand[:k]``, ``prepared`` :func:`nb_prepare`'s tuple), 1 when the record declined (nothing
    recorded), 2 when the resum declined, 3 when the trimmed sums declined: the caller goes on
    with the per-step code from there."""
    cdef Py_ssize_t n = observed.shape[0], i, k = 0, pos = record[2]
    cdef _Expect q = _expect_params(expect[0], expect[1], expect[2], expect[3], expect[4])
    cdef double floor = prior[0]
    cdef signed char learned = prior[1], prior_src = prior[2]
    cdef object mean_a = np.empty(n), phi_a = np.empty(n), tod_a = np.empty(n), factor_a = np.empty(n)
    cdef object own_a = np.empty(n), source_a = np.empty(n, dtype=np.int8), warm_a = np.empty(n, dtype=np.bool_)
    cdef object done_a = np.empty(n, dtype=np.bool_), block = None
    cdef double[::1] mean = mean_a, phi = phi_a, tod = tod_a, factor = factor_a, own = own_a
    cdef signed char[::1] source = source_a
    cdef unsigned char[::1] warm = warm_a.view(np.uint8), done = done_a.view(np.uint8)
    v.w_objs = None
    v.w_obs, v.w_mean, v.w_tod, v.w_factor, v.w_source, v.w_warm, v.w_done = observed, mean, tod, factor, source, \
        warm, done
    cdef const Py_ssize_t[::1] leaving = record[3], horizons = record[4]
    v.refresh(cols, parent, depth, closed_ws, mute_until)
    if v.parent.shape[0] < n or v.depth.shape[0] < n or v.closed_ws.shape[0] < n or v.level.shape[0] < n:
        raise ValueError("the keyspace's arrays are shorter than the rows")
    v.scratch(n, n)
    with nogil:
        _expect_rows(&q, NULL, n, v.prof, v.dow_num, v.dow_den, v.prof_w, v.dow_w, v.level, v.level_n, v.phi,
                     v.alpha, mean, phi, source, tod, warm, factor, own)
        for i in range(n):
            v.shares_v[i] = v.share[i] if v.share_w[i] >= <float>1.0 else NAN
            done[i] = v.closed_ws[i] >= ws
    _parent_prior(v.shares_v[:n], v.parent[:n], v.depth[:n], floor, learned, prior_src, mean, source, v.cold_v,
                  v.sel_v, v.value_v)
    out = [0, mean_a, phi_a, source_a, tod_a, warm_a, factor_a, own_a, done_a, 0, None, None]
    if not _evidence_record_window(v.sum_x, v.ring_x, v.sum_m, v.ring_m, v.sum_v, v.ring_v, observed, mean, own,
                                   source, phi, done, record[0], record[1], pos, leaving):
        out[0] = 1
        return out
    if pos == 0:
        for i in range(n):
            if not done[i]:
                v.sel_v[k] = i
                k += 1
        if not _evidence_resum(v.ring_x, v.ring_m, v.ring_v, v.sum_x, v.sum_m, v.sum_v, v.sel_v[:k], horizons):
            out[0] = 2
            return out
    k = _horizon_candidates(v.sum_x, v.sum_m, v.sum_v, n, record[5], v.cand_v)
    block = np.empty((5, horizons.shape[0], k))
    if not _horizon_trimmed(v.ring_x, v.ring_m, v.ring_v, v.sum_m, v.cand_v[:k], pos, horizons, block):
        out[0] = 3
        return out
    v.scratch(n, n + horizons.shape[0] * k)
    v.w_block = block
    out[9], out[10] = k, block
    out[11] = _nb_prepare(observed, mean, phi, v.w_block, v.idx_v, v.work_v)
    if logs is not None:
        _take_logs(v, logs, out[11])
    return out


cdef int _take_logs(SeasonalViews v, tuple logs, tuple prepared) except -1:
    """``negbin.take_logs(v.work, prepared)`` by :func:`_nb_logs` with numpy's own loops of log and
    log1p (``logs``: ``negbin.UFUNC_LOOPS``, each (ufunc, position of ``"d->d"`` in its types);
    resolved once, kept in ``v``)."""
    if logs is not v.logs_obj:
        v.log_loop, v.log1p_loop = _ufunc_loop(logs[0][0], logs[0][1]), _ufunc_loop(logs[1][0], logs[1][1])
        v.logs_obj = logs
    return _nb_logs(&v.log_loop, &v.log1p_loop, v.work_v, prepared[0], prepared[1], prepared[2], prepared[3],
                    prepared[4], prepared[5], prepared[6])


def fused_score_second(SeasonalViews v not None, tuple prepared, tuple consts, object tracked, const double[::1] rates,
                       tuple signals, long long ws):
    """``score_window`` after the logs, on the arrays of the last :func:`fused_score_first` (it
    returned stage 0): ``nb_finish`` into the raw scores, ``calibrate``, the signals and scores
    (``window_signals``) and ``mute``. ``consts``: negbin's five, ln 10, the cap, CAL_INITIAL;
    ``signals``: the horizons as floats, the sharp rows (bool), the rule's params, FLOOR,
    ANOMALOUS, ELEVATED. Returns (raw, cal, signal, score, muted)."""
    cdef const double[::1] observed = v.w_obs, expected = v.w_mean
    cdef const signed char[::1] source = v.w_source
    cdef const double[:, :, ::1] block = v.w_block
    cdef Py_ssize_t n = observed.shape[0], i, k = block.shape[2], nh = block.shape[1]
    cdef double c[5]
    cdef const Py_ssize_t[::1] cand = v.cand_v[:k]
    cdef object raw_a = np.empty((nh + 1, n)), cal_a = np.zeros((nh + 1, n))
    cdef object sig_a = np.empty(n, dtype=np.int8), score_a = np.empty(n), muted_a = np.empty(n, dtype=np.bool_)
    cdef double[:, ::1] raw = raw_a, cal = cal_a
    cdef signed char[::1] sig = sig_a
    cdef double[::1] score = score_a
    cdef unsigned char[::1] muted = muted_a.view(np.uint8)
    cdef unsigned char[::1] tr = tracked.view(np.uint8)
    cdef const double[::1] windows = signals[0]
    cdef _Rule rule = _rule(signals[2])
    cdef signed char floor = signals[3], anomalous = signals[4], elevated = signals[5]
    if signals[1] is not v.sharp_obj:
        v.sharp = signals[1].view(np.uint8)
        v.sharp_obj = signals[1]
    for i in range(5):
        c[i] = consts[i]
    _nb_finish(v.idx_v, v.work_v, prepared[0], prepared[1], cand, c, consts[5], consts[6], True, raw)
    _calibrate_rows(raw, v.cal_q, v.cal_q3, n, cand, consts[7], cal)
    if (expected.shape[0] < n or tr.shape[0] < n or rates.shape[0] < k or source.shape[0] < n
            or v.mute_until.shape[0] < n or windows.shape[0] != nh or v.sharp.shape[0] != nh or nh < 1):
        raise ValueError("the arrays do not fit")
    with nogil:  # window_signals, then mute
        _signal_rows(observed, expected, cal, cand, block, tr, rates, windows, v.sharp, &rule, sig, score, n)
        _mute_rows(sig, source, v.mute_until, ws, floor, anomalous, elevated, muted, n)
    v.w_raw, v.w_sig, v.w_muted, v.w_tracked = raw, sig, muted, tr
    return raw_a, cal_a, sig_a, score_a, muted_a


def fused_keep(SeasonalViews v not None, tuple objs) -> None:
    """The arrays of the window just scored (observed, mean, source, tod, warm, factor, done, raw,
    signal, muted, tracked), which :func:`fused_learn` learns from when it is given them."""
    v.w_objs = objs


def fused_learn(SeasonalViews v not None, dict cols, object parent, object depth, object closed_ws, object mute_until,
                tuple objs, object ended, object not_quiet, object factors, signed char anomalous,
                double elevated_weight, tuple learn, long long ws) -> int:
    """``Scorer._learn`` of a seasonal baseline from the window last scored, whose arrays ``objs``
    must be those :func:`fused_keep` was given (else -1, nothing written): ``evidence.reset`` of
    the ``ended`` rows (None: none), ``learn_calibration`` of the rows neither tracked nor done
    (``factors``: ``evidence._rate_factors()``), the baseline's ``learn_window`` of the rows neither
    ``not_quiet`` nor done with a signal below ``anomalous`` (``learn``: lo, hi, w_hi, d,
    :func:`seasonal_learn_window`'s params), then ``closed_ws`` raised to ``ws``. 0, and nothing
    written, when calibration's one pass declines or an ended row is out of range; 1 when done."""
    cdef Py_ssize_t n = v.w_obs.shape[0], i, s, h
    cdef const Py_ssize_t[::1] end
    cdef const unsigned char[::1] nq = not_quiet.view(np.uint8)
    cdef _Seasonal p = _seasonal_params(learn[0], learn[1], learn[2], learn[3], learn[4])
    if v.w_objs is None or len(objs) != len(v.w_objs):
        return -1
    for i in range(len(objs)):
        if objs[i] is not v.w_objs[i]:
            return -1
    v.refresh(cols, parent, depth, closed_ws, mute_until)
    if factors is not v.factors_obj:
        v.factors = factors
        v.factors_obj = factors
    v.scratch(n, 0)
    if (nq.shape[0] < n or v.w_raw.shape[1] != n or v.w_raw.shape[0] != v.cal_q.shape[1] or v.level.shape[0] < n
            or v.parent.shape[0] < n or v.closed_ws.shape[0] < n):
        raise ValueError("the arrays do not fit")
    if ended is not None:
        end = ended
        for i in range(end.shape[0]):
            if not 0 <= end[i] < n:
                return 0
    for i in range(n):
        v.flags_v[i] = not (v.w_tracked[i] or v.w_done[i])
    if not _calibration_check(v.cal_n, v.flags_v[:n]):
        return 0
    if ended is not None:
        for i in range(end.shape[0]):
            for s in range(v.ring_x.shape[1]):
                v.ring_x[end[i], s] = v.ring_m[end[i], s]
            for h in range(v.sum_x.shape[1]):
                v.sum_x[end[i], h] = v.sum_m[end[i], h]
    with nogil:
        _calibration_learn(v.cal_q, v.cal_q3, v.cal_n, v.flags_v[:n], v.w_raw, v.factors, True)  # checked above
        for i in range(n):
            v.flags_v[i] = not (nq[i] or v.w_done[i]) and v.w_sig[i] < anomalous
        _learn_rows(&p, v.flags_v[:n], v.parent, v.w_sig, v.w_muted, elevated_weight, v.w_obs, v.w_mean, v.w_source,
                    v.w_tod, v.w_warm, v.w_factor, v.prof, v.prof_w, v.dow_num, v.dow_den, v.dow_w, v.level,
                    v.level_n, v.phi, v.alpha, v.disp_n, v.share, v.share_w)
        for i in range(n):
            if v.closed_ws[i] < ws:
                v.closed_ws[i] = ws
    v.w_objs = None  # learned once
    return 1
