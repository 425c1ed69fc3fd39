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


# -- the quiet services of one ingest-gap window (IngestGapDetector.close_window) -------------------

from libc.math cimport exp as _c_exp


cdef double _source_value(object name, list names, const double* acc, const unsigned char* seen, Py_ssize_t ns):
    """The window's reports of source ``name`` (0.0 when it sent none): ``by_src.get(name, 0.0)``."""
    cdef Py_ssize_t s
    for s in range(ns):
        if seen[s] and names[s] == name:
            return acc[s]
    return 0.0


def gap_quiet_learn(list order, dict states, object index, object whole, const double[::1] observed,
                    const unsigned char[::1] judged, const Py_ssize_t[::1] src, const double[::1] counts,
                    const Py_ssize_t[::1] starts, list frame_services, dict source_names, tuple consts) -> list:
    """``IngestGapDetector.close_window``'s quiet services, the same steps in the same order: of
    the services ``order``, each known one (``states``) with a global key (``(svc, whole)`` in
    ``index``), no open gap, no silent run, reports (``observed`` at its row) and no silence this
    window (``_quiet``: its reports per source summed over its span of the frame - ``src`` the
    leaves' source ids into ``source_names[svc]``, ``counts`` theirs, the span
    ``starts[j]:starts[j + 1]`` of ``frame_services[j]`` - from +0.0 in leaf order) learns its
    source shares (``_learn``) when no new source reported. Returns the others, in order, for the
    Python steps (nothing of theirs touched). ``judged``: per row, its count model learned.
    ``consts``: (ALL, WARM_REPORTS, LEARN_REPORTS, MAX_RATE, MIN_SHARE, MAX_SOURCES)."""
    cdef object every = consts[0]
    cdef double warm = consts[1], learn_reports = consts[2], max_rate = consts[3], min_share = consts[4]
    cdef Py_ssize_t max_sources = consts[5]
    cdef list rest = [], names, keys
    cdef dict shares
    cdef Py_ssize_t i, j, s, lo, hi, ns, row, nsvc = len(frame_services), cap = 0
    cdef double total, learned, rate, keep, v, y
    cdef double* acc = NULL
    cdef unsigned char* seen = NULL
    cdef bint fits
    if starts.shape[0] < nsvc + 1:
        raise ValueError("gap_quiet_learn: starts too short")
    try:
        for svc in order:
            got = index.get((svc, whole))
            st = states.get(svc)
            if got is None or st is None or st.gap is not None or st.runs:
                rest.append(svc)
                continue
            row = got
            if not 0 <= row < observed.shape[0] or row >= judged.shape[0]:
                raise IndexError(f"row {row} is out of bounds")
            total = observed[row]
            shares = st.shares
            if not total > 0 or every in shares or len(shares) > max_sources:
                rest.append(svc)
                continue
            lo = hi = 0
            for j in range(nsvc):
                if frame_services[j] == svc:
                    lo, hi = starts[j], starts[j + 1]
                    break
            if lo < 0 or hi > src.shape[0] or hi > counts.shape[0]:
                raise IndexError("gap_quiet_learn: span out of bounds")
            names = source_names.get(svc, [])
            ns = len(names)
            if ns + 1 > cap:
                free(acc)
                free(seen)
                acc, seen, cap = NULL, NULL, 0
                acc = <double*>malloc((ns + 1) * sizeof(double))
                seen = <unsigned char*>malloc((ns + 1) * sizeof(unsigned char))
                if acc == NULL or seen == NULL:
                    raise MemoryError()
                cap = ns + 1
            for s in range(ns):
                acc[s] = 0.0
                seen[s] = 0
            for i in range(lo, hi):
                s = src[i]
                if s < 0 or s >= ns:
                    raise IndexError(f"source {s} is out of bounds for {ns} sources")
                seen[s] = 1
                acc[s] += counts[i]
            learned = st.learned
            fits = True
            if judged[row] and learned >= warm:  # _quiet: each source with a share reported
                for name, share in shares.items():
                    if share >= min_share and not _source_value(name, names, acc, seen, ns) > 0:
                        fits = False
                        break
            for s in range(ns):  # _learn's usual window: no new source
                if fits and seen[s] and names[s] not in shares:
                    fits = False
            if not fits:
                rest.append(svc)
                continue
            if learned < warm:
                rate = total / (learned + total)
            else:
                y = 1 - _c_exp(-total / learn_reports)
                rate = y if y < max_rate else max_rate
            keep = 1.0 - rate
            keys = list(shares)
            for name in keys:
                v = _source_value(name, names, acc, seen, ns)
                shares[name] = keep * <double>shares[name] + rate * v / total
            y = learned + total
            st.learned = 1e9 if 1e9 < y else y
    finally:
        free(acc)
        free(seen)
    return rest


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
