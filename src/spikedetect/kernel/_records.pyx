# cython: boundscheck=False, wraparound=False, cdivision=True
"""Reading Kafka record batches (magic 2) straight into the counters' lists.

:func:`parse_batch` turns one whole v2 batch (header and records, as the broker sent it) into
the offsets, values and timestamps of the records at or after a fetch position - what stage 1
hands to ``SourceState.feed`` - without building a record object per record. A value that is
null comes out as ``b""``; a timestamp is ``first_timestamp + delta`` (create time) or the
batch's ``max_timestamp`` (log-append time), exactly as aiokafka's own reader gives them.

:func:`parse_records` reads a compressed batch's records the same way once the caller has
decompressed them (with aiokafka's codecs). It is strict: anything it does not read exactly as
aiokafka would (a compressed batch given to :func:`parse_batch`, a control or older-format
batch, a truncated or inconsistent one, an out-of-range varint, a header key that is not
UTF-8) raises :class:`BatchFormatError`, and the caller hands the batch to aiokafka's
reader instead (stream/ingest_raw.py). Checksums are aiokafka's to check, before this runs.
"""

from libc.stdint cimport int64_t, uint64_t
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

DEF HEADER_SIZE = 61


class BatchFormatError(ValueError):
    """The bytes are not an uncompressed v2 batch this parser reads exactly."""


cdef inline int64_t _varint(const unsigned char* buf, Py_ssize_t end, Py_ssize_t* pos) except? -1:
    """A zigzag varint (at most 10 bytes) at ``pos[0]``, which moves past it."""
    cdef uint64_t acc = 0
    cdef int shift = 0
    cdef Py_ssize_t p = pos[0]
    cdef unsigned char b
    while True:
        if p >= end:
            raise BatchFormatError("varint runs past the batch")
        b = buf[p]
        p += 1
        if shift == 63 and b > 1:
            raise BatchFormatError("varint out of range")
        acc |= (<uint64_t>(b & 0x7F)) << shift
        if not (b & 0x80):
            break
        shift += 7
    pos[0] = p
    return <int64_t>(acc >> 1) ^ -(<int64_t>(acc & 1))


cdef inline int64_t _be(const unsigned char* buf, Py_ssize_t at, int width):
    """A big-endian signed integer of ``width`` bytes."""
    cdef uint64_t acc = 0
    cdef int i
    for i in range(width):
        acc = (acc << 8) | buf[at + i]
    if width < 8 and acc >> (8 * width - 1):
        acc |= (<uint64_t>0xFFFFFFFFFFFFFFFF) << (8 * width)
    return <int64_t>acc


cdef inline Py_ssize_t _skip(const unsigned char* buf, Py_ssize_t end, Py_ssize_t* pos) except -2:
    """Read a length varint; check the bytes fit. Returns the length (-1: null)."""
    cdef int64_t n = _varint(buf, end, pos)
    if n < -1 or n > end - pos[0]:
        raise BatchFormatError("field length out of range")
    if n > 0:
        pos[0] += n
    return <Py_ssize_t>n


cdef Py_ssize_t _headers(object data, const unsigned char* buf, Py_ssize_t end, Py_ssize_t pos) except -1:
    """Skip a record's headers (keys checked as UTF-8, as aiokafka decodes them)."""
    cdef int64_t count = _varint(buf, end, &pos)
    cdef Py_ssize_t n
    if count < 0 or count > end - pos:
        raise BatchFormatError("bad header count")
    while count:
        n = _skip(buf, end, &pos)
        if n < 0:
            raise BatchFormatError("null header key")
        try:
            data[pos - n:pos].decode("utf-8")
        except UnicodeDecodeError:
            raise BatchFormatError("header key not UTF-8")
        _skip(buf, end, &pos)
        count -= 1
    return pos


def parse_batch(bytes data, Py_ssize_t start, Py_ssize_t end, int64_t min_offset):
    """Offsets, values and timestamps of the records of the batch ``data[start:end]`` whose
    offset is at least ``min_offset`` (and above every earlier one returned, as aiokafka skips)."""
    if start < 0 or end > PyBytes_GET_SIZE(data) or end - start < HEADER_SIZE:
        raise BatchFormatError("batch shorter than its header")
    cdef const unsigned char* buf = <const unsigned char*>PyBytes_AS_STRING(data)
    if _be(buf, start + 8, 4) != end - start - 12 or buf[start + 16] != 2:
        raise BatchFormatError("not a whole magic-2 batch")
    cdef int64_t attributes = _be(buf, start + 21, 2)
    if attributes & 0x27:  # compressed (0x07) or control (0x20)
        raise BatchFormatError("compressed or control batch")
    cdef bint log_append = (attributes & 0x08) != 0
    cdef int64_t base = _be(buf, start, 8)
    cdef int64_t first_ts = _be(buf, start + 27, 8)
    cdef int64_t max_ts = _be(buf, start + 35, 8)
    cdef int64_t count = _be(buf, start + 57, 4)
    if count < 0:
        raise BatchFormatError("negative record count")
    return _records(data, buf, start + HEADER_SIZE, end, count, base, first_ts, max_ts, log_append,
                    min_offset)


def parse_records(bytes records, int64_t count, int64_t base, int64_t first_ts, int64_t max_ts, bint log_append,
                  int64_t min_offset):
    """As :func:`parse_batch`, for a compressed batch's records once decompressed (``records``: all
    of them, nothing else) with the batch header's record count, base offset, timestamps and
    timestamp type."""
    if count < 0:
        raise BatchFormatError("negative record count")
    return _records(records, <const unsigned char*>PyBytes_AS_STRING(records), 0, PyBytes_GET_SIZE(records),
                    count, base, first_ts, max_ts, log_append, min_offset)


cdef tuple _records(object data, const unsigned char* buf, Py_ssize_t pos, Py_ssize_t end, int64_t count,
                    int64_t base, int64_t first_ts, int64_t max_ts, bint log_append, int64_t min_offset):
    cdef list offsets = [], values = [], stamps = []
    cdef int64_t length, ts_delta, offset_delta, offset
    cdef Py_ssize_t rec_start, value_end, value_len
    while count:
        length = _varint(buf, end, &pos)
        if length < 0 or length > end - pos:
            raise BatchFormatError("record length out of range")
        rec_start = pos
        _varint(buf, end, &pos)  # attributes (unused, as in aiokafka)
        ts_delta = _varint(buf, end, &pos)
        offset_delta = _varint(buf, end, &pos)
        if (offset_delta < -0x80000000 or offset_delta > 0x7FFFFFFF or _sum_overflows(base, offset_delta + 1)
                or _sum_overflows(first_ts, ts_delta)):
            raise BatchFormatError("offset or timestamp delta out of range")
        _skip(buf, end, &pos)  # key
        value_len = _skip(buf, end, &pos)
        value_end = pos
        pos = _headers(data, buf, end, pos)
        if pos - rec_start != length:
            raise BatchFormatError("record size mismatch")
        count -= 1
        offset = base + offset_delta
        if offset < min_offset:
            continue
        min_offset = offset + 1
        offsets.append(offset)
        values.append(b"" if value_len <= 0 else
                      PyBytes_FromStringAndSize(<const char*>buf + value_end - value_len, value_len))
        stamps.append(max_ts if log_append else first_ts + ts_delta)
    if pos != end:
        raise BatchFormatError("bytes left after the last record")
    return offsets, values, stamps


cdef inline bint _sum_overflows(int64_t a, int64_t b):
    """Whether ``a + b`` leaves the int64 range."""
    return (b > 0 and a > 0x7FFFFFFFFFFFFFFF - b) or (b < 0 and a < -0x7FFFFFFFFFFFFFFF - 1 - b)


include "_wire_rows.pxi"
