# Included by _count.pyx (one module), after _combos.pxi: a new combination of field values
# each seen before. The Python validator's caches map every raw service, region, category and
# source it admitted to its normalised value, and the scanner has checked the rest of the line
# (ts, event_id, the other fields) as for a cached combination; so a line whose four raw fields
# all hit those caches is what the validator would admit, with these values, and is cached
# without decoding the line (orjson), the validator or its exceptions. Any miss: the slow path.

from cpython.unicode cimport PyUnicode_DecodeUTF8


cdef object _raw_str(const unsigned char* s, Scan* sc, int f):
    """Field f's raw text as orjson gives it (the scanner let no escape through), or None when
    it is not UTF-8 (orjson rejects that line: the slow path says why)."""
    try:
        return PyUnicode_DecodeUTF8(<const char*>s + sc.start[f], sc.length[f], NULL)
    except UnicodeDecodeError:
        return None


cdef object _known(dict cache, const unsigned char* s, Scan* sc, int f):
    """The validator's value of field f (borrowed from its cache), or None when unknown."""
    raw = _raw_str(s, sc, f)
    if raw is None:
        return None
    cdef PyObject* hit = PyDict_GetItem(cache, raw)
    return None if hit == NULL else <object>hit


cdef Py_ssize_t _admit(RawCombos rc, validator, dict cur, const unsigned char* s, Scan* sc, uint64_t h,
                       int64_t stale_gen) except -2:
    """Cache the scanned line's new combination when the validator knows each of its four raw
    fields: its slot, or -1 when one is unknown (nothing done). The slot is of ``stale_gen``, an
    earlier generation, so the caller counts its region in the service's budget (too_many_keys
    when spent, as the slow path would say) as for any slot of an earlier generation."""
    service = _known(validator.services, s, sc, F_SERVICE)
    if service is None:
        return -1
    region = _known(validator.regions, s, sc, F_REGION)
    if region is None:
        return -1
    category = _known(validator.categories, s, sc, F_CATEGORY)
    if category is None:
        return -1
    source = _known(validator.sources, s, sc, F_SOURCE)
    if source is None:
        return -1
    return _cache_combo(rc, cur, s, sc, h, (service, region, category, source), (region, category, source),
                        stale_gen)


cdef Py_ssize_t _cache_combo(RawCombos rc, dict cur, const unsigned char* s, Scan* sc, uint64_t h, tuple key,
                             tuple leaf, int64_t gen) except -1:
    """Cache a combination the table does not hold (its slot), first emptying a full table (its
    pending counts flushed into ``cur``, the current window's dict)."""
    if rc.n >= _combo_cache_size:
        if rc.ntouched:
            _flush(rc, cur)
        rc.clear()
    return rc.add(s, sc, h, key, leaf, gen)
