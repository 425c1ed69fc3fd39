# Included by _count.pyx (one module): the frontier's evidence heap (WindowCounter._evidence, a
# heapq min-heap of the quorum newest evidence times) as a C array during a batch - heapq's own
# sift steps, so the list written back holds the same values in the same order.


cdef struct Heap:
    int64_t* v
    Py_ssize_t n


cdef inline void _sift_down(Heap* h, Py_ssize_t start, Py_ssize_t pos) noexcept:
    """heapq's _siftdown: the item at ``pos`` moves up while smaller than its parent."""
    cdef int64_t item = h.v[pos], parent
    cdef Py_ssize_t parentpos
    while pos > start:
        parentpos = (pos - 1) >> 1
        parent = h.v[parentpos]
        if not item < parent:
            break
        h.v[pos] = parent
        pos = parentpos
    h.v[pos] = item


cdef inline void _sift_up(Heap* h, Py_ssize_t pos) noexcept:
    """heapq's _siftup: the smaller child moves up to a leaf, then _siftdown from there."""
    cdef Py_ssize_t start = pos, child, limit = h.n >> 1
    cdef int64_t item = h.v[pos]
    while pos < limit:
        child = 2 * pos + 1
        if child + 1 < h.n and not h.v[child] < h.v[child + 1]:
            child += 1
        h.v[pos] = h.v[child]
        pos = child
    h.v[pos] = item
    _sift_down(h, start, pos)


cdef inline void _heap_replace(Heap* h, int64_t item) noexcept:
    h.v[0] = item
    _sift_up(h, 0)


cdef inline void _heap_push(Heap* h, int64_t item) noexcept:
    h.v[h.n] = item
    h.n += 1
    _sift_down(h, 0, h.n - 1)


cdef inline void _heap_pop(Heap* h) noexcept:
    h.n -= 1
    if h.n:
        h.v[0] = h.v[h.n]
        _sift_up(h, 0)


cdef inline int64_t _heap_max(Heap* h) noexcept:
    cdef int64_t m = h.v[0]
    cdef Py_ssize_t k
    for k in range(1, h.n):
        if h.v[k] > m:
            m = h.v[k]
    return m


cdef bytearray _heap_load(Heap* h, list evidence, Py_ssize_t quorum):
    """Copy the list into a C array (in a bytearray the caller keeps: freed with it)."""
    cdef Py_ssize_t k, n = len(evidence)
    cdef bytearray buf = bytearray(8 * (max(n, quorum) + 1))
    h.v = <int64_t*><char*>buf
    h.n = n
    for k in range(n):
        h.v[k] = evidence[k]
    return buf


cdef void _heap_store(Heap* h, list evidence):
    evidence[:] = [h.v[k] for k in range(h.n)]
