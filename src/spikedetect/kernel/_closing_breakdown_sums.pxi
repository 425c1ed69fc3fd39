from cpython.float cimport PyFloat_CheckExact
from cpython.list cimport PyList_CheckExact

# -- the C half of breakdown_sums (_closing_breakdown.pxi): sums per (key, name) and order of first sight

cdef struct _Sums:
    Py_ssize_t nk, nc, ns, npair, n_cat, n_src, n_pair  # sizes, then events recorded
    int32_t* path_off  # per path: its first step, and its length
    int32_t* path_len
    int32_t* step_key  # per step: key id, (key, child) id or -1
    int32_t* step_pair
    int64_t* cat  # sums: (key, category), (key, source), (key, child)
    int64_t* src
    int64_t* pair
    int32_t* cat_ev  # the cells in order of first sight
    int32_t* src_ev
    int32_t* pair_ev
    unsigned char* seen  # per cell: seen yet (categories, then sources, then pairs)


cdef void _sums_alloc(_Sums* s, Py_ssize_t nk, Py_ssize_t nc, Py_ssize_t ns, Py_ssize_t npair, Py_ssize_t npaths,
                      Py_ssize_t steps) except *:
    cdef Py_ssize_t cells = nk * nc + nk * ns + npair + 1
    s.nk, s.nc, s.ns, s.npair, s.n_cat, s.n_src, s.n_pair = nk, nc, ns, npair, 0, 0, 0
    s.path_off = <int32_t*>malloc((npaths + 1) * sizeof(int32_t))
    s.path_len = <int32_t*>malloc((npaths + 1) * sizeof(int32_t))
    s.step_key = <int32_t*>malloc((steps + 1) * sizeof(int32_t))
    s.step_pair = <int32_t*>malloc((steps + 1) * sizeof(int32_t))
    s.cat = <int64_t*>calloc(nk * nc + 1, sizeof(int64_t))
    s.src = <int64_t*>calloc(nk * ns + 1, sizeof(int64_t))
    s.pair = <int64_t*>calloc(npair + 1, sizeof(int64_t))
    s.cat_ev = <int32_t*>malloc((nk * nc + 1) * sizeof(int32_t))
    s.src_ev = <int32_t*>malloc((nk * ns + 1) * sizeof(int32_t))
    s.pair_ev = <int32_t*>malloc((npair + 1) * sizeof(int32_t))
    s.seen = <unsigned char*>calloc(cells, 1)
    if (s.path_off == NULL or s.path_len == NULL or s.step_key == NULL or s.step_pair == NULL or s.cat == NULL
            or s.src == NULL or s.pair == NULL or s.cat_ev == NULL or s.src_ev == NULL or s.pair_ev == NULL
            or s.seen == NULL):
        raise MemoryError()


cdef void _sums_free(_Sums* s) noexcept:
    free(s.path_off)
    free(s.path_len)
    free(s.step_key)
    free(s.step_pair)
    free(s.cat)
    free(s.src)
    free(s.pair)
    free(s.cat_ev)
    free(s.src_ev)
    free(s.pair_ev)
    free(s.seen)


cdef void _flatten(list paths, _Sums* s) except *:
    """The paths' steps (each path flat: key id, pair id, key id, ...) into the flat step arrays."""
    cdef Py_ssize_t p, j, at = 0
    cdef tuple path
    for p in range(len(paths)):
        path = <tuple>paths[p]
        s.path_off[p] = at
        s.path_len[p] = len(path) // 2
        for j in range(0, len(path) - 1, 2):
            s.step_key[at] = path[j]
            s.step_pair[at] = path[j + 1]
            at += 1


cdef void _sums_run(const _Leaves* lv, Py_ssize_t n, _Sums* s) noexcept nogil:
    """Pass 2: every leaf's count into its path's cells, leaf order, path order (leaf first)."""
    cdef Py_ssize_t i, j, end, cell
    cdef int64_t v
    cdef unsigned char* seen_src = s.seen + s.nk * s.nc
    cdef unsigned char* seen_pair = seen_src + s.nk * s.ns
    for i in range(n):
        if lv.path[i] < 0:
            continue
        v = lv.count[i]
        end = s.path_off[lv.path[i]] + s.path_len[lv.path[i]]
        for j in range(s.path_off[lv.path[i]], end):
            cell = s.step_key[j] * s.nc + lv.cat[i]
            if not s.seen[cell]:
                s.seen[cell] = 1
                s.cat_ev[s.n_cat] = <int32_t>cell
                s.n_cat += 1
            s.cat[cell] += v
            cell = s.step_key[j] * s.ns + lv.src[i]
            if not seen_src[cell]:
                seen_src[cell] = 1
                s.src_ev[s.n_src] = <int32_t>cell
                s.n_src += 1
            s.src[cell] += v
            cell = s.step_pair[j]
            if cell >= 0:
                if not seen_pair[cell]:
                    seen_pair[cell] = 1
                    s.pair_ev[s.n_pair] = <int32_t>cell
                    s.n_pair += 1
                s.pair[cell] += v


cdef dict _sums_dicts(const _Sums* s, list key_names, list cat_names, list src_names, list pair_names,
                      list pair_key, object make):
    """The per-key dicts, each entry inserted in order of first sight, as Python ints."""
    cdef list cats = [{} for _ in range(s.nk)], srcs = [{} for _ in range(s.nk)], kids = [{} for _ in range(s.nk)]
    cdef Py_ssize_t e, cell, k
    for e in range(s.n_cat):
        cell = s.cat_ev[e]
        (<dict>cats[cell // s.nc])[cat_names[cell % s.nc]] = s.cat[cell]
    for e in range(s.n_src):
        cell = s.src_ev[e]
        (<dict>srcs[cell // s.ns])[src_names[cell % s.ns]] = s.src[cell]
    for e in range(s.n_pair):
        cell = s.pair_ev[e]
        (<dict>kids[<Py_ssize_t>pair_key[cell]])[pair_names[cell]] = s.pair[cell]
    return {key_names[k]: make(cats[k], srcs[k], kids[k]) for k in range(s.nk)}


cdef int64_t _EXACT_INT = 1LL << 53  # |int| below it: exact as a double, as Python converts it


cdef inline int _add_sum(dict d, object name, int64_t v) except -1:
    """``d[name] = d.get(name, 0.0) + v`` (v a Python int), the float arithmetic in C when the
    sum is a float and ``v`` is exact as a double (Python's float + int then adds the same doubles)."""
    cdef PyObject* hit = PyDict_GetItem(d, name)
    if -_EXACT_INT < v < _EXACT_INT:
        if hit == NULL:
            d[name] = 0.0 + <double>v
            return 0
        if PyFloat_CheckExact(<object>hit):
            d[name] = PyFloat_AS_DOUBLE(<object>hit) + <double>v
            return 0
    d[name] = PyNumber_Add(_ZERO if hit == NULL else <object>hit, v)
    return 0


cdef dict _sums_into(const _Sums* s, list key_names, list cat_names, list src_names, list pair_names,
                     list pair_key, object make, tuple into):
    """``_sums_dicts`` of the keys not in ``into``'s targets; a target key's sums are added
    straight into its (categories, sources, children) as ``expand.add_breakdown`` adds a view's:
    the same Python additions, per dict in the same order (of first sight), each child's reports
    times ``scale`` and its expectation (``expected`` at its ``index`` row; 0.0 for no row), a new
    child only while there are fewer than ``cap``. ``into``: (targets, service, index, expected,
    scale, cap)."""
    cdef dict targets = into[0]
    cdef object svc = into[1], scale = into[4]
    cdef dict index = into[2]
    cdef const double[:] expected = into[3]
    cdef Py_ssize_t cap = into[5], e, cell, k, row
    cdef list aim = [targets.get(name) for name in key_names]  # per key: its target, or None
    cdef list cats = [], srcs = [], kids = []
    cdef PyObject* hit
    cdef dict d
    cdef bint fast_scale = PyFloat_CheckExact(scale)
    cdef double scale_d = PyFloat_AS_DOUBLE(scale) if fast_scale else 0.0, n_d
    for k in range(s.nk):
        t = aim[k]
        cats.append({} if t is None else (<tuple>t)[0])
        srcs.append({} if t is None else (<tuple>t)[1])
        kids.append({} if t is None else (<tuple>t)[2])
    for e in range(s.n_cat):
        cell = s.cat_ev[e]
        k = cell // s.nc
        d, name = <dict>cats[k], cat_names[cell % s.nc]
        if aim[k] is None:
            d[name] = s.cat[cell]
        else:
            _add_sum(d, name, s.cat[cell])
    for e in range(s.n_src):
        cell = s.src_ev[e]
        k = cell // s.ns
        d, name = <dict>srcs[k], src_names[cell % s.ns]
        if aim[k] is None:
            d[name] = s.src[cell]
        else:
            _add_sum(d, name, s.src[cell])
    for e in range(s.n_pair):
        cell = s.pair_ev[e]
        k = <Py_ssize_t>pair_key[cell]
        d, child = <dict>kids[k], pair_names[cell]
        if aim[k] is None:
            d[child] = s.pair[cell]
            continue
        hit = PyDict_GetItem(d, child)
        if hit == NULL:
            if len(d) >= cap:
                continue
            acc = [0.0, 0.0]
            d[child] = acc
        else:
            acc = <object>hit
        got = index.get((svc, child))
        if got is None:
            ex = 0.0
        else:
            row = got
            if row < 0 or row >= expected.shape[0]:
                raise IndexError("frame_breakdown_sums: a child's row is outside the expectations")
            ex = expected[row]
        if (fast_scale and PyList_CheckExact(acc) and len(<list>acc) == 2 and PyFloat_CheckExact((<list>acc)[0])
                and PyFloat_CheckExact((<list>acc)[1]) and -_EXACT_INT < s.pair[cell] < _EXACT_INT):
            # as Python: n = count * scale (the int exact as a double), then each += (no fused multiply-add)
            n_d = <double>s.pair[cell] * scale_d
            (<list>acc)[0] = PyFloat_AS_DOUBLE((<list>acc)[0]) + n_d
            (<list>acc)[1] = PyFloat_AS_DOUBLE((<list>acc)[1]) + <double>ex
        else:
            # Python's * and +=, by the C API (Cython's own shortcuts for a 0 keep a -0.0 Python changes)
            acc[0] = PyNumber_InPlaceAdd(acc[0], PyNumber_Multiply(s.pair[cell], scale))
            acc[1] = PyNumber_InPlaceAdd(acc[1], ex)
    return {key_names[k]: make(cats[k], srcs[k], kids[k]) for k in range(s.nk) if aim[k] is None}
