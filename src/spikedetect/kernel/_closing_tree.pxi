# Included by _closing.pyx (one module): the end of window_scores.observe - each key's reports
# summed up the region tree and the keys seen marked - over the rows with reports and their
# ancestors only, bit-identical to observe's numpy code.

cdef inline double _add_keeping_nan(double a, double b) noexcept nogil:
    """``a + b`` as numpy's loops mostly add here (``bincount``'s ``out[i] += w``, the SIMD lanes
    of ``observed += sums``): when both are NaN, ``a``'s NaN (quieted) - spelled out, since the
    compiler may swap the operands of a lone ``+``. With at most one NaN operand the order cannot
    show. (numpy 2.4's AVX-512 add keeps ``b``'s NaN in its remainder lanes, so which NaN two
    NaNs give is not numpy's contract: the tests compare NaNs as NaN.)"""
    if a != a:
        return a + 0.0
    return a + b


cdef Py_ssize_t _with_ancestors(const Py_ssize_t[::1] rows, const Py_ssize_t[::1] parent, Py_ssize_t n,
                                unsigned char* mark, Py_ssize_t* out) except -1:
    """``rows`` and every ancestor of theirs (up to a parent that is not a row), once each, in
    row order into ``out`` (``mark``: n zeros, left marking them); returns how many."""
    cdef Py_ssize_t j, i, k = 0
    for j in range(rows.shape[0]):
        i = rows[j]
        if i < 0 or i >= n:
            raise IndexError(f"row {i} is out of bounds for {n} rows")
        while 0 <= i < n and not mark[i]:
            mark[i] = 1
            i = parent[i]
    for i in range(n):  # (without a branch: ``out`` has room for n, and ``k <= i`` here)
        out[k] = i
        k += mark[i]
    return k


cdef int _sum_up(double[::1] observed, const signed char[::1] depth, const Py_ssize_t[::1] parent,
                 const Py_ssize_t* s, Py_ssize_t k, double* level, Py_ssize_t* by_depth) except -1:
    """The tree sums over the rows ``s`` (sorted): level by level from their deepest, each
    row's reports (where not 0) added into its parent's level sum in row order, then every
    level sum added to its row as ``observed += np.bincount(...)`` does, for levels that have
    such rows (``level``: zeros, left zeros; ``by_depth``: room for ``k`` rows, ``s`` sorted
    stably by depth there, each level's rows in row order)."""
    cdef Py_ssize_t j, i, p, n = observed.shape[0]
    cdef Py_ssize_t at[129]
    cdef int d, top = 0
    cdef bint any_at
    for d in range(129):
        at[d] = 0
    for j in range(k):
        d = depth[s[j]]
        if d < 0:  # (no level of the tree: visited by no level, as before)
            continue
        top = d if d > top else top
        at[d + 1] += 1
    for d in range(1, top + 1):  # where each depth's rows start
        at[d] += at[d - 1]
    for j in range(k):
        d = depth[s[j]]
        if d >= 0:
            by_depth[at[d]] = s[j]
            at[d] += 1
    for d in range(top, 0, -1):  # (at[d]: where depth d's rows end, at[d - 1] where they start)
        any_at = False
        for j in range(at[d - 1], at[d]):
            i = by_depth[j]
            if observed[i] != 0.0:
                p = parent[i]
                if p < 0 or p >= n:
                    raise ValueError(f"row {i} at depth {d} has parent {p}, not one of {n} rows")
                level[p] = _add_keeping_nan(level[p], observed[i])
                any_at = True
        if any_at:
            for j in range(k):
                i = s[j]
                observed[i] = _add_keeping_nan(observed[i], level[i])
                level[i] = 0.0
    return 0


def tree_sums_rows(double[::1] observed, const signed char[::1] depth, const Py_ssize_t[::1] parent,
                   const Py_ssize_t[::1] rows, long long[::1] last_seen, long long ws) -> None:
    """``observe`` after the own reports (``rows``: the rows given one, all others +0.0): level
    by level from the deepest, each key's reports (where not 0) summed per parent in row order
    from 0 and added to every row, as ``observed += np.bincount(...)`` does, for levels that
    have such keys; then ``last_seen[observed != 0] = ws``. Only ``rows`` and their ancestors
    are visited: any other row is +0.0, adds nothing to a parent and stays +0.0 when 0.0 is
    added to it."""
    cdef Py_ssize_t j, k, n = observed.shape[0]
    cdef unsigned char* mark
    cdef Py_ssize_t* s
    cdef double* level
    if depth.shape[0] < n or parent.shape[0] < n or last_seen.shape[0] < n or n == 0:
        raise ValueError("the arrays do not fit")
    mark = <unsigned char*>calloc(n, sizeof(unsigned char))
    s = <Py_ssize_t*>malloc(2 * n * sizeof(Py_ssize_t))
    level = <double*>calloc(n, sizeof(double))
    try:
        if mark == NULL or s == NULL or level == NULL:
            raise MemoryError()
        k = _with_ancestors(rows, parent, n, mark, s)
        _sum_up(observed, depth, parent, s, k, level, s + n)
        for j in range(k):
            if observed[s[j]] != 0.0:
                last_seen[s[j]] = ws
    finally:
        free(mark)
        free(s)
        free(level)


def lift_to_ancestors(unsigned char[::1] under, const Py_ssize_t[::1] parent, const signed char[::1] depth) -> None:
    """``Signals._under``'s lift: the rows ``under`` (n) and their ancestors within the deepest
    row's depth (``depth[:n].max()`` steps up ``parent``, -1 at a root) marked, as its numpy loop
    marks them - level after level from the rows marked at the start."""
    cdef Py_ssize_t i, j, p, step, levels = 0, k = 0, n = under.shape[0]
    cdef Py_ssize_t* start
    if parent.shape[0] < n or depth.shape[0] < n:
        raise ValueError("lift_to_ancestors: the arrays do not fit")
    for i in range(n):
        if depth[i] > levels:
            levels = depth[i]
        if under[i]:
            k += 1
    if k == 0 or levels == 0:
        return
    start = <Py_ssize_t*>malloc(k * sizeof(Py_ssize_t))
    if start == NULL:
        raise MemoryError()
    try:
        k = 0
        for i in range(n):
            if under[i]:
                start[k] = i
                k += 1
        for j in range(k):
            p = start[j]
            for step in range(levels):
                p = parent[p]
                if p < 0:
                    break
                if p >= n:
                    raise IndexError(f"parent {p} is out of bounds for {n} rows")
                under[p] = 1
    finally:
        free(start)
