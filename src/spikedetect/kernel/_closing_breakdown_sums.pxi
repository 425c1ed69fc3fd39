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
