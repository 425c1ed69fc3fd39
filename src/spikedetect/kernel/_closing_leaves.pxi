# Included by _closing.pyx (one module): a closed window's leaf counts as one frame of interned
# leaf ids and float64 counts (spikedetect.core.leaves), and the per-window sums over that frame
# that replace the walks over the leaf dicts (own reports, share counts, source sums).
#
# Exactness: a frame is only made when every count is a whole number (an int or a float) and the
# window's sum of |count| is below 2**53. Then every partial sum, in any order, is an exact
# integer, so adding the counts as doubles from +0.0 gives the bits the references give adding
# them as Python numbers (from 0 or 0.0) in dict order: x + (-x) and 0.0 + -0.0 are +0.0, as
# the references' sums from 0 are.

from cpython.dict cimport PyDict_Next
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsSsize_t
from cpython.float cimport PyFloat_AS_DOUBLE
from libc.math cimport fabs, floor

cdef double _EXACT = 9007199254740992.0  # 2**53


cdef inline bint _whole(object cnt, double* v):
    """``cnt`` as a double in ``v`` when it is an int or a float holding a whole number of
    magnitude below 2**53 (False otherwise: NaN, inf, fractions, other types)."""
    cdef int overflow = 0
    cdef long long iv
    if type(cnt) is int:
        iv = PyLong_AsLongLongAndOverflow(cnt, &overflow)
        if overflow or iv >= 9007199254740992LL or iv <= -9007199254740992LL:
            return False
        v[0] = <double>iv
        return True
    if type(cnt) is float:
        v[0] = PyFloat_AS_DOUBLE(cnt)
        return fabs(v[0]) < _EXACT and v[0] == floor(v[0])
    return False


cdef inline Py_ssize_t _part_id(object table, object part, object intern, object arg) except -1:
    """``table[part]``, or ``intern(arg, part)`` for a part not in it yet (``table`` may be None)."""
    cdef PyObject* hit = NULL if table is None else PyDict_GetItem(<dict>table, part)
    if hit == NULL:
        return intern(arg, part)
    return PyLong_AsSsize_t(<object>hit)


def leaf_frame(dict per_service, LeafIndex index not None, dict regions, dict categories, dict sources, object intern,
               Py_ssize_t[:, ::1] parts, double[::1] counts, Py_ssize_t[::1] starts) -> int:
    """One pass over ``per_service`` (service -> leaf dict) in dict order: each leaf's region,
    category and source as ids (``parts[0..2]``) - from ``index`` for key objects seen before,
    else ``regions[service][region]``, ``categories[category]``, ``sources[service][source]``
    (``intern(...)`` gives a new one), then added to ``index`` while it is ``inserting`` - its
    count as a double, and where each service starts (``starts``: one more than the services).
    Returns 2 when every count is a Python int, 1 when they are whole numbers, ints or floats;
    0, the arrays half written, when a leaf dict is not a dict, a key not a 3-tuple, or the
    window's counts are not all whole with magnitudes summing below 2**53 (then the callers walk
    the dicts as before)."""
    cdef Py_ssize_t j = 0, k = 0, pos, room = counts.shape[0], misses = 0
    cdef _Entry* e
    cdef PyObject* pk
    cdef PyObject* pv
    cdef PyObject* hit
    cdef object tables
    cdef double v, total = 0.0
    cdef bint ints = True
    if parts.shape[0] != 3 or parts.shape[1] < room or starts.shape[0] < len(per_service) + 1:
        raise ValueError("leaf_frame: arrays too short")
    if len(index):  # every entry's load started before the first is read (they miss the caches)
        for svc, leaf in per_service.items():
            if type(leaf) is dict:
                pos = 0
                while PyDict_Next(<dict>leaf, &pos, &pk, &pv):
                    index.prefetch(<PyObject*>svc, pk)
    for svc, leaf in per_service.items():
        if type(leaf) is not dict:
            return 0
        starts[j] = k
        j += 1
        tables = None  # (service's regions, service's sources, where tuples), on its first miss
        pos = 0
        while PyDict_Next(<dict>leaf, &pos, &pk, &pv):
            if not _whole(<object>pv, &v):
                return 0
            ints = ints and type(<object>pv) is int
            total += fabs(v)
            if k >= room:
                raise ValueError("leaf_frame: more leaves than room")
            e = index.find(<PyObject*>svc, pk)
            if e.key != NULL:
                parts[0, k], parts[1, k], parts[2, k] = e.ids[0], e.ids[1], e.ids[2]
            else:
                if type(<object>pk) is not tuple or len(<tuple>pk) != 3:
                    return 0
                if tables is None:
                    tables = [regions.get(svc), sources.get(svc), (0, svc), (1, svc), (2, svc)]
                _parts_by_value(<tuple>pk, <list>tables, regions, categories, sources, intern, parts, k)
                if index.inserting:
                    index.put(svc, <object>pk, parts[0, k], parts[1, k], parts[2, k])
                misses += 1
            counts[k] = v
            k += 1
    starts[j] = k
    index.frames += 1
    # kept inserting while some key objects come back (a counter's, even when most of a window's
    # leaves are new to the table) - never while every object is new (decoded partials)
    index.inserting = 64 * (k - misses) >= k or index.frames % 64 == 0 or len(index) == 0
    return 0 if total >= _EXACT else 2 if ints else 1


cdef int _parts_by_value(tuple key, list tables, dict regions, dict categories, dict sources, object intern,
                         Py_ssize_t[:, ::1] parts, Py_ssize_t k) except -1:
    """A leaf's part ids by the values of its key (``tables``: the service's region and source
    tables, None until it has one, and the ``intern`` arguments for its parts)."""
    parts[0, k] = _part_id(tables[0], key[0], intern, tables[2])
    parts[1, k] = _part_id(categories, key[1], intern, tables[3])
    parts[2, k] = _part_id(tables[1], key[2], intern, tables[4])
    if tables[0] is None or tables[1] is None:
        svc = tables[2][1]
        tables[0], tables[1] = regions.get(svc), sources.get(svc)
    return 0


def frame_own_reports(const Py_ssize_t[::1] region, const double[::1] counts, const Py_ssize_t[::1] own_row,
                      double[::1] observed, Py_ssize_t[::1] rows) -> Py_ssize_t:
    """``own_reports`` over a frame: each leaf's count added into ``observed`` (zeros) at its
    key's row ``own_row[region[i]]``; the rows given reports into ``rows``, once each, in order of
    first sight. Returns how many, or -1 (nothing written) when a key's row is not known yet
    (below 0)."""
    cdef Py_ssize_t i, g, r, m = 0, n = observed.shape[0], ng = own_row.shape[0], nl = region.shape[0]
    cdef unsigned char* mark
    if rows.shape[0] < nl or counts.shape[0] < nl:
        raise ValueError("frame_own_reports: arrays too short")
    for i in range(nl):
        g = region[i]
        if g < 0 or g >= ng or own_row[g] < 0:
            return -1
        if own_row[g] >= n:
            raise IndexError(f"row {own_row[g]} is out of bounds for {n} rows")
    mark = <unsigned char*>calloc(n + 1, sizeof(unsigned char))
    if mark == NULL:
        raise MemoryError()
    for i in range(nl):
        r = own_row[region[i]]
        if not mark[r]:
            mark[r] = 1
            rows[m] = r
            m += 1
        observed[r] += counts[i]
    free(mark)
    return m


def frame_share_counts(const Py_ssize_t[::1] region, const Py_ssize_t[::1] cat, const double[::1] counts,
                       const Py_ssize_t[::1] start, const Py_ssize_t[::1] length, const Py_ssize_t[::1] col,
                       const Py_ssize_t[::1] flat, double[:, ::1] x) -> bint:
    """``share_counts`` over a frame: each leaf's count added to ``x[r, col[cat[i]]]`` for every
    share row ``r`` on its key's path (``flat[start[g]:start[g] + length[g]]``, ``g = region[i]``).
    False, nothing written, when a path (``start`` below 0) or the column of a leaf with a path
    is not known yet."""
    return _share_counts(region, cat, counts, start, length, col, flat, x, False)


cdef bint _share_counts(const Py_ssize_t[::1] region, const Py_ssize_t[::1] cat, const double[::1] counts,
                        const Py_ssize_t[::1] start, const Py_ssize_t[::1] length, const Py_ssize_t[::1] col,
                        const Py_ssize_t[::1] flat, double[:, ::1] x, bint zero) except -1:
    """:func:`frame_share_counts` (also ``composition_close``'s), ``x`` first set to zeros when
    ``zero`` (and every path and column is known)."""
    cdef Py_ssize_t i, g, j, c, nl = region.shape[0], m = x.shape[0], k = x.shape[1]
    if cat.shape[0] < nl or counts.shape[0] < nl or length.shape[0] < start.shape[0]:
        raise ValueError("frame_share_counts: arrays too short")
    for i in range(nl):
        g = region[i]
        if g < 0 or g >= start.shape[0] or start[g] < 0:
            return False
        if length[g] <= 0:
            continue
        if start[g] + length[g] > flat.shape[0]:
            raise IndexError(f"the path of key {g} is out of bounds")
        c = cat[i]
        if c < 0 or c >= col.shape[0] or col[c] < 0:
            return False
        if col[c] >= k:
            raise IndexError(f"column {col[c]} is out of bounds for {k} columns")
        for j in range(start[g], start[g] + length[g]):
            if flat[j] < 0 or flat[j] >= m:
                raise IndexError(f"row {flat[j]} is out of bounds for {m} rows")
    if zero:
        x[:, :] = 0.0
    for i in range(nl):
        g = region[i]
        if length[g] > 0:
            c = col[cat[i]]
            for j in range(start[g], start[g] + length[g]):
                x[flat[j], c] += counts[i]
    return True


def frame_source_sums(const Py_ssize_t[::1] src, const double[::1] counts, Py_ssize_t lo, Py_ssize_t hi,
                      list names) -> dict:
    """``source_sums`` of one service's part ``[lo, hi)`` of a frame: ``{source: sum}`` (floats,
    from +0.0) in order of first sight, ``src[i]`` indexing the service's source ``names``."""
    cdef Py_ssize_t i, s, m = 0, ns = len(names)
    cdef double* acc
    cdef Py_ssize_t* seq
    cdef unsigned char* seen
    cdef dict out = {}
    if lo < 0 or hi > src.shape[0] or hi > counts.shape[0]:
        raise IndexError("frame_source_sums: span out of bounds")
    acc = <double*>calloc(ns + 1, sizeof(double))
    seq = <Py_ssize_t*>malloc((ns + 1) * sizeof(Py_ssize_t))
    seen = <unsigned char*>calloc(ns + 1, sizeof(unsigned char))
    try:
        if acc == NULL or seq == NULL or seen == NULL:
            raise MemoryError()
        for i in range(lo, hi):
            s = src[i]
            if s < 0 or s >= ns:
                raise IndexError(f"source {s} is out of bounds for {ns} sources")
            if not seen[s]:
                seen[s] = 1
                seq[m] = s
                m += 1
            acc[s] += counts[i]
        for i in range(m):
            out[names[seq[i]]] = acc[seq[i]]
    finally:
        free(acc)
        free(seq)
        free(seen)
    return out
