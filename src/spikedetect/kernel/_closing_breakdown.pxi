# -- expand.breakdown on whole-number counts: ids and int64 sums instead of dicts per leaf ------------
#
# Counts are Python ints in the count model: their sums are exact in any order, so per leaf only
# its region's path, category and source are looked up (as small ids), and the sums per (key,
# category), (key, source) and (key, child) run in C. The dicts are built at the end, each
# entry where the reference first meets it (the order of first sight is recorded), with the
# same int values; anything else (floats, huge ints, names that are not plain str) leaves it to
# the object loop, ``_breakdown_objects``.

from libc.stdint cimport int32_t, int64_t

cdef extern from "Python.h":
    int PyDict_Next(object d, Py_ssize_t* pos, PyObject** key, PyObject** value)
    long long PyLong_AsLongLongAndOverflow(object obj, int* overflow) except? -1
    bint PyLong_CheckExact(object obj)
    bint PyUnicode_CheckExact(object obj)
    bint PyTuple_CheckExact(object obj)

cdef long long _COUNT_BOUND = 1LL << 31  # |count| below it, fewer than 2**31 additions: no int64 overflow
cdef Py_ssize_t _CELLS = 1 << 22  # keys * categories (or sources) beyond it: the object loop


cdef struct _Leaves:
    int32_t* path  # per leaf: its region's path id (-1: no wanted key on it)
    int32_t* cat
    int32_t* src
    int64_t* count


cdef class _Ids:
    """Small ids of the names met, in order of first sight."""
    cdef dict ids
    cdef list names

    def __cinit__(self):
        self.ids = {}
        self.names = []

    cdef Py_ssize_t of(self, object name) except -1:
        cdef PyObject* hit = PyDict_GetItem(self.ids, name)
        if hit != NULL:
            return <object>hit
        self.ids[name] = len(self.names)
        self.names.append(name)
        return len(self.names) - 1


cdef object _path_of(object chain, object wanted, _Ids keys, _Ids pairs, list pair_key):
    """The region's wanted keys (leaf first) as (key id, (key, child) id or -1); None when a name
    is not a plain str."""
    cdef list out = []
    cdef Py_ssize_t i
    cdef Py_ssize_t k, p
    for i in range(len(chain)):
        name = chain[i]
        if name in wanted:
            if not PyUnicode_CheckExact(name):
                return None
            k = keys.of(name)
            p = -1
            if i > 0 and chain[i - 1] is not None:
                if not PyUnicode_CheckExact(chain[i - 1]):
                    return None
                p = pairs.of((k, chain[i - 1]))
                if p == len(pair_key):
                    pair_key.append(k)
            out.append((k, p))
    return tuple(out)


cdef object _scan_leaves(object leaf, object wanted, object keys_of, _Leaves* lv, list paths, _Ids keys,
                         _Ids pairs, list pair_key, _Ids cats, _Ids srcs):
    """Pass 1: per leaf its path, category and source ids and count; the number of additions per
    kind, or None when a count or name does not fit."""
    cdef dict path_ids = {}
    cdef PyObject* hit
    cdef Py_ssize_t i = 0, adds = 0
    cdef int overflow = 0
    cdef long long v
    for key, n in leaf.items():
        if not PyLong_CheckExact(n):
            return None
        v = PyLong_AsLongLongAndOverflow(n, &overflow)
        if overflow or v >= _COUNT_BOUND or v <= -_COUNT_BOUND:
            return None
        region = key[0]
        hit = PyDict_GetItem(path_ids, region)
        if hit == NULL:
            path = _path_of(keys_of(region), wanted, keys, pairs, pair_key)
            if path is None:
                return None
            path_ids[region] = len(paths)
            paths.append(path)
            lv.path[i] = len(paths) - 1
        else:
            lv.path[i] = <object>hit
        if paths[lv.path[i]]:
            if not (PyUnicode_CheckExact(key[1]) and PyUnicode_CheckExact(key[2])):
                return None
            lv.cat[i] = cats.of(key[1])
            lv.src[i] = srcs.of(key[2])
            adds += len(paths[lv.path[i]])
        else:
            lv.path[i] = -1
        lv.count[i] = v
        i += 1
    return adds


def breakdown_sums(object leaf, object wanted, object keys_of, object make) -> dict:
    """``expand.breakdown``: per wanted key on each leaf's region path (leaf first), its
    category, source and child-region sums, each added in leaf order as Python adds them, the
    keys in the order first met; ``make(categories, sources, children)`` builds each result."""
    cdef Py_ssize_t n = len(leaf)
    cdef _Leaves lv
    if n == 0 or n >= _COUNT_BOUND:
        return _breakdown_objects(leaf, wanted, keys_of, make)
    lv.path = <int32_t*>malloc(n * sizeof(int32_t))
    lv.cat = <int32_t*>malloc(n * sizeof(int32_t))
    lv.src = <int32_t*>malloc(n * sizeof(int32_t))
    lv.count = <int64_t*>malloc(n * sizeof(int64_t))
    try:
        if lv.path == NULL or lv.cat == NULL or lv.src == NULL or lv.count == NULL:
            raise MemoryError()
        got = _breakdown_ints(leaf, wanted, keys_of, make, &lv, n)
    finally:
        free(lv.path)
        free(lv.cat)
        free(lv.src)
        free(lv.count)
    return _breakdown_objects(leaf, wanted, keys_of, make) if got is None else got


cdef object _breakdown_ints(object leaf, object wanted, object keys_of, object make, _Leaves* lv, Py_ssize_t n):
    """The whole-number path of :func:`breakdown_sums`, or None (nothing built) when it does not apply."""
    cdef list paths = [], pair_key = []
    cdef _Ids keys = _Ids(), pairs = _Ids(), cats = _Ids(), srcs = _Ids()
    adds = _scan_leaves(leaf, wanted, keys_of, lv, paths, keys, pairs, pair_key, cats, srcs)
    return _sums_of_scan(adds, lv, n, paths, keys, pairs, pair_key, cats, srcs, make)


cdef object _sums_of_scan(object adds, _Leaves* lv, Py_ssize_t n, list paths, _Ids keys, _Ids pairs, list pair_key,
                          _Ids cats, _Ids srcs, object make):
    """Passes 2 and 3 after a pass 1 that gave ``adds`` additions: the sums in C, then the
    dicts; None (nothing built) when pass 1 did not fit or the cells would be too many."""
    if adds is None or adds >= _COUNT_BOUND or len(keys.names) * max(len(cats.names), len(srcs.names)) > _CELLS:
        return None
    cdef Py_ssize_t nk = len(keys.names), steps = sum([len(<tuple>p) for p in paths])
    cdef _Sums s
    _sums_alloc(&s, nk, len(cats.names), len(srcs.names), len(pair_key), len(paths), steps)
    try:
        _flatten(paths, &s)
        _sums_run(lv, n, &s)
        return _sums_dicts(&s, keys.names, cats.names, srcs.names, pairs.names, pair_key, make)
    finally:
        _sums_free(&s)


cdef enum:
    _PARTS = 64  # distinct names summed in a fixed array; more: the object loop


cdef object _whole_sums_by_part(dict leaf, Py_ssize_t part):
    """``sums_by_part(leaf, part, 0.0)`` when every count is a Python int below 2**31 in size and
    there are fewer than 2**22 of them (each float partial sum is then a whole number below
    2**53, exact, so the float sum is the int sum); None otherwise. Names in order of first sight."""
    cdef int64_t sums[_PARTS]
    cdef list names = []
    cdef dict ids = {}
    cdef Py_ssize_t pos = 0, i = -1, m = 0
    cdef PyObject* kobj
    cdef PyObject* vobj
    cdef PyObject* hit
    cdef PyObject* last = NULL
    cdef int overflow = 0
    cdef long long v
    if len(leaf) >= (1 << 22):
        return None
    while PyDict_Next(leaf, &pos, &kobj, &vobj):
        if not (PyLong_CheckExact(<object>vobj) and PyTuple_CheckExact(<object>kobj)):
            return None  # (a tuple holds its names: the identity check below sees live objects only)
        v = PyLong_AsLongLongAndOverflow(<object>vobj, &overflow)
        if overflow or v >= _COUNT_BOUND or v <= -_COUNT_BOUND:
            return None
        name = (<object>kobj)[part]
        if <PyObject*>name != last:
            hit = PyDict_GetItem(ids, name)
            if hit == NULL:
                if m == _PARTS:
                    return None
                ids[name] = m
                names.append(name)
                sums[m] = 0
                i = m
                m += 1
            else:
                i = <object>hit
            last = <PyObject*>name
        sums[i] += v
    return {names[i]: <double>sums[i] for i in range(m)}
