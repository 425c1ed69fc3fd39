# Included by _closing.pyx (one module), after _closing_breakdown.pxi: expand.breakdown of one
# service over a window's frame (spikedetect.core.leaves) - pass 1 reads the frame's part ids,
# passes 2 and 3 are _closing_breakdown.pxi's.
#
# Only for windows whose counts are all Python ints (the frame says so): then the reference's
# sums are Python ints, as passes 2 and 3 build them. Per leaf, in the frame's (the dict's)
# order: its region's path of wanted keys (found once per region), and for a leaf on a path its
# category and source given local ids in order of first sight.


cdef struct _Seen:
    int32_t* path  # per table id of a region, category, source: its local id (-2: not met yet)
    int32_t* cat
    int32_t* src
    Py_ssize_t n_path, n_cat, n_src


cdef object _scan_frame(const Py_ssize_t[:, ::1] parts, const double[::1] counts, Py_ssize_t lo, Py_ssize_t hi,
                        list regions, list category_names, list source_names, object wanted, object keys_of,
                        _Leaves* lv, list paths, _Ids keys, _Ids pairs, list pair_key, _Ids cats, _Ids srcs,
                        _Seen* seen):
    """Pass 1 over the frame's leaves ``[lo, hi)``: per leaf its path, category and source ids
    and count; the number of additions, or None when a count, id or name does not fit. The ids
    met are looked up in ``seen``'s arrays (indexed by table id), so a leaf whose parts were met
    before costs no Python object."""
    cdef Py_ssize_t i, t, g, c, r, adds = 0
    cdef int32_t got
    cdef double v
    for i in range(lo, hi):
        t = i - lo
        v = counts[i]
        if v >= _COUNT_BOUND or v <= -_COUNT_BOUND:
            return None
        g = parts[0, i]
        if g < 0 or g >= seen.n_path:
            return None
        got = seen.path[g]
        if got == -2:
            path = _path_of(keys_of((<tuple>regions[g])[1]), wanted, keys, pairs, pair_key)
            if path is None:
                return None
            # a region with no wanted key on it is -1 (skipped); the others index ``paths``
            got = len(paths) if path else -1
            if path:
                paths.append(path)
            seen.path[g] = got
        lv.path[t] = got
        if got >= 0:
            c = parts[1, i]
            r = parts[2, i]
            if c < 0 or c >= seen.n_cat or r < 0 or r >= seen.n_src:
                return None
            if seen.cat[c] == -2:
                seen.cat[c] = _local_id(category_names[c], cats)
            if seen.src[r] == -2:
                seen.src[r] = _local_id(source_names[r], srcs)
            lv.cat[t] = seen.cat[c]
            lv.src[t] = seen.src[r]
            if lv.cat[t] < 0 or lv.src[t] < 0:
                return None
            adds += len(<tuple>paths[got]) // 2
        lv.count[t] = <int64_t>v
    return adds


cdef int32_t _local_id(object name, _Ids ids) except -2:
    """The id, in order of first sight, of a name; -1 when it is not a plain str."""
    if not PyUnicode_CheckExact(name):
        return -1
    return <int32_t>ids.of(name)


def frame_breakdown_sums(const Py_ssize_t[:, ::1] parts, const double[::1] counts, Py_ssize_t lo, Py_ssize_t hi,
                         list regions, list category_names, list source_names, object wanted, object keys_of,
                         object make, object into=None):
    """``breakdown_sums`` of the leaves ``[lo, hi)`` of a frame whose counts are all Python ints
    (``regions``, ``category_names``, ``source_names``: the names of the parts' ids), or None
    (nothing built, nothing added) where the sums would not fit: the caller walks the leaf dict
    then. With ``into`` (targets, service, index, expected, scale, cap), the targets' keys are
    added into their incidents' sums instead (``_sums_into``) and left out of the result."""
    cdef Py_ssize_t n = hi - lo, i
    cdef _Leaves lv
    cdef _Seen seen
    if lo < 0 or hi > counts.shape[0] or hi > parts.shape[1] or parts.shape[0] != 3:
        raise IndexError("frame_breakdown_sums: span out of bounds")
    if n <= 0 or n >= _COUNT_BOUND:
        return None
    seen.n_path, seen.n_cat, seen.n_src = len(regions), len(category_names), len(source_names)
    lv.path = <int32_t*>malloc(n * sizeof(int32_t))
    lv.cat = <int32_t*>malloc(n * sizeof(int32_t))
    lv.src = <int32_t*>malloc(n * sizeof(int32_t))
    lv.count = <int64_t*>malloc(n * sizeof(int64_t))
    seen.path = <int32_t*>malloc((seen.n_path + 1) * sizeof(int32_t))
    seen.cat = <int32_t*>malloc((seen.n_cat + 1) * sizeof(int32_t))
    seen.src = <int32_t*>malloc((seen.n_src + 1) * sizeof(int32_t))
    try:
        if (lv.path == NULL or lv.cat == NULL or lv.src == NULL or lv.count == NULL or seen.path == NULL
                or seen.cat == NULL or seen.src == NULL):
            raise MemoryError()
        for i in range(seen.n_path):
            seen.path[i] = -2
        for i in range(seen.n_cat):
            seen.cat[i] = -2
        for i in range(seen.n_src):
            seen.src[i] = -2
        return _frame_breakdown_ints(parts, counts, lo, hi, regions, category_names, source_names, wanted, keys_of,
                                     make, into, &lv, &seen)
    finally:
        free(lv.path)
        free(lv.cat)
        free(lv.src)
        free(lv.count)
        free(seen.path)
        free(seen.cat)
        free(seen.src)


cdef object _frame_breakdown_ints(const Py_ssize_t[:, ::1] parts, const double[::1] counts, Py_ssize_t lo,
                                  Py_ssize_t hi, list regions, list category_names, list source_names, object wanted,
                                  object keys_of, object make, object into, _Leaves* lv, _Seen* seen):
    """Pass 1 read from the frame, then passes 2 and 3."""
    cdef list paths = [], pair_key = []
    cdef _Ids keys = _Ids(), pairs = _Ids(), cats = _Ids(), srcs = _Ids()
    adds = _scan_frame(parts, counts, lo, hi, regions, category_names, source_names, wanted, keys_of, lv, paths, keys,
                       pairs, pair_key, cats, srcs, seen)
    return _sums_of_scan(adds, lv, hi - lo, paths, keys, pairs, pair_key, cats, srcs, make, into)
