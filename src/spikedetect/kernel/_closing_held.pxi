# Included by _closing.pyx (one module), before the classes built on it: typed views of a set of
# arrays, kept from call to call and rebuilt whenever one of those arrays is another object than
# the one viewed (a table grew, a column or a state was replaced), so a view is never stale.


cdef class HeldViews:
    """Typed views of the arrays last given to :meth:`hold`, taken by a subclass's :meth:`build`
    and taken again only when one of them is another object than the one viewed at its place.
    The arrays are held (not just their ids), so an id is never another array's. ``builds``
    counts the (re)builds."""
    cdef tuple held  # the arrays viewed, in the order given; None: nothing viewed yet
    cdef readonly Py_ssize_t builds

    cdef int hold(self, tuple objs) except -1:
        """View ``objs``: nothing to do when each is the object viewed at its place, else
        :meth:`build`."""
        cdef tuple held = self.held
        cdef Py_ssize_t i, n = len(objs)
        if held is not None and len(held) == n:
            for i in range(n):
                if objs[i] is not held[i]:
                    break
            else:
                return 0
        self.held = None  # a failed build leaves nothing that could pass for fresh
        self.build(objs)
        self.held = objs
        self.builds += 1
        return 0

    cdef int build(self, tuple objs) except -1:
        """Take the typed views of ``objs`` (each subclass its own)."""
        raise NotImplementedError

    cdef int viewing(self) except -1:
        """Raise unless arrays are viewed (callers that read the views unchecked ask first)."""
        if self.held is None:
            raise ValueError(f"{type(self).__name__}: no arrays viewed")
        return 0
