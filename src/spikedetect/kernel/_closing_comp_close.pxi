# Included by _closing.pyx (one module), after _closing_comp_window.pxi: the usual composition window
# from the leaf frame in one call (``composition_close``) - CompositionDetector._track's check that
# no key without a row became busy, LeafWindow.share_counts over the frame (``frame_share_counts``),
# the rows' held flags (``blocked[key_rows]``) and ``composition_window`` - with every array that
# stays from one window to the next viewed once (:class:`CompositionClose`), not set up each call.


cdef class CompositionClose(CompositionWindow):
    """:class:`CompositionWindow` with the arrays its one call reads or writes besides, given to
    :meth:`take` after the eight of :class:`CompositionArrays`: the window's counts ``x`` (m, k:
    written here), the held flags ``hs`` (m or more), each row's key row ``key_rows`` (m), which keys
    have no row ``no_row`` (bool) and the leaf paths ``start``, ``length``, ``col``, ``flat``
    (:class:`~spikedetect.core.composition.leaf_paths.LeafPaths`)."""
    cdef double[:, ::1] x
    cdef unsigned char[::1] hs, no_row
    cdef Py_ssize_t[::1] key_rows, start, length, col, flat

    cdef int build(self, tuple objs) except -1:
        if len(objs) != 16:
            raise ValueError("CompositionClose: sixteen arrays are taken")
        CompositionArrays.build(self, objs[:8])
        self.x, self.hs, self.key_rows, self.no_row, self.start, self.length, self.col, self.flat = objs[8:]
        if self.hs.shape[0] < self.x.shape[0] or self.key_rows.shape[0] != self.x.shape[0] \
                or self.length.shape[0] < self.start.shape[0]:
            raise ValueError("CompositionClose: the arrays do not fit")
        return 0


def composition_close(CompositionClose a not None, const Py_ssize_t[::1] region, const Py_ssize_t[::1] cat,
                      const double[::1] counts, const double[:] expected, Py_ssize_t n_keys,
                      const unsigned char[:] blocked, double min_expected) -> Py_ssize_t:
    """One window of the ``m`` rows of ``a.x`` (m, k) over a frame's leaves (``region``, ``cat``,
    ``counts``): -4 when one of the ``n_keys`` keys without a row is busy (``expected`` at least
    ``min_expected``: a row is to be added first), -3 when a leaf's path or, on a path, its
    column is not known (``frame_share_counts`` False), -1 when a count is not whole; nothing of
    the bank moved then (only ``a.x`` and ``a.hs``). Else the counts into ``a.x`` (zeros, then
    each leaf's count added to its path's rows in leaf order), ``blocked[key_rows]`` into ``a.hs``
    and :func:`composition_window` on them: the rows that step (0: the window is done)."""
    cdef Py_ssize_t i, r, m, k, cells, got
    a.viewing()
    m, k = a.x.shape[0], a.x.shape[1]
    cells = 3 * m * k
    if n_keys < 0 or n_keys > a.no_row.shape[0] or n_keys > expected.shape[0] \
            or a.tail.shape[1] < cells:
        raise ValueError("composition_close: the arrays do not fit")
    for i in range(n_keys):
        if a.no_row[i] and expected[i] >= min_expected:
            return -4
    for i in range(m):
        r = a.key_rows[i]
        if r < 0 or r >= blocked.shape[0]:
            raise IndexError(f"key row {r} is out of bounds for {blocked.shape[0]} keys")
        a.hs[i] = blocked[r]
    if not _share_counts(region, cat, counts, a.start, a.length, a.col, a.flat, a.x, True):
        return -3
    got = _composition_front(a, a.x, False, "composition_close")
    if got < 0:
        return -1
    if got:
        a._tails(m, cells, got)
    _apply(&a.exp, &a.f[m], &a.f[2 * m], m)
    return _composition_back(a, a.x, a.hs[:m], got)
