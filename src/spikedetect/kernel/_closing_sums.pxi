# Included by _closing.pyx (one module): the loops that sum reports by key, category, source
# and evidence ring - each bit-identical to the Python/numpy reference named in its heading.

# -- composition: reports per busy key and category (ShareBank.counts) ----------------------------

def share_counts(object bank, object per_service, Py_ssize_t m, object keys_of, double[:, ::1] x) -> None:
    """``ShareBank.walk_counts`` into ``x`` (zeros, ``m`` rows, MAX_CATEGORIES columns): the same
    walk over services, (region, category) sums and region paths (each found once per service),
    and each path row's cell
    incremented in the order ``np.add.at`` applies them. A known category's column is read from
    ``bank.cats`` directly (``bank.col`` only for a new one: the same columns)."""
    cdef dict rows = bank.rows, cats = bank.cats, by_rc, paths
    cdef object leaf, path, col_of = bank.col, key, cnt, rc, cat
    cdef PyObject* hit
    cdef Py_ssize_t r, col
    cdef double v
    for svc in bank.services():
        leaf = per_service.get(svc)
        if not leaf:
            continue
        by_rc = {}
        paths = {}
        for key, cnt in leaf.items():
            rc = (key[0], key[1])
            hit = PyDict_GetItem(by_rc, rc)
            by_rc[rc] = PyNumber_Add(0.0 if hit == NULL else <object>hit, cnt)
        for rc, cnt in by_rc.items():
            path = paths.get(rc[0])
            if path is None:
                path = paths[rc[0]] = [rows[(svc, k)] for k in keys_of(rc[0]) if (svc, k) in rows]
            if path:
                cat = rc[1]
                hit = PyDict_GetItem(cats, cat)
                col = <Py_ssize_t><object>hit if hit != NULL else col_of(cat)
                v = cnt
                for r in <list>path:
                    if r < 0 or r >= m:
                        raise IndexError(f"row {r} is out of bounds for {m} rows")
                    x[r, col] += v


# -- observed reports per key (window_scores.observe; the tree sums: _closing_tree.pxi) -----------------

def own_reports(object per_service, dict index, object new_row, Py_ssize_t[::1] rows, double[::1] values
                ) -> Py_ssize_t:
    """``observe``'s first step: each (service, region)'s own reports this window, summed as
    Python numbers in the reference's order (``0 + count`` first), new keys given rows by
    ``new_row(service, region)`` on first sight; their rows and float values into ``rows`` and
    ``values`` (room for one per leaf entry). Returns how many."""
    cdef dict by_region
    cdef object region, count
    cdef Py_ssize_t m = 0
    for svc, leaf in per_service.items():
        by_region = {}
        for key, count in leaf.items():
            region = key[0]
            # PyNumber_Add: Python's 0 + count (Cython's int fast path would keep a -0.0)
            by_region[region] = PyNumber_Add(by_region.get(region, 0), count)
        for region, count in by_region.items():
            sk = (svc, region)
            row = index.get(sk)
            if row is None:
                new_row(svc, region)
                row = index[sk]
            rows[m] = row
            values[m] = count
            m += 1
    return m


# -- leaf sums: per source (ingest_gap), per wanted key (expand.breakdown) -------------------------

def sums_by_part(object leaf, Py_ssize_t part, object start) -> dict:
    """``{key[part]: start + n + ...}`` over the leaf counts in their order, added as Python adds
    (the reference: ``out[k] = out.get(k, start) + n``). (A window with a frame sums its
    sources over the frame: ``frame_source_sums``, _closing_leaves.pxi.)"""
    cdef dict out = {}
    cdef PyObject* hit
    for key, n in leaf.items():
        k = key[part]
        hit = PyDict_GetItem(out, k)
        out[k] = PyNumber_Add(start if hit == NULL else <object>hit, n)
    return out


cdef inline void _add(dict d, object k, object n):
    cdef PyObject* hit = PyDict_GetItem(d, k)
    d[k] = PyNumber_Add(0 if hit == NULL else <object>hit, n)


cdef dict _breakdown_objects(object leaf, object wanted, object keys_of, object make):
    """``breakdown_sums`` on any counts (a window whose counts are all ints sums over its frame
    instead: _closing_leaf_breakdown.pxi): per leaf, its sums added to the dicts of each wanted key
    on its path, as Python adds."""
    cdef dict out = {}, paths = {}
    cdef tuple path, step, sums
    cdef PyObject* hit
    cdef Py_ssize_t i
    for key, n in leaf.items():
        region = key[0]
        hit = PyDict_GetItem(paths, region)
        if hit == NULL:
            chain = keys_of(region)
            path = tuple([(chain[i], chain[i - 1] if i > 0 else None) for i in range(len(chain)) if chain[i] in wanted])
            paths[region] = path
        else:
            path = <tuple>hit
        if not path:
            continue
        category = key[1]
        source = key[2]
        for step in path:
            hit = PyDict_GetItem(out, step[0])
            if hit == NULL:
                sums = ({}, {}, {})
                out[step[0]] = sums
            else:
                sums = <tuple>hit
            _add(<dict>sums[0], category, n)
            _add(<dict>sums[1], source, n)
            if step[1] is not None:
                _add(<dict>sums[2], step[1], n)
    for k in out:
        sums = <tuple>out[k]
        out[k] = make(sums[0], sums[1], sums[2])
    return out


# -- evidence rings (evidence.record) ---------------------------------------------------------------

cdef void _ring_step(double[:, ::1] sums, float[::1, :] ring, const double[::1] value,
                     const Py_ssize_t[::1] rows, Py_ssize_t pos, const Py_ssize_t[::1] leaving) noexcept nogil:
    cdef Py_ssize_t i, k, r, h = leaving.shape[0]
    cdef double v
    for i in range(rows.shape[0]):
        r = rows[i]
        v = value[r]
        for k in range(h):
            sums[r, k] = sums[r, k] + (v - <double>ring[r, leaving[k]])
        ring[r, pos] = <float>v


def evidence_record(double[:, ::1] sum_x, float[::1, :] ring_x, const double[::1] x,
                    double[:, ::1] sum_m, float[::1, :] ring_m, const double[::1] m,
                    double[:, ::1] sum_v, float[::1, :] ring_v, const double[::1] v,
                    const Py_ssize_t[::1] rows, Py_ssize_t pos, const Py_ssize_t[::1] leaving) -> bint:
    """``evidence.record`` without its once-a-lap resum: for each column set and row, each
    running sum moves by ``value - ring[leaving]`` (float64, the float32 ring value widened),
    then the ring takes ``value`` at ``pos`` (rounded to float32) - numpy's ``sums[rows] +=
    value[:, None] - ring[rows][:, leaving]; ring[rows, pos] = value``, rows distinct. False, and
    nothing written, when a value or a running sum of these rows is NaN: which of two NaNs an
    operation keeps (sign, payload) is the SIMD loop's choice, so numpy does those windows.
    Otherwise every operation has at most one NaN operand (a ring's) and keeps it, and new NaNs
    (inf - inf) are the hardware's default NaN, in any order."""
    cdef Py_ssize_t i, r, k
    for i in range(rows.shape[0]):
        r = rows[i]
        if x[r] != x[r] or m[r] != m[r] or v[r] != v[r]:
            return False
        for k in range(sum_x.shape[1]):
            if sum_x[r, k] != sum_x[r, k] or sum_m[r, k] != sum_m[r, k] or sum_v[r, k] != sum_v[r, k]:
                return False
    _ring_step(sum_x, ring_x, x, rows, pos, leaving)
    _ring_step(sum_m, ring_m, m, rows, pos, leaving)
    _ring_step(sum_v, ring_v, v, rows, pos, leaving)
    return True
