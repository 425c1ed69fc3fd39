# Included by _closing.pyx (one module), after _closing_breakdown.pxi: expand.breakdown of one
# service over a window's frame (spikedetect.core.leaves) - pass 1 reads the frame's part ids,
# passes 2 and 3 are _closing_breakdown.pxi's.
#
# Only for windows whose counts are all Python ints (the frame says so): then the reference's
# sums are Python ints, as passes 2 and 3 build them. Per leaf, in the frame's (the dict's)
# order: its region's path of wanted keys (found once per region), and for a leaf on a path its
# category and source given local ids in order of first sight.


cdef object _scan_frame(const Py_ssize_t[:, ::1] parts, const double[::1] counts, Py_ssize_t lo, Py_ssize_t hi,
                        list regions, list category_names, list source_names, object wanted, object keys_of,
                        _Leaves* lv, list paths, _Ids keys, _Ids pairs, list pair_key, _Ids cats, _Ids srcs):
    """Pass 1 over the frame's leaves ``[lo, hi)``: per leaf its path, category and source ids
    and count; the number of additions, or None when a count or name does not fit."""
    cdef dict path_ids = {}
    cdef dict cat_ids = {}
    cdef dict src_ids = {}
    cdef PyObject* hit
    cdef Py_ssize_t i, t, adds = 0
    cdef double v
    for i in range(lo, hi):
        t = i - lo
        v = counts[i]
        if v >= _COUNT_BOUND or v <= -_COUNT_BOUND:
            return None
        hit = PyDict_GetItem(path_ids, parts[0, i])
        if hit == NULL:
            path = _path_of(keys_of((<tuple>regions[parts[0, i]])[1]), wanted, keys, pairs, pair_key)
            if path is None:
                return None
            path_ids[parts[0, i]] = len(paths)
            paths.append(path)
            lv.path[t] = len(paths) - 1
        else:
            lv.path[t] = <object>hit
        if paths[lv.path[t]]:
            lv.cat[t] = _local_id(cat_ids, parts[1, i], category_names, cats)
            lv.src[t] = _local_id(src_ids, parts[2, i], source_names, srcs)
            if lv.cat[t] < 0 or lv.src[t] < 0:
                return None
            adds += len(paths[lv.path[t]])
        else:
            lv.path[t] = -1
        lv.count[t] = <int64_t>v
    return adds


cdef Py_ssize_t _local_id(dict seen, Py_ssize_t part, list names, _Ids ids) except -2:
    """The id, in order of first sight, of the name with table id ``part``; -1 when the name is
    not a plain str."""
    cdef PyObject* hit = PyDict_GetItem(seen, part)
    if hit != NULL:
        return <object>hit
    name = names[part]
    if not PyUnicode_CheckExact(name):
        return -1
    got = ids.of(name)
    seen[part] = got
    return got


def frame_breakdown_sums(const Py_ssize_t[:, ::1] parts, const double[::1] counts, Py_ssize_t lo, Py_ssize_t hi,
                         list regions, list category_names, list source_names, object wanted, object keys_of,
                         object make):
    """``breakdown_sums`` of the leaves ``[lo, hi)`` of a frame whose counts are all Python ints
    (``regions``, ``category_names``, ``source_names``: the names of the parts' ids), or None
    (nothing built) where the sums would not fit: the caller walks the leaf dict then."""
    cdef Py_ssize_t n = hi - lo
    cdef _Leaves lv
    if lo < 0 or hi > counts.shape[0] or hi > parts.shape[1] or parts.shape[0] != 3:
        raise IndexError("frame_breakdown_sums: span out of bounds")
    if n <= 0 or n >= _COUNT_BOUND:
        return None
    lv.path = <int32_t*>malloc(n * sizeof(int32_t))
    lv.cat = <int32_t*>malloc(n * sizeof(int32_t))
    lv.src = <int32_t*>malloc(n * sizeof(int32_t))
    lv.count = <int64_t*>malloc(n * sizeof(int64_t))
    try:
        if lv.path == NULL or lv.cat == NULL or lv.src == NULL or lv.count == NULL:
            raise MemoryError()
        return _frame_breakdown_ints(parts, counts, lo, hi, regions, category_names, source_names, wanted, keys_of,
                                     make, &lv)
    finally:
        free(lv.path)
        free(lv.cat)
        free(lv.src)
        free(lv.count)


cdef object _frame_breakdown_ints(const Py_ssize_t[:, ::1] parts, const double[::1] counts, Py_ssize_t lo,
                                  Py_ssize_t hi, list regions, list category_names, list source_names, object wanted,
                                  object keys_of, object make, _Leaves* lv):
    """Pass 1 read from the frame, then passes 2 and 3."""
    cdef list paths = [], pair_key = []
    cdef _Ids keys = _Ids(), pairs = _Ids(), cats = _Ids(), srcs = _Ids()
    adds = _scan_frame(parts, counts, lo, hi, regions, category_names, source_names, wanted, keys_of, lv, paths, keys,
                       pairs, pair_key, cats, srcs)
    return _sums_of_scan(adds, lv, hi - lo, paths, keys, pairs, pair_key, cats, srcs, make)
