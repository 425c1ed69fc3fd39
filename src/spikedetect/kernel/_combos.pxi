# Included by _count.pyx (one module): the raw combination cache - admitted (service, region,
# category, source) by their raw field bytes, in a C open-addressing table (no bytes object and
# no siphash per line) - and the per-window counts of the current window, kept per cache slot
# in C until the counting loop flushes them into the window's dicts in first-touch order.

from libc.stdint cimport int32_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memset
from cpython.exc cimport PyErr_Occurred

from os import urandom as _urandom


cdef extern from *:
    void __builtin_prefetch(const void* p) noexcept nogil


cdef struct Slot:  # one cached combination (64 bytes: one cache line)
    uint64_t hash
    int64_t gen  # the generation whose region set holds its region
    int64_t pend  # the current window's count not yet in its dict
    Py_ssize_t off  # its raw key fields in the arena, back to back
    PyObject* service  # borrowed: entries[i] holds (key, leaf)
    PyObject* leaf
    int32_t lens[4]


# Both tables hash bytes a producer chooses; a seed drawn per process keeps anyone from
# precomputing colliding keys (Python's str hash is seeded for the same reason). Only where
# an entry sits in a table depends on it; every order the kernel hands out is first-touch.
cdef uint64_t _HASH_SEED = <uint64_t>int.from_bytes(_urandom(8), "little")
# The seed makes collisions hard to find, not impossible: a lookup that probes more than this
# many buckets gives up on the table (the combination goes the slow path uncached; an EidSet
# turns into a Python set of bytes), so no input can make a window's counting quadratic.
cdef Py_ssize_t _max_probes = 128


def _set_max_probes(Py_ssize_t n):
    """Set the probe cap (tests force the fallbacks with 0); returns the old one."""
    global _max_probes
    old, _max_probes = _max_probes, n
    return old


cdef inline uint64_t _mix(uint64_t h, uint64_t w) noexcept nogil:
    h = (h ^ w) * <uint64_t>0x9E3779B97F4A7C15
    return h ^ (h >> 29)


cdef inline uint64_t _span_hash(uint64_t h, const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """Mix ``p[:n]`` into ``h``: 8-byte words, then the tail with the length in its top byte."""
    cdef uint64_t w
    while n >= 8:
        memcpy(&w, p, 8)
        h = _mix(h, w)
        p += 8
        n -= 8
    w = 0
    memcpy(&w, p, n)
    return _mix(h, w ^ (<uint64_t>(n + 1) << 56))


cdef uint64_t _combo_hash(const unsigned char* s, Scan* sc) noexcept nogil:
    """A fast non-cryptographic hash of the four key fields' raw bytes and lengths."""
    cdef uint64_t h = 0x243F6A8885A308D3
    cdef int f
    h ^= _HASH_SEED
    for f in range(F_SERVICE, F_SOURCE + 1):
        h = _span_hash(h, s + sc.start[f], sc.length[f])
    return h


cdef void* _grow(void* p, Py_ssize_t size) except NULL:
    cdef void* q = realloc(p, size if size > 0 else 1)
    if q == NULL:
        raise MemoryError()
    return q


cdef class RawCombos:
    """Slot i (``slots[i]``): the raw key fields (in ``arena``), their hash, the cached
    ``(key, leaf)`` (``entries[i]``), the generation whose region set holds its region, and the
    current window's not yet flushed count (``touched`` lists the counted slots in first-touch order)."""

    cdef int32_t* table  # bucket -> slot, -1 empty; linear probing
    cdef Py_ssize_t mask, n, cap, arena_used, arena_cap, ntouched
    cdef Slot* slots
    cdef int32_t* touched
    cdef Py_hash_t* leaf_hash  # hash(entries[i][1]), so a flush hashes no tuple
    cdef char* arena
    cdef list entries

    def __cinit__(self):
        self.entries = []
        self.mask = 1023
        self.table = <int32_t*>_grow(NULL, 1024 * sizeof(int32_t))
        memset(self.table, 0xFF, 1024 * sizeof(int32_t))

    def __dealloc__(self):
        free(self.table)
        free(self.slots)
        free(self.touched)
        free(self.leaf_hash)
        free(self.arena)

    def __len__(self):
        return self.n

    cdef Py_ssize_t find(self, const unsigned char* s, Scan* sc, uint64_t h) noexcept:
        """The slot of these key fields, -1 if absent, -2 if absent within ``_max_probes``
        buckets (then it is not to be cached: see ``_max_probes``)."""
        cdef Py_ssize_t b = <Py_ssize_t>(h & <uint64_t>self.mask), slot, off, probes = 0
        cdef Slot* e
        cdef int f
        while True:
            slot = self.table[b]
            if slot < 0:
                return -1
            e = self.slots + slot
            if e.hash == h:
                if (e.lens[0] == sc.length[1] and e.lens[1] == sc.length[2] and e.lens[2] == sc.length[3]
                        and e.lens[3] == sc.length[4]):
                    off = e.off
                    for f in range(1, 5):
                        if memcmp(self.arena + off, s + sc.start[f], sc.length[f]) != 0:
                            break
                        off += sc.length[f]
                    else:
                        return slot
            probes += 1
            if probes > _max_probes:
                return -2
            b = (b + 1) & self.mask

    cdef int _reserve(self) except -1:
        """Room for one more slot, and a table at most half full."""
        cdef Py_ssize_t cap, b, i, buckets
        if self.n == self.cap:
            cap = 2 * self.cap if self.cap else 256
            self.slots = <Slot*>_grow(self.slots, cap * sizeof(Slot))
            self.touched = <int32_t*>_grow(self.touched, cap * sizeof(int32_t))
            self.leaf_hash = <Py_hash_t*>_grow(self.leaf_hash, cap * sizeof(Py_hash_t))
            self.cap = cap
        if 2 * (self.n + 1) > self.mask + 1:
            buckets = 2 * (self.mask + 1)
            self.table = <int32_t*>_grow(self.table, buckets * sizeof(int32_t))
            memset(self.table, 0xFF, buckets * sizeof(int32_t))
            self.mask = buckets - 1
            for i in range(self.n):
                b = <Py_ssize_t>(self.slots[i].hash & <uint64_t>self.mask)
                while self.table[b] >= 0:
                    b = (b + 1) & self.mask
                self.table[b] = <int32_t>i
        return 0

    cdef Py_ssize_t add(self, const unsigned char* s, Scan* sc, uint64_t h, tuple key, tuple leaf,
                        int64_t gen) except -1:
        """A new slot for key fields that :meth:`find` did not find."""
        cdef Py_ssize_t slot = self.n, size = sc.length[1] + sc.length[2] + sc.length[3] + sc.length[4]
        cdef Py_ssize_t b
        cdef int f
        cdef Slot* e
        self._reserve()
        e = self.slots + slot
        if self.arena_used + size > self.arena_cap:
            self.arena_cap = 2 * (self.arena_used + size) + 4096
            self.arena = <char*>_grow(self.arena, self.arena_cap)
        e.off = self.arena_used
        for f in range(1, 5):
            memcpy(self.arena + self.arena_used, s + sc.start[f], sc.length[f])
            self.arena_used += sc.length[f]
            e.lens[f - 1] = <int32_t>sc.length[f]
        e.hash = h
        e.gen = gen
        e.pend = 0
        e.service = <PyObject*>key[0]
        e.leaf = <PyObject*>leaf
        self.leaf_hash[slot] = hash(leaf)
        self.entries.append((key, leaf))  # keeps service and leaf alive
        b = <Py_ssize_t>(h & <uint64_t>self.mask)
        while self.table[b] >= 0:
            b = (b + 1) & self.mask
        self.table[b] = <int32_t>slot
        self.n += 1
        return slot

    def clear(self):
        """Forget every combination (pending counts must have been flushed)."""
        self.n = self.arena_used = self.ntouched = 0
        self.entries.clear()
        memset(self.table, 0xFF, (self.mask + 1) * sizeof(int32_t))

    def as_dict(self):
        """``{key bytes: (key, leaf, generation)}`` in insertion order, keys joined by NUL as
        :func:`cache_key` builds them (for tests)."""
        cdef Py_ssize_t i, off
        cdef int f
        out = {}
        for i in range(self.n):
            parts = []
            off = self.slots[i].off
            for f in range(4):
                parts.append(PyBytes_FromStringAndSize(self.arena + off, self.slots[i].lens[f]))
                off += self.slots[i].lens[f]
            key, leaf = self.entries[i]
            out[b"\0".join(parts)] = (key, leaf, self.slots[i].gen)
        return out


cdef int _flush(RawCombos rc, dict cur) except -1:
    """Add the current window's pending counts to its dict, slots in first-touch order (so every
    dict's insertion order is the one counting line by line gives)."""
    cdef Py_ssize_t j
    cdef Slot* e
    cdef PyObject* last = NULL  # the service object of the slot before, and its leaf dict in cur
    cdef dict svc = None
    for j in range(rc.ntouched):
        e = rc.slots + rc.touched[j]
        if e.service != last:
            svc = _service_dict(cur, <object>e.service)
            last = e.service
        _add_known(svc, <object>e.leaf, e.pend, rc.leaf_hash[rc.touched[j]])
        e.pend = 0
    rc.ntouched = 0
    return 0


cdef bint _register(dict regions_of, tuple key, Py_ssize_t max_keys) except -1:
    """Count a cached combination's region in the current generation's budget of its service;
    False when the budget is spent (too_many_keys)."""
    regions = regions_of.get(key[0])
    if regions is None:
        regions = regions_of[key[0]] = set()
    if key[1] not in regions:
        if len(regions) >= max_keys:
            return False
        regions.add(key[1])
    return True


cdef inline void _touch(RawCombos rc, Py_ssize_t slot) noexcept:
    """One more report of a slot's combination in the current window."""
    cdef Slot* e = rc.slots + slot
    if e.pend == 0:
        rc.touched[rc.ntouched] = <int32_t>slot
        rc.ntouched += 1
        __builtin_prefetch(e.leaf)  # _flush reads it
    e.pend += 1


cdef dict _service_dict(dict cur, object service):
    """A service's leaf dict in its window's dict (made empty when it has none yet)."""
    cdef PyObject* hit = PyDict_GetItem(cur, service)
    if hit == NULL:
        got = cur[service] = {}
        return got
    return <dict>hit


cdef extern from *:
    """
    #if PY_VERSION_HEX < 0x030D0000
    #define spk_dict_get_known(d, k, h) _PyDict_GetItem_KnownHash(d, k, h)
    #define spk_dict_set_known(d, k, v, h) _PyDict_SetItem_KnownHash(d, k, v, h)
    #else
    #define spk_dict_get_known(d, k, h) PyDict_GetItemWithError(d, k)
    #define spk_dict_set_known(d, k, v, h) PyDict_SetItem(d, k, v)
    #endif
    """
    PyObject* spk_dict_get_known(object d, object k, Py_hash_t h)  # borrowed; NULL: absent (or an error)
    int spk_dict_set_known(object d, object k, object v, Py_hash_t h) except -1


cdef int _add_known(dict svc, object leaf, int64_t count, Py_hash_t h) except -1:
    """``count`` reports of one leaf into its service's dict, the leaf's hash known (CPython before
    3.13: not computed again; RawCombos keeps each cached leaf's)."""
    cdef PyObject* hit = spk_dict_get_known(svc, leaf, h)
    if hit == NULL:
        if PyErr_Occurred():
            return -1
        spk_dict_set_known(svc, leaf, count, h)
    else:
        spk_dict_set_known(svc, leaf, <object>hit + count, h)
    return 0


cdef int _add(dict cur, object service, object leaf, int64_t count) except -1:
    """``count`` reports of one combination into its window's dict."""
    return _add_known(_service_dict(cur, service), leaf, count, hash(leaf))
