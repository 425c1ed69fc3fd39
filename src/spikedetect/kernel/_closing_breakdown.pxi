# -- expand.breakdown: the object loop, and the pieces of the int64 sums over a frame ----------------
#
# ``breakdown_sums`` walks a leaf dict with the object loop, ``_breakdown_objects`` (a window
# without a frame: some count is not a whole number, or the compiled loops serve a dict of their
# own, e.g. the live view's one key). A window whose counts are all Python ints sums over its
# frame instead (_closing_leaf_breakdown.pxi, pass 1): their sums are exact in any order, so per
# leaf only its region's path, category and source are looked up (as small ids), and the sums per
# (key, category), (key, source) and (key, child) run in C (passes 2 and 3, below and
# _closing_breakdown_sums.pxi). The dicts are built at the end, each entry where the reference
# first meets it (the order of first sight is recorded), with the same int values.

from cpython.dict cimport PyDict_Next
from cpython.float cimport PyFloat_AS_DOUBLE
from libc.math cimport copysign, fabs
from libc.stdint cimport int32_t, int64_t

cdef extern from "Python.h":
    bint PyUnicode_CheckExact(object obj)

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
    """The region's wanted keys (leaf first), flat: key id, then (key, child) id or -1, for each;
    None when a name is not a plain str. A (key, child) pair is known by its child alone (a child region has one
    parent), checked: a child met under another key gives None too."""
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
                p = pairs.of(chain[i - 1])
                if p == len(pair_key):
                    pair_key.append(k)
                elif <Py_ssize_t>pair_key[p] != k:
                    return None
            out.append(k)
            out.append(p)
    return tuple(out)


def breakdown_sums(object leaf, object wanted, object keys_of, object make) -> dict:
    """``expand.breakdown``: per wanted key on each leaf's region path (leaf first), its
    category, source and child-region sums, each added in leaf order as Python adds them, the
    keys in the order first met; ``make(categories, sources, children)`` builds each result."""
    return _breakdown_objects(leaf, wanted, keys_of, make)


cdef object _sums_of_scan(object adds, _Leaves* lv, Py_ssize_t n, list paths, _Ids keys, _Ids pairs, list pair_key,
                          _Ids cats, _Ids srcs, object make, object into):
    """Passes 2 and 3 after a pass 1 that gave ``adds`` additions: the sums in C, then the
    dicts (``into``: see ``_sums_into``); None (nothing built, nothing added) when pass 1 did not
    fit or the cells would be too many."""
    if adds is None or adds >= _COUNT_BOUND or len(keys.names) * max(len(cats.names), len(srcs.names)) > _CELLS:
        return None
    cdef Py_ssize_t nk = len(keys.names), steps = sum([len(<tuple>p) for p in paths]) // 2
    cdef _Sums s
    _sums_alloc(&s, nk, len(cats.names), len(srcs.names), len(pair_key), len(paths), steps)
    try:
        _flatten(paths, &s)
        _sums_run(lv, n, &s)
        if into is None:
            return _sums_dicts(&s, keys.names, cats.names, srcs.names, pairs.names, pair_key, make)
        return _sums_into(&s, keys.names, cats.names, srcs.names, pairs.names, pair_key, make, <tuple?>into)
    finally:
        _sums_free(&s)


# -- Tracker.accumulate: a window's breakdown added into an incident's sums -----------------------

cdef object _ZERO = 0.0


cdef int _add_counts(dict into, object add) except -1:
    """``into[name] = into.get(name, 0.0) + n`` for each of ``add``'s items, in its order."""
    cdef Py_ssize_t pos = 0
    cdef PyObject* name
    cdef PyObject* n
    cdef PyObject* hit
    if type(add) is not dict or add is into:
        for k, v in add.items():
            hit = PyDict_GetItem(into, k)
            into[k] = PyNumber_Add(_ZERO if hit == NULL else <object>hit, v)
        return 0
    while PyDict_Next(<dict>add, &pos, &name, &n):
        hit = PyDict_GetItem(into, <object>name)
        into[<object>name] = PyNumber_Add(_ZERO if hit == NULL else <object>hit, <object>n)
    return 0


def add_breakdown(dict categories not None, dict sources not None, dict children not None, object add_categories,
                  object add_sources, object add_children, Py_ssize_t cap):
    """``expand.add_breakdown``: the same additions, in the same order, as Python makes them."""
    _add_counts(categories, add_categories)
    _add_counts(sources, add_sources)
    cdef PyObject* hit
    for child, pair in add_children.items():
        n, e = pair
        hit = PyDict_GetItem(children, child)
        if hit == NULL:
            if len(children) >= cap:
                continue
            acc = [0.0, 0.0]
            children[child] = acc
        else:
            acc = <object>hit
        # Python's +=, by the C API: Cython's own float + int returns the float itself for a 0, where
        # Python adds 0.0 (-0.0 + 0 is 0.0)
        acc[0] = PyNumber_InPlaceAdd(acc[0], n)
        acc[1] = PyNumber_InPlaceAdd(acc[1], e)


# -- the shares of an incident's breakdown, rounded for its events -----------------------------------

def round_float(object x, Py_ssize_t digits):
    """``incident_event.round_float_py``: the same double arithmetic (no fused multiply-add), so
    the same bits; round itself where that one does."""
    cdef double v, m, a, d
    cdef long long n
    if type(x) is float and (digits == 3 or digits == 4):
        m = 1000.0 if digits == 3 else 10000.0
        v = PyFloat_AS_DOUBLE(x)
        a = fabs(v) * m
        if a < 2147483648.0:
            n = <long long>a
            d = a - <double>n
            if fabs(d - 0.5) > 1e-6:
                if d > 0.5:
                    n += 1
                return copysign(<double>n / m, v)
    return round(x, digits)
