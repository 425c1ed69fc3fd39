# Included by _count.pyx (one module): the C scanner of the common line and the timestamp
# range it accepts; cache_key and scan_ts expose it to the tests; configure shares the pure
# path's tables and constants.

cdef int64_t C_MIN_TS = 946_684_800_000  # 2000-01-01T00:00:00Z, checked by configure()
cdef int64_t C_MAX_TS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
cdef Py_ssize_t EVIDENCE_BLOCK = 0
_fields = None
_seconds_ms = None
_combo_cache_size = 0

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
        i = spd_span(s, i, n, 128)  # (the key's end: _span.pxi)
        if i >= n or s[i] != b'"':
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
            # service ... source: raw bytes are only a cache key (a hit means these bytes were
            # decoded and admitted), so any byte from 32 on; other values ASCII without DEL
            i = spd_span(s, i, n, 256 if f >= F_SERVICE and f <= F_SOURCE else 127)
            if i >= n or s[i] != b'"':
                return 0
            if f != F_OTHER:  # (start and length have no room for other fields)
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
