# Included by _closing.pyx (one module): a closed window's leaf counts summed in one walk
# (leaf_sums) and the steps that read those sums - observe's own reports and the composition
# counts - each bit-identical to the Python reference named in its docstring.

def leaf_sums(object per_service, object make) -> dict:
    """:func:`spikedetect.core.leaf_sums.leaf_sums`: per service, one walk of its leaf counts
    summing them per region (from ``0``), per (region, category) and per source (from ``0.0``),
    each added in leaf order as Python adds; ``make(by_region, by_category, by_source)`` builds
    each service's result."""
    cdef dict out = {}, by_region, by_category, by_source
    cdef PyObject* hit
    for svc, leaf in per_service.items():
        by_region, by_category, by_source = {}, {}, {}
        for key, n in leaf.items():
            region, cat, src = key
            hit = PyDict_GetItem(by_region, region)
            by_region[region] = PyNumber_Add(0 if hit == NULL else <object>hit, n)
            rc = (region, cat)
            hit = PyDict_GetItem(by_category, rc)
            by_category[rc] = PyNumber_Add(0.0 if hit == NULL else <object>hit, n)
            hit = PyDict_GetItem(by_source, src)
            by_source[src] = PyNumber_Add(0.0 if hit == NULL else <object>hit, n)
        out[svc] = make(by_region, by_category, by_source)
    return out


def own_reports(dict sums, dict index, object new_row, Py_ssize_t[::1] rows, double[::1] values) -> Py_ssize_t:
    """``observe``'s first step: each (service, region)'s own reports this window (``sums``: the
    services' :func:`leaf_sums`), new keys given rows by ``new_row(service, region)`` on first
    sight; their rows and float values into ``rows`` and ``values`` (room for one per region).
    Returns how many."""
    cdef Py_ssize_t m = 0
    for svc, s in sums.items():
        for region, count in (<dict?>s[0]).items():
            sk = (svc, region)
            row = index.get(sk)
            if row is None:
                new_row(svc, region)
                row = index[sk]
            rows[m] = row
            values[m] = count
            m += 1
    return m


def share_counts(object bank, object sums, Py_ssize_t m, object keys_of, double[:, ::1] x) -> None:
    """``ShareBank.counts`` into ``x`` (zeros, ``m`` rows, MAX_CATEGORIES columns) from the
    services' :func:`leaf_sums`: the same walk over the bank's services, their (region,
    category) sums and cached region paths, and each path row's cell incremented in the order
    ``np.add.at`` applies them. A known category's column is read from ``bank.cats`` directly
    (``bank.col`` only for a new one: the same columns)."""
    cdef dict rows = bank.rows, paths = bank._paths, cats = bank.cats
    cdef object path, col_of = bank.col, cnt, rc, cat, s
    cdef PyObject* hit
    cdef Py_ssize_t r, col
    cdef double v
    for svc in bank.services():
        s = sums.get(svc)
        if s is None:
            continue
        for rc, cnt in (<dict?>s[1]).items():
            path = paths.get((svc, rc[0]))
            if path is None:
                path = paths[(svc, rc[0])] = [rows[(svc, k)] for k in keys_of(rc[0]) if (svc, k) in rows]
            if path:
                cat = rc[1]
                hit = PyDict_GetItem(cats, cat)
                col = <Py_ssize_t><object>hit if hit != NULL else col_of(cat)
                v = cnt
                for r in <list>path:
                    if r < 0 or r >= m:
                        raise IndexError(f"row {r} is out of bounds for {m} rows")
                    x[r, col] += v
