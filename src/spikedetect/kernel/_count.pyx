# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False, initializedcheck=False
"""The compiled counting kernel: :meth:`WindowCounter.feed_batch` with a C scanner for the
common line.

The loop is the pure-Python one in ``spikedetect/core/counter.py`` (the reference), statement
for statement, with one change: a line is first scanned in C as a strict subset of JSON - one
flat object, string and integer values, no escapes, keys and other values ASCII, ``ts`` an
integer or ``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` - and its (service, region, category, source) raw
bytes are looked up in a cache of combinations the Python validator already admitted. Any
other line (a miss, an escape, a float, a nested value, a duplicate field, non-ASCII outside
the key fields, bad JSON) takes the Python path unchanged, so every reject reason is the
Python validator's.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport int64_t
from libc.string cimport memcmp, memcpy

import heapq

import orjson

cdef int64_t C_MIN_TS = 946_684_800_000  # 2000-01-01T00:00:00Z, checked by configure()
cdef int64_t C_MAX_TS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
cdef Py_ssize_t EVIDENCE_BLOCK = 0

# field ids
DEF F_TS = 0
DEF F_SERVICE = 1
DEF F_REGION = 2
DEF F_CATEGORY = 3
DEF F_SOURCE = 4
DEF F_EID = 5
DEF F_OTHER = 6

cdef struct Scan:
    int64_t ts
    Py_ssize_t start[6]
    Py_ssize_t length[6]
    int seen[6]


cdef inline bint _ws(unsigned char c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13


cdef inline int _field(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    if n == 2 and s[0] == b't' and s[1] == b's':
        return F_TS
    if n == 7 and memcmp(s, b"service", 7) == 0:
        return F_SERVICE
    if n == 6:
        if memcmp(s, b"region", 6) == 0:
            return F_REGION
        if memcmp(s, b"source", 6) == 0:
            return F_SOURCE
    if n == 8:
        if memcmp(s, b"category", 8) == 0:
            return F_CATEGORY
        if memcmp(s, b"event_id", 8) == 0:
            return F_EID
    return F_OTHER


cdef inline int _d2(const unsigned char* s) noexcept nogil:
    if not (48 <= s[0] <= 57 and 48 <= s[1] <= 57):
        return -1
    return (s[0] - 48) * 10 + (s[1] - 48)


cdef int64_t _days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    cdef int64_t era = (y if y >= 0 else y - 399) // 400
    cdef int64_t yoe = y - era * 400
    cdef int64_t mp = (m + 9) % 12
    cdef int64_t doy = (153 * mp + 2) // 5 + d - 1
    cdef int64_t doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef int64_t _parse_ts(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` or ``YYYY-MM-DDTHH:MM:SSZ`` (UTC) to epoch ms; -1 otherwise
    (the Python validator decides about every other form)."""
    cdef int y1, y2, mo, d, h, mi, sec, ms = 0, dim, y
    if n != 24 and n != 20:
        return -1
    if s[4] != b'-' or s[7] != b'-' or s[10] != b'T' or s[13] != b':' or s[16] != b':' or s[n - 1] != b'Z':
        return -1
    y1 = _d2(s)
    y2 = _d2(s + 2)
    mo = _d2(s + 5)
    d = _d2(s + 8)
    h = _d2(s + 11)
    mi = _d2(s + 14)
    sec = _d2(s + 17)
    if y1 < 0 or y2 < 0 or mo < 1 or mo > 12 or d < 1 or h < 0 or h > 23 or mi < 0 or mi > 59 or sec < 0 or sec > 59:
        return -1
    if n == 24:
        if s[19] != b'.' or not (48 <= s[20] <= 57 and 48 <= s[21] <= 57 and 48 <= s[22] <= 57):
            return -1
        ms = (s[20] - 48) * 100 + (s[21] - 48) * 10 + (s[22] - 48)
    y = y1 * 100 + y2
    if mo == 2:
        dim = 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    elif mo == 4 or mo == 6 or mo == 9 or mo == 11:
        dim = 30
    else:
        dim = 31
    if d > dim or y < 1:
        return -1
    return ((_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms


cdef int _scan(const unsigned char* s, Py_ssize_t n, Scan* out) noexcept nogil:
    """1 when the line is a simple report (every field the fast path needs, cache key spans
    known), 0 when the Python path must judge it."""
    cdef Py_ssize_t i = 0, ks, kn, vs, j
    cdef int f, digits
    cdef bint neg
    cdef int64_t v
    cdef unsigned char c
    for f in range(6):
        out.seen[f] = 0
    while i < n and _ws(s[i]):
        i += 1
    if i >= n or s[i] != b'{':
        return 0
    i += 1
    while True:
        while i < n and _ws(s[i]):
            i += 1
        if i >= n or s[i] != b'"':
            return 0
        i += 1
        ks = i
        while i < n:
            c = s[i]
            if c == b'"':
                break
            if c == b'\\' or c < 32 or c >= 128:
                return 0
            i += 1
        if i >= n:
            return 0
        kn = i - ks
        i += 1
        f = _field(s + ks, kn)
        while i < n and _ws(s[i]):
            i += 1
        if i >= n or s[i] != b':':
            return 0
        i += 1
        while i < n and _ws(s[i]):
            i += 1
        if i >= n:
            return 0
        if f != F_OTHER:
            if out.seen[f]:
                return 0  # a duplicate field: the Python path (orjson keeps the last)
            out.seen[f] = 1
        c = s[i]
        if c == b'"':
            i += 1
            vs = i
            if f >= F_SERVICE and f <= F_SOURCE:
                # raw bytes are only a cache key: a hit means these bytes were decoded and admitted
                while i < n:
                    c = s[i]
                    if c == b'"':
                        break
                    if c == b'\\' or c < 32:
                        return 0
                    i += 1
            else:
                while i < n:
                    c = s[i]
                    if c == b'"':
                        break
                    if c == b'\\' or c < 32 or c >= 127:
                        return 0
                    i += 1
            if i >= n:
                return 0
            out.start[f] = vs
            out.length[f] = i - vs
            i += 1
            if f == F_TS:
                v = _parse_ts(s + vs, i - 1 - vs)
                if v < C_MIN_TS or v >= C_MAX_TS:
                    return 0
                out.ts = v
            elif f == F_EID:
                if out.length[f] < 1 or out.length[f] > 128:
                    return 0
        elif c == b'-' or (48 <= c <= 57):
            neg = c == b'-'
            if neg:
                i += 1
            vs = i
            v = 0
            while i < n and 48 <= s[i] <= 57:
                v = v * 10 + (s[i] - 48)
                i += 1
            digits = <int>(i - vs)
            if digits == 0 or digits > 18 or (digits > 1 and s[vs] == b'0'):
                return 0
            if i < n and (s[i] == b'.' or s[i] == b'e' or s[i] == b'E'):
                return 0
            if f == F_TS:
                if neg:
                    v = -v
                if v < C_MIN_TS or v >= C_MAX_TS:
                    return 0
                out.ts = v
            elif f != F_OTHER:
                return 0  # an integer service, region, ..., event_id: the validator decides
        else:
            return 0
        while i < n and _ws(s[i]):
            i += 1
        if i >= n:
            return 0
        if s[i] == b',':
            i += 1
            continue
        if s[i] == b'}':
            i += 1
            break
        return 0
    while i < n and _ws(s[i]):
        i += 1
    if i != n:
        return 0
    for f in range(5):
        if not out.seen[f]:
            return 0
    return 1


cdef bytes _cache_key(const unsigned char* s, Scan* sc):
    cdef Py_ssize_t total = sc.length[1] + sc.length[2] + sc.length[3] + sc.length[4] + 3
    cdef bytes key = PyBytes_FromStringAndSize(NULL, total)
    cdef char* p = PyBytes_AS_STRING(key)
    cdef int f
    for f in range(1, 5):
        memcpy(p, s + sc.start[f], sc.length[f])
        p += sc.length[f]
        if f < 4:
            p[0] = 0
            p += 1
    return key


def cache_key(bytes raw):
    """The raw cache key of a simple line, or None (for tests)."""
    cdef Scan sc
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(raw)
    if not _scan(s, PyBytes_GET_SIZE(raw), &sc):
        return None
    return _cache_key(s, &sc)


def scan_ts(bytes raw):
    """The event time the scanner reads from a simple line, or None (for tests)."""
    cdef Scan sc
    if not _scan(<const unsigned char*>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), &sc):
        return None
    return sc.ts


def feed_batch(self, values, fallback_ts_ms, position, bint replaying, origin, result):
    """The body of :meth:`WindowCounter.feed_batch` (see there); fills and returns ``result``."""
    cdef Scan sc
    cdef const unsigned char* s
    cdef Py_ssize_t n, i, nvalues = len(values)
    cdef PyObject* hit
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
    cdef dict combos = self._combos, raw_combos = self._raw_combos, counts = self._counts, ids = self._ids
    cdef dict cur = None, svc
    cdef set cur_ids = None, got_ids
    cdef list evidence = self._evidence, rejects = result.rejects
    cdef bytes raw, ck
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    fields = _fields
    minutes = self.validator.minutes
    secms = _seconds_ms
    slow = self._slow_path
    heap_push, heap_replace, heap_pop = heapq.heappush, heapq.heapreplace, heapq.heappop
    held = self.held
    frontier = no_floor if self.frontier_ms is None else self.frontier_ms
    has_floor = self.floor_wm_ms is not None
    if has_floor:
        floor_wm = self.floor_wm_ms
    has_max = self.max_ts_ms is not None
    if has_max:
        max_ts = self.max_ts_ms
    py_wm = self.watermark_ms
    has_wm = py_wm is not None
    if has_wm:
        wm = py_wm
    hold_at = self._hold_at()
    ev_min = evidence[0] if len(evidence) == quorum else no_floor
    limit = no_limit if frontier == no_floor else frontier + skew_ms
    for i in range(nvalues):
        raw = values[i]
        n = PyBytes_GET_SIZE(raw)
        if n > max_bytes:
            rejects.append((i, "value_too_large"))
            continue
        s = <const unsigned char*>PyBytes_AS_STRING(raw)
        insert = False
        hit = NULL
        ck = None
        if _scan(s, n, &sc):
            ck = _cache_key(s, &sc)
            hit = PyDict_GetItem(raw_combos, ck)
            insert = hit == NULL
        if hit != NULL:
            key, leaf = <object>hit
            ts = sc.ts
            eid = PyUnicode_DecodeASCII(<char*>s + sc.start[F_EID], sc.length[F_EID], NULL) \
                if sc.seen[F_EID] else None
        else:
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
                if len(raw_combos) >= _combo_cache_size:
                    raw_combos.clear()
                raw_combos[ck] = (key, leaf)
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
            got_ids = ids.get(ws)
            if eid is not None:
                if got_ids is None:
                    got_ids = ids[ws] = set()
                if eid in got_ids:
                    duplicates += 1
                    continue
            reason = self._hold(raw, ts, ws, key, (position, i) if not has_origin else origin(i),
                                None if position is None else position + i, ev_total + confirm)
            if reason is not None:
                rejects.append((i, reason))
                continue
            if eid is not None:
                got_ids.add(eid)
            if ts >= self._generation_end:
                self._new_generation(ts)
                self._regions[key[0]] = {key[1]}
        else:
            if not has_cur or ws != cur_ws:
                if has_wm and ws + window_ms <= wm:
                    if not replaying:
                        rejects.append((i, "late"))
                    continue
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
                    got_ids = ids[ws] = set()
                cur_ids = got_ids
            elif has_wm and ws + window_ms <= wm:
                if not replaying:
                    rejects.append((i, "late"))
                has_cur = False
                continue
            if eid is not None:
                if eid in cur_ids:
                    duplicates += 1
                    continue
                cur_ids.add(eid)
            service = key[0]
            hit = PyDict_GetItem(cur, service)
            if hit == NULL:
                svc = cur[service] = {}
            else:
                svc = <dict>hit
            hit = PyDict_GetItem(svc, leaf)
            svc[leaf] = 1 if hit == NULL else <object>hit + 1
            if not has_max or ts > max_ts:
                max_ts = ts
                has_max = True
                if ts >= self._generation_end:
                    self._new_generation(ts)
                    self._regions[key[0]] = {key[1]}
        accepted += 1
        if ts <= ev_bound:
            if ts > ev_min:
                if ev_min != no_floor:
                    heap_replace(evidence, ts)
                    ev_min = evidence[0]
                else:
                    heap_push(evidence, ts)
                    if len(evidence) == quorum:
                        if frontier == no_floor and max(evidence) - evidence[0] > skew_ms:
                            heap_pop(evidence)
                        else:
                            ev_min = evidence[0]
                if ev_min > frontier:
                    first = frontier == no_floor
                    frontier = ev_min
                    limit = frontier + skew_ms
                    wm = frontier - lateness_ms
                    has_wm = True
                    if has_floor and floor_wm > wm:
                        wm = floor_wm
                    hold_at = wm + lateness_ms + hold_ms
                    if held.items and held.items[0].ts_ms <= hold_at:  # a list test: no __len__ call per advance
                        self.frontier_ms = frontier
                        self.max_ts_ms = max_ts if has_max else None
                        self._release(hold_at, wm if first else None)
                        has_max = self.max_ts_ms is not None
                        if has_max:
                            max_ts = self.max_ts_ms
                        has_cur = False
            evidence_n += 1
            ev_total += 1
            if held.items and held.arrivals[0].deadline <= ev_total and frontier != no_floor:
                for h in held.pop_expired(ev_total):
                    self._expire(h, "ts_skewed")
            if evidence_n >= block:
                evidence.clear()
                evidence_n = 0
                ev_min = no_floor
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


_fields = None
_seconds_ms = None
_combo_cache_size = 0


def configure(fields, seconds_ms, combo_cache_size, evidence_block, min_ts_ms, max_ts_ms):
    """Share the pure path's tables and constants (set once by spikedetect.core.counter; the
    kernel imports nothing from the core, which imports it)."""
    global _fields, _seconds_ms, _combo_cache_size, EVIDENCE_BLOCK
    if (min_ts_ms, max_ts_ms) != (C_MIN_TS, C_MAX_TS):
        raise ValueError("the kernel's timestamp range differs from spikedetect.core.timefmt's")
    _fields = fields
    _seconds_ms = seconds_ms
    _combo_cache_size = combo_cache_size
    EVIDENCE_BLOCK = evidence_block
