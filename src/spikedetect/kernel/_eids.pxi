# Included by _count.pyx (one module): a window's event ids as the kernel keeps them - raw UTF-8
# bytes in a C hash set, no str object per line. It answers ``in``, ``add``, ``len`` and
# iteration (as str) like the set of str the pure path keeps, so both paths share the windows.


cdef inline uint64_t _bytes_hash(const char* p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 0x452821E638D01377
    h ^= _HASH_SEED
    return _span_hash(h, <const unsigned char*>p, n)


cdef class EidSet:
    """The event ids seen in one window (UTF-8 bytes back to back in ``arena``; membership in
    the C table, or in the Python set ``members`` once a lookup probed past ``_max_probes``)."""

    cdef int32_t* table  # bucket -> entry, -1 empty; linear probing
    cdef uint64_t* hashes
    cdef Py_ssize_t* offs
    cdef Py_ssize_t mask, n, cap, used, arena_cap
    cdef char* arena
    cdef set members

    def __cinit__(self, EidSet like=None):
        """``like``: a set whose size this one will likely reach (the window before): room for
        a quarter more ids and bytes than it holds is made at once, so a window's set is not
        grown and rehashed from 16 buckets every window (only the room differs, never an answer)."""
        cdef Py_ssize_t want = 0 if like is None else like.n + like.n // 4
        self.mask = 15
        while 2 * want > self.mask + 1:
            self.mask = 2 * self.mask + 1
        self.table = <int32_t*>_grow(NULL, (self.mask + 1) * sizeof(int32_t))
        memset(self.table, 0xFF, (self.mask + 1) * sizeof(int32_t))
        if want:
            self.cap = want + 2
            self.hashes = <uint64_t*>_grow(NULL, self.cap * sizeof(uint64_t))
            self.offs = <Py_ssize_t*>_grow(NULL, self.cap * sizeof(Py_ssize_t))
            self.offs[0] = 0
            self.arena_cap = like.used + like.used // 4 + 256
            self.arena = <char*>_grow(NULL, self.arena_cap)

    def __dealloc__(self):
        free(self.table)
        free(self.hashes)
        free(self.offs)
        free(self.arena)

    cdef Py_ssize_t _find(self, const char* p, Py_ssize_t n, uint64_t h) noexcept:
        """The bucket holding the id, or the empty bucket where it would go; -1 past
        ``_max_probes`` buckets."""
        cdef Py_ssize_t b = <Py_ssize_t>(h & <uint64_t>self.mask), e, probes = 0
        while True:
            e = self.table[b]
            if e < 0 or (self.hashes[e] == h and self.offs[e + 1] - self.offs[e] == n
                         and memcmp(self.arena + self.offs[e], p, n) == 0):
                return b
            probes += 1
            if probes > _max_probes:
                return -1
            b = (b + 1) & self.mask

    cdef int has_add(self, const char* p, Py_ssize_t n) except -1:
        """1 if the id is here already; else 0, and it is added."""
        cdef uint64_t h = 0
        cdef Py_ssize_t b = -1
        if self.members is None:
            h = _bytes_hash(p, n)
            b = self._find(p, n, h)
            if b < 0:
                self._degrade()
            elif self.table[b] >= 0:
                return 1
        if self.members is not None:
            raw = PyBytes_FromStringAndSize(p, n)
            if raw in self.members:
                return 1
            self.members.add(raw)
        self._reserve(n)
        memcpy(self.arena + self.used, p, n)
        self.used += n
        self.offs[self.n + 1] = self.used
        self.n += 1
        if self.members is not None:
            return 0
        self.hashes[self.n - 1] = h
        if 2 * self.n > self.mask + 1:
            self._rehash()
        else:
            self.table[b] = <int32_t>(self.n - 1)
        return 0

    cdef int _degrade(self) except -1:
        """Keep membership in a Python set of bytes from now on (the arena keeps the order)."""
        cdef Py_ssize_t e
        self.members = {PyBytes_FromStringAndSize(self.arena + self.offs[e], self.offs[e + 1] - self.offs[e])
                        for e in range(self.n)}
        return 0

    @property
    def degraded(self):
        """True once membership moved to the Python set (see ``_max_probes``)."""
        return self.members is not None

    cdef int _reserve(self, Py_ssize_t n) except -1:
        if self.n + 2 > self.cap:
            self.cap = 2 * self.cap + 16
            self.hashes = <uint64_t*>_grow(self.hashes, self.cap * sizeof(uint64_t))
            self.offs = <Py_ssize_t*>_grow(self.offs, self.cap * sizeof(Py_ssize_t))
            self.offs[0] = 0
        if self.used + n > self.arena_cap:
            self.arena_cap = 2 * (self.used + n) + 256
            self.arena = <char*>_grow(self.arena, self.arena_cap)
        return 0

    cdef int _rehash(self) except -1:
        cdef Py_ssize_t buckets = 2 * (self.mask + 1), e, b
        self.table = <int32_t*>_grow(self.table, buckets * sizeof(int32_t))
        memset(self.table, 0xFF, buckets * sizeof(int32_t))
        self.mask = buckets - 1
        for e in range(self.n):
            b = <Py_ssize_t>(self.hashes[e] & <uint64_t>self.mask)
            while self.table[b] >= 0:
                b = (b + 1) & self.mask
            self.table[b] = <int32_t>e
        return 0

    def __contains__(self, eid):
        cdef bytes raw = (<str?>eid).encode("utf-8", "surrogatepass")
        cdef Py_ssize_t b
        if self.members is None:
            b = self._find(raw, len(raw), _bytes_hash(raw, len(raw)))
            if b >= 0:
                return self.table[b] >= 0
            self._degrade()
        return raw in self.members

    def add(self, eid):
        cdef bytes raw = (<str?>eid).encode("utf-8", "surrogatepass")
        self.has_add(raw, len(raw))

    def __len__(self):
        return self.n

    def __iter__(self):
        cdef Py_ssize_t e
        for e in range(self.n):
            yield PyBytes_FromStringAndSize(self.arena + self.offs[e], self.offs[e + 1] - self.offs[e]).decode(
                "utf-8", "surrogatepass")


cdef bint _seen(object ids, EidSet eids, bint raw, const char* p, Py_ssize_t n, object eid) except -1:
    """True: a duplicate in the current window (``ids``; ``eids`` when it is an EidSet); else
    the id is recorded. ``raw``: the id is the scanned span ``p[:n]``, else the str ``eid``."""
    if raw and eids is not None:
        return eids.has_add(p, n)
    if raw:
        eid = PyUnicode_DecodeASCII(p, n, NULL)
    if eid in ids:
        return True
    ids.add(eid)
    return False
