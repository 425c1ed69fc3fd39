# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False, initializedcheck=False
"""The compiled counting kernel: :meth:`WindowCounter.feed_batch` with a C scanner for the common line.

The loop is the pure-Python one in ``spikedetect/core/counter.py`` (the reference), statement for
statement, except that a line is first scanned in C as a strict subset of JSON (one flat object,
string and integer values, no escapes, keys and other values ASCII, ``ts`` an integer or
``YYYY-MM-DDTHH:MM:SS[.mmm]Z``) and its raw (service, region, category, source) looked up among
the combinations the validator admitted (_combos.pxi) or made of values it admitted (_admit.pxi).
Any other line takes the Python path unchanged: every reject reason is the validator's.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport int64_t
from libc.string cimport memcmp, memcpy

import orjson

include "_span.pxi"
include "_scan.pxi"
include "_combos.pxi"
include "_evidence.pxi"
include "_eids.pxi"
include "_lines.pxi"  # a batch may be Lines: spans of the blocks read, no bytes object per line
include "_ahead.pxi"
include "_admit.pxi"  # a new combination of known field values: cached without the validator


def feed_batch(self, values_in, fallback_ts_ms, position, bint replaying, origin, result):
    """The body of :meth:`WindowCounter.feed_batch` (see there); fills and returns ``result``."""
    cdef Ahead ahead
    cdef Heap heap
    cdef Scan* sc
    cdef const unsigned char* s
    cdef Lines lines = values_in if type(values_in) is Lines else None
    cdef list values = None if lines is not None else values_in if type(values_in) is list else list(values_in)
    cdef Py_ssize_t n, i, j, nvalues = len(values_in) if lines is not None else len(values)
    cdef PyObject* hit
    cdef Py_ssize_t slot
    cdef uint64_t khash = 0
    cdef RawCombos rc = self._raw_combos
    cdef int64_t ts, ws, fb, bound, ev_bound, frontier, limit, ev_min, wm = 0, hold_at, max_ts = 0
    cdef int64_t floor_wm = 0, cur_ws = 0
    cdef bint has_wm, has_max, has_floor, has_cur = False, has_fb = fallback_ts_ms is not None, first
    cdef bint has_origin = origin is not None, insert
    cdef int64_t window_ms = self.window_ms, lateness_ms = self.lateness_ms
    cdef int64_t skew_ms = self.config.max_future_skew_ms, lead_ms = self.record_lead_ms
    cdef int64_t hold_ms = self.hold_ms
    cdef Py_ssize_t quorum = self.quorum, max_bytes = self.config.max_value_bytes
    cdef Py_ssize_t evidence_n = self._evidence_n, block = EVIDENCE_BLOCK
    cdef int64_t ev_total = self._evidence_total, confirm = self.confirm_within
    cdef int64_t no_floor = -4611686018427387904, no_limit = 4611686018427387904
    cdef int64_t min_ts = C_MIN_TS, max_ts_ok = C_MAX_TS
    cdef Py_ssize_t accepted = 0, duplicates = 0
    cdef dict combos = self._combos, counts = self._counts, ids = self._ids
    cdef dict cur = None, svc
    cdef object cur_ids = None, got_ids
    cdef EidSet cur_eids = None
    cdef bint eid_raw  # the event id is the scanned span (no str made unless needed)
    cdef list evidence = self._evidence, rejects = result.rejects
    cdef bytes raw
    loads, decode_error, fields = orjson.loads, orjson.JSONDecodeError, _fields
    validator, minutes = self.validator, self.validator.minutes
    secms = _seconds_ms
    slow = self._slow_path
    cdef int64_t gen = self._generation, gen_end = self._generation_end
    cdef Py_ssize_t max_keys = self.config.max_keys_per_service
    heap_buf = _heap_load(&heap, evidence, quorum)
    held = self.held
    cdef list held_items = held.items  # read again after each call that may replace it (_hold, _release, expiry)
    frontier = no_floor if self.frontier_ms is None else self.frontier_ms
    has_floor = self.floor_wm_ms is not None
    if has_floor:
        floor_wm = self.floor_wm_ms
    has_max, py_wm = self.max_ts_ms is not None, self.watermark_ms
    max_ts = self.max_ts_ms if has_max else 0
    has_wm = py_wm is not None
    wm = py_wm if has_wm else 0
    hold_at = self._hold_at()
    ev_min = heap.v[0] if heap.n == quorum else no_floor
    limit = no_limit if frontier == no_floor else frontier + skew_ms
    for j in range(min(RING - 1, nvalues)):
        _scan_ahead(&ahead, values, lines, j, max_bytes)
    for i in range(nvalues):
        j = i + RING - 1
        if j < nvalues:
            _scan_ahead(&ahead, values, lines, j, max_bytes)
            _prefetch_bucket(&ahead, rc, j)
        if i + RING // 2 < nvalues:
            _prefetch(&ahead, rc, i + RING // 2, False)
        if i + 2 < nvalues:
            _prefetch(&ahead, rc, i + 2, True)
        if lines is None:
            raw = values[i]
            n, s = PyBytes_GET_SIZE(raw), <const unsigned char*>PyBytes_AS_STRING(raw)
        else:  # a span: its bytes object is made only where one is needed (_own)
            raw, n, s = None, lines.size[i], <const unsigned char*>lines.ptr[i]
        if n > max_bytes:
            rejects.append((i, "value_too_large"))
            continue
        insert = False
        slot = -1
        sc = &ahead.scans[i & (RING - 1)]
        if ahead.ok[i & (RING - 1)]:
            khash = ahead.hashes[i & (RING - 1)]
            slot = rc.find(s, sc, khash)
            if slot == -1:  # new: cached when the validator knows each field (registered below)
                slot = _admit(rc, validator, cur, s, sc, khash, gen - 1)
            insert = slot == -1
        if slot >= 0:
            if rc.slots[slot].gen != gen:  # admitted in an earlier generation: its region counts again
                if not _register(self._regions, (<tuple>rc.entries[slot])[0], max_keys):
                    rejects.append((i, "too_many_keys"))
                    continue
                rc.slots[slot].gen = gen
            ts = sc.ts
            eid = None
            eid_raw = sc.seen[F_EID]
        else:
            eid_raw = False
            raw = _own(raw, s, n)
            try:
                obj = loads(raw)
            except decode_error as exc:
                rejects.append((i, "not_utf8" if "not valid utf-8" in str(exc).lower() else "not_json"))
                continue
            try:  # the pure path's fast path, unchanged
                key, leaf = combos[fields(obj)]
                t = obj["ts"]
                if type(t) is str:
                    if len(t) != 24:
                        raise KeyError
                    ts = minutes[t[:16]] + secms[t[16:]]
                elif type(t) is int and min_ts <= t < max_ts_ok:
                    ts = t
                else:
                    raise KeyError
                eid = obj.get("event_id")
                if eid is not None and not (type(eid) is str and 0 < len(eid) <= 128 and eid.isprintable()):
                    raise KeyError
            except (KeyError, TypeError, ValueError):
                checked = slow(obj, None if fallback_ts_ms is None else fallback_ts_ms[i])
                if isinstance(checked, str):
                    rejects.append((i, checked))
                    continue
                ts, combo, eid = checked
                key, leaf = combo
            if insert:
                slot = _cache_combo(rc, cur, s, sc, khash, key, leaf, gen)
        bound = limit
        ev_bound = no_limit
        if has_fb:
            py_fb = fallback_ts_ms[i]
            if py_fb is not None:
                fb = py_fb
                ev_bound = fb + lead_ms
                if limit == no_limit or fb + skew_ms > limit:
                    bound = fb + skew_ms
        if ts > bound:
            rejects.append((i, "ts_too_far_future"))
            continue
        ws = ts - ts % window_ms
        if ts > hold_at:  # ahead of the frontier (never late): held, counted when its window comes
            if slot >= 0:
                key = (<tuple>rc.entries[slot])[0]
            got_ids = ids.get(ws)
            if eid_raw:
                eid = PyUnicode_DecodeASCII(<char*>s + sc.start[F_EID], sc.length[F_EID], NULL)
            if eid is not None:
                if got_ids is None:
                    got_ids = ids[ws] = EidSet()
                if eid in got_ids:
                    duplicates += 1
                    continue
            raw = _own(raw, s, n)
            reason = self._hold(raw, ts, ws, key, (position, i) if not has_origin else origin(i),
                                None if position is None else position + i, ev_total + confirm)
            held_items = held.items
            if reason is not None:
                rejects.append((i, reason))
                continue
            if eid is not None:
                got_ids.add(eid)
            if ts >= gen_end:
                self._new_generation(ts)
                self._regions[key[0]] = {key[1]}
                gen, gen_end = self._generation, self._generation_end
        else:
            if not has_cur or ws != cur_ws:
                if has_wm and ws + window_ms <= wm:
                    if not replaying:
                        rejects.append((i, "late"))
                    continue
                if rc.ntouched:
                    _flush(rc, cur)
                cur_ws = ws
                has_cur = True
                got = counts.get(ws)
                if got is None:
                    got = counts[ws] = {}
                    if position is not None:
                        self._first_pos.setdefault(ws, position + i)
                cur = got
                got_ids = ids.get(ws)
                if got_ids is None:
                    got_ids = ids[ws] = EidSet(cur_eids)  # sized as the window before
                cur_ids = got_ids
                cur_eids = got_ids if type(got_ids) is EidSet else None
            elif has_wm and ws + window_ms <= wm:
                if not replaying:
                    rejects.append((i, "late"))
                if rc.ntouched:
                    _flush(rc, cur)
                has_cur = False
                continue
            if (eid_raw or eid is not None) and _seen(cur_ids, cur_eids, eid_raw, <char*>s + sc.start[F_EID],
                                                      sc.length[F_EID], eid):
                duplicates += 1
                continue
            if slot >= 0:  # counted in C, flushed in first-touch order (_flush)
                _touch(rc, slot)
            else:
                if rc.ntouched:
                    _flush(rc, cur)
                _add(cur, key[0], leaf, 1)
            if not has_max or ts > max_ts:
                max_ts = ts
                has_max = True
                if ts >= gen_end:
                    if slot >= 0:
                        key = (<tuple>rc.entries[slot])[0]
                    self._new_generation(ts)
                    self._regions[key[0]] = {key[1]}
                    gen, gen_end = self._generation, self._generation_end
        accepted += 1
        if ts <= ev_bound:
            if ts > ev_min:
                if ev_min != no_floor:
                    _heap_replace(&heap, ts)
                    ev_min = heap.v[0]
                else:
                    _heap_push(&heap, ts)
                    if heap.n == quorum:
                        if frontier == no_floor and _heap_max(&heap) - heap.v[0] > skew_ms:
                            _heap_pop(&heap)
                        else:
                            ev_min = heap.v[0]
                if ev_min > frontier:
                    first = frontier == no_floor
                    frontier = ev_min
                    limit = frontier + skew_ms
                    wm = frontier - lateness_ms
                    has_wm = True
                    if has_floor and floor_wm > wm:
                        wm = floor_wm
                    hold_at = wm + lateness_ms + hold_ms
                    if held_items and held_items[0].ts_ms <= hold_at:  # a list test: no __len__ call per advance
                        if rc.ntouched:
                            _flush(rc, cur)
                        self.frontier_ms = frontier
                        self.max_ts_ms = max_ts if has_max else None
                        self._release(hold_at, wm if first else None)
                        held_items = held.items
                        gen, gen_end = self._generation, self._generation_end  # a released report may start one
                        has_max = self.max_ts_ms is not None
                        if has_max:
                            max_ts = self.max_ts_ms
                        has_cur = False
            evidence_n += 1
            ev_total += 1
            if held_items and held.arrivals[0].deadline <= ev_total and frontier != no_floor:
                for h in held.pop_expired(ev_total):
                    self._expire(h, "ts_skewed")
                held_items = held.items
            if evidence_n >= block:
                heap.n = 0
                evidence_n = 0
                ev_min = no_floor
    if rc.ntouched:
        _flush(rc, cur)
    _heap_store(&heap, evidence)
    self._evidence_n = evidence_n
    self._evidence_total = ev_total
    self.max_ts_ms = max_ts if has_max else None
    self.frontier_ms = None if frontier == no_floor else frontier
    st = self.stats
    result.accepted, result.duplicates = accepted, duplicates
    st.accepted += accepted
    st.duplicates += duplicates
    for _, reason in rejects:
        if reason == "late":
            st.late += 1
        else:
            st.rejected += 1
    return result

