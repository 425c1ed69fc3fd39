# Included by _count.pyx (one module), after _combos.pxi and _lines.pxi: the ring of lines
# scanned ahead of the counting loop - each line's scan and combination hash a few lines early,
# its table bucket and slot prefetched before the loop looks them up.

from cpython.list cimport PyList_GET_ITEM

DEF RING = 8  # lines scanned ahead of the one being counted (a power of 2)


cdef struct Ahead:
    Scan scans[RING]
    uint64_t hashes[RING]
    int ok[RING]


cdef inline void _scan_ahead(Ahead* a, list values, Lines lines, Py_ssize_t j, Py_ssize_t max_bytes) noexcept:
    """Scan line j (of ``values``, or of ``lines`` when that is not None) into the ring (a line
    the main loop will reject or that is not bytes is just not scanned: the main loop judges it
    as before)."""
    cdef Py_ssize_t r = j & (RING - 1)
    cdef PyObject* v
    a.ok[r] = 0
    if lines is not None:
        _scan_span(a, r, <const unsigned char*>lines.ptr[j], lines.size[j], max_bytes)
        return
    v = PyList_GET_ITEM(values, j)
    if type(<object>v) is bytes:
        _scan_span(a, r, <const unsigned char*>PyBytes_AS_STRING(<object>v), PyBytes_GET_SIZE(<object>v), max_bytes)


cdef inline void _scan_span(Ahead* a, Py_ssize_t r, const unsigned char* s, Py_ssize_t n,
                            Py_ssize_t max_bytes) noexcept:
    if n <= max_bytes and _scan(s, n, &a.scans[r]):
        a.ok[r] = 1
        a.hashes[r] = _combo_hash(s, &a.scans[r])


cdef inline void _prefetch(Ahead* a, RawCombos rc, Py_ssize_t k, bint arena) noexcept:
    """Line k's bucket is (nearly) fetched: prefetch its slot record, or with ``arena`` (the
    record fetched by now) the slot's raw key bytes."""
    cdef Py_ssize_t r = k & (RING - 1), slot
    if a.ok[r]:
        slot = rc.table[<Py_ssize_t>(a.hashes[r] & <uint64_t>rc.mask)]
        if slot >= 0:
            if arena:
                __builtin_prefetch(rc.arena + rc.slots[slot].off)
            else:
                __builtin_prefetch(rc.slots + slot)


cdef inline void _prefetch_bucket(Ahead* a, RawCombos rc, Py_ssize_t j) noexcept:
    cdef Py_ssize_t r = j & (RING - 1)
    if a.ok[r]:
        __builtin_prefetch(rc.table + <Py_ssize_t>(a.hashes[r] & <uint64_t>rc.mask))
