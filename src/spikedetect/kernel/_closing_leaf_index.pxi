# Included by _closing.pyx (one module): the leaf parts of key objects seen before, found by the
# objects' identity (spikedetect.core.leaves: leaf_frame's fast path).
#
# A counter hands out the same key tuple for a leaf window after window, so a map from the
# (service, key) objects themselves to the key's part ids finds a leaf without hashing the tuple
# or reading its strings. The map holds a reference to both objects: neither can be freed, so
# their addresses cannot be reused by another object while the entry exists, and a tuple and its
# strings never change - an entry stays right until the ids themselves are forgotten (clear).

from cpython.ref cimport Py_INCREF, Py_DECREF


cdef extern from *:
    void __builtin_prefetch(const void* p) noexcept nogil


cdef struct _Entry:  # one cache line fetch per probe: the objects and the ids together
    PyObject* svc
    PyObject* key
    int ids[3]


cdef class LeafIndex:
    """Open addressing (linear probing, at most half full) from ``(service, key)`` object
    addresses to the key's three part ids; ``inserting``: whether misses are added (leaf_frame
    turns it off while hardly any key object comes back, as decoded partials never do)."""

    cdef _Entry* table
    cdef Py_ssize_t mask, used
    cdef public bint inserting
    cdef public Py_ssize_t frames

    def __cinit__(self):
        self.table = NULL
        self.used = 0
        self.inserting = True
        self.frames = 0
        self._alloc(1024)

    def __dealloc__(self):
        self._release()
        free(self.table)

    def __len__(self):
        return self.used

    def __reduce__(self):
        """A copy (deepcopy, pickle) starts empty: the index is a cache of what its table knows."""
        return (LeafIndex, ())

    cdef int _alloc(self, Py_ssize_t cap) except -1:
        self.table = <_Entry*>calloc(cap, sizeof(_Entry))
        if self.table == NULL:
            raise MemoryError()
        self.mask = cap - 1
        return 0

    cdef void _release(self):
        cdef Py_ssize_t i
        if self.table == NULL:
            return
        for i in range(self.mask + 1):
            if self.table[i].key != NULL:
                Py_DECREF(<object>self.table[i].key)
                Py_DECREF(<object>self.table[i].svc)
                self.table[i].key = self.table[i].svc = NULL
        self.used = 0

    def clear(self):
        """Forget every entry (their ids are no longer the table's)."""
        self._release()
        self.inserting = True

    cdef inline Py_ssize_t _home(self, PyObject* svc, PyObject* key) noexcept:
        """Where the probe for ``(svc, key)`` starts."""
        cdef size_t h = ((<size_t>key >> 4) ^ ((<size_t>svc >> 4) << 17)) * <size_t>0x9E3779B97F4A7C15ULL
        return <Py_ssize_t>(h >> 20) & self.mask

    cdef inline void prefetch(self, PyObject* svc, PyObject* key) noexcept:
        """Start loading the entry where ``(svc, key)``'s probe starts (the table outgrows the
        caches: a window's lookups wait on memory one after another unless they are started
        together first)."""
        __builtin_prefetch(&self.table[self._home(svc, key)])

    cdef inline _Entry* find(self, PyObject* svc, PyObject* key) noexcept:
        """The entry of ``(svc, key)``, or the empty one where it would go (``key`` NULL)."""
        cdef Py_ssize_t i = self._home(svc, key)
        while self.table[i].key != NULL and (self.table[i].key != key or self.table[i].svc != svc):
            i = (i + 1) & self.mask
        return &self.table[i]

    cdef int put(self, object svc, object key, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c) except -1:
        """Add ``(svc, key)`` (not in the map) with its part ids (below 2**31)."""
        cdef _Entry* e
        if a > 2147483647 or b > 2147483647 or c > 2147483647:
            return 0  # (never: ids count the table's parts) not kept
        if 2 * (self.used + 1) > self.mask + 1:
            self._grow()
        e = self.find(<PyObject*>svc, <PyObject*>key)
        Py_INCREF(svc)
        Py_INCREF(key)
        e.svc, e.key = <PyObject*>svc, <PyObject*>key
        e.ids[0], e.ids[1], e.ids[2] = <int>a, <int>b, <int>c
        self.used += 1
        return 0

    cdef int _grow(self) except -1:
        """Twice the room, every entry moved (its references with it)."""
        cdef _Entry* old = self.table
        cdef Py_ssize_t i, cap = self.mask + 1
        self.table = NULL
        try:
            self._alloc(2 * cap)
        except MemoryError:
            self.table, self.mask = old, cap - 1
            raise
        for i in range(cap):
            if old[i].key != NULL:
                self.find(old[i].svc, old[i].key)[0] = old[i]
        free(old)
        return 0
