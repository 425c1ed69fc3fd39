# Included by _count.pyx (one module): a batch of file lines as spans of the blocks they were
# read in - no bytes object per line. :func:`split_lines` cuts a block at its newlines as
# ``bytes.split(b"\n")`` does and drops blank lines as ``line.strip()`` does; the counting loop
# scans a :class:`Lines` where it lies, and a line becomes a bytes object only when something
# keeps or decodes it (a line the C scanner does not take, a held report, a dead letter).

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t
from libc.string cimport memchr, memcpy


cdef inline bint _blank(const char* p, Py_ssize_t n) noexcept nogil:
    """``not line.strip()``: only ASCII whitespace (space, \\t, \\n, \\r, \\v, \\f)."""
    cdef Py_ssize_t i
    cdef char c
    for i in range(n):
        c = p[i]
        if c != b' ' and not (b'\t' <= c <= b'\r'):
            return False
    return True


cdef inline bytes _own(bytes raw, const unsigned char* s, Py_ssize_t n):
    """``raw``, or when that is None (a line of :class:`Lines`) the line's own bytes object."""
    return raw if raw is not None else PyBytes_FromStringAndSize(<const char*>s, n)


cdef class Lines:
    """Non-blank lines, each a span of a block this object keeps alive: ``len``, ``lines[i]``
    (a bytes object, made on the spot) and iteration work as on the list of bytes
    :func:`~spikedetect.files.sources.iter_batches` yields; ``number(i)`` is line i's line number
    in its file; ``seen`` counts every line cut, blank ones included."""

    cdef const char** ptr
    cdef Py_ssize_t* size
    cdef int64_t* num
    cdef Py_ssize_t n
    cdef readonly Py_ssize_t seen
    cdef tuple owners

    def __cinit__(self):
        self.n = 0
        self.owners = ()

    def __dealloc__(self):
        free(self.ptr)
        free(self.size)
        free(self.num)

    cdef int reserve(self, Py_ssize_t cap) except -1:
        self.ptr = <const char**>_grow(self.ptr, cap * sizeof(char*))
        self.size = <Py_ssize_t*>_grow(self.size, cap * sizeof(Py_ssize_t))
        self.num = <int64_t*>_grow(self.num, cap * sizeof(int64_t))
        return 0

    def __len__(self):
        return self.n

    cdef inline Py_ssize_t at(self, Py_ssize_t i) except -1:
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError("line index out of range")
        return i

    def __getitem__(self, Py_ssize_t i):
        i = self.at(i)
        return PyBytes_FromStringAndSize(self.ptr[i], self.size[i])

    def __iter__(self):
        cdef Py_ssize_t i
        for i in range(self.n):
            yield PyBytes_FromStringAndSize(self.ptr[i], self.size[i])

    def number(self, Py_ssize_t i):
        """Line i's number in its file (1-based, blank lines counted)."""
        return self.num[self.at(i)]

    @staticmethod
    def join(list parts):
        """One batch of several (their lines in order; their blocks kept alive)."""
        cdef Lines out = Lines(), p
        cdef Py_ssize_t total = 0, k = 0
        for p in parts:
            total += p.n
        out.reserve(total)
        for p in parts:
            memcpy(out.ptr + k, p.ptr, p.n * sizeof(char*))
            memcpy(out.size + k, p.size, p.n * sizeof(Py_ssize_t))
            memcpy(out.num + k, p.num, p.n * sizeof(int64_t))
            k += p.n
            out.seen += p.seen
        out.n = total
        out.owners = tuple(parts)
        return out


def split_lines(bytes block, Py_ssize_t end, int64_t first_number, Py_ssize_t start=0):
    """The lines of ``block[start:end]`` (``start`` 0 or just past a newline, ``end`` just past
    a newline, or ``start``), as ``block[start:end].split(b"\\n")`` without its last, empty
    piece, blank lines left out; the first is line ``first_number`` of its file."""
    cdef Lines out = Lines()
    cdef const char* base = PyBytes_AS_STRING(block)
    cdef const char* p = base + start
    cdef const char* stop = base + end
    cdef const char* q
    cdef Py_ssize_t cap, k = 0
    cdef int64_t number = first_number
    if not 0 <= start <= end <= PyBytes_GET_SIZE(block) or (end > start and base[end - 1] != b'\n') \
            or (start > 0 and base[start - 1] != b'\n'):
        raise ValueError("start and end must each be 0 or just past a newline of the block, start <= end")
    out.owners = (block,)
    cap = 1024 + (end - start) // 96  # room for lines of 96 bytes or more without growing
    out.reserve(cap)
    while p < stop:
        q = <const char*>memchr(p, b'\n', stop - p)
        if not _blank(p, q - p):
            if k == cap:
                cap *= 2
                out.reserve(cap)
            out.ptr[k], out.size[k], out.num[k] = p, q - p, number
            k += 1
        number += 1
        p = q + 1
    out.n = k
    out.seen = number - first_number
    return out
