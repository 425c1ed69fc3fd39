"""Where the counting kernel's scanner ends a JSON string (spikedetect/kernel/_span.pxi): the
first byte from ``i`` on that is a quote, a backslash, a control byte or one of at least ``hi``,
found 16 bytes at a time with SSE2 and byte by byte in a line's last 15 bytes. Each form is
held to a Python definition, and the scanner to what it accepts and refuses with a string's
ending byte at every position of a long key or value (where the 16-byte loop reads it).
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.kernel import load_compiled

KERNEL = load_compiled()
pytestmark = pytest.mark.skipif(KERNEL is None, reason="the compiled kernel is not built (no C compiler)")

ENDS = {b'"'[0], b"\\"[0], *range(32)}


def reference(raw: bytes, i: int, hi: int) -> int:
    return next((j for j in range(i, len(raw)) if raw[j] in ENDS or raw[j] >= hi), len(raw))


@pytest.mark.parametrize("hi", [127, 128, 256])
@pytest.mark.parametrize("bytewise", [False, True])
def test_every_byte_value_at_every_position(hi: int, bytewise: bool) -> None:
    for value in range(256):
        for length in (1, 15, 16, 17, 31, 32, 33, 40):
            for at in range(length):
                raw = bytearray(b"a" * length)
                raw[at] = value
                for start in (0, 1, min(at, 5)):
                    got = KERNEL.span_end(bytes(raw), start, hi, bytewise)
                    assert got == reference(bytes(raw), start, hi), (value, length, at, start, hi)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=70), st.integers(0, 70), st.sampled_from([127, 128, 256]))
def test_random_bytes(raw: bytes, start: int, hi: int) -> None:
    start = min(start, len(raw))
    want = reference(raw, start, hi)
    assert KERNEL.span_end(raw, start, hi) == want
    assert KERNEL.span_end(raw, start, hi, True) == want


def test_out_of_range_is_refused() -> None:
    for i, hi in ((-1, 128), (4, 128), (0, 32), (0, 257)):
        with pytest.raises(ValueError):
            KERNEL.span_end(b"abc", i, hi)


def line(**over: object) -> bytes:
    fields = {"ts": "2026-11-24T00:00:00.351Z", "service": "facebook", "region": "US/TX/Austin",
              "category": "profile", "source": "web", "event_id": "d8d73bcc399744df", **over}
    return orjson.dumps(fields)


@pytest.mark.parametrize("field", ["service", "region", "category", "source", "event_id", "note"])
def test_scanner_refuses_a_bad_byte_anywhere_in_a_long_value(field: str) -> None:
    """A backslash, control byte or (in an ASCII-only value) DEL or a non-ASCII byte at any place
    of a 40-byte value sends the line to the Python path; any other byte is scanned."""
    ascii_only = field in ("event_id", "note")
    base = line(**{field: "x" * 40})
    assert KERNEL.cache_key(base) is not None
    start = base.index(b"x" * 40)
    for at in range(40):
        for bad, refused in ((b"\\", True), (b"\x1f", True), (b"\x7f", ascii_only), (b"\xc3", ascii_only),
                             (b"~", False)):
            raw = base[:start + at] + bad + base[start + at + 1:]
            assert (KERNEL.cache_key(raw) is None) is refused, (field, at, bad)


def test_scanner_refuses_a_non_ascii_or_control_byte_in_a_long_key() -> None:
    base = line(**{"k" * 40: 1})
    assert KERNEL.cache_key(base) is not None
    start = base.index(b"k" * 40)
    for at in range(40):
        for bad in (b"\\", b"\x01", b"\x80", b"\xff"):
            raw = base[:start + at] + bad + base[start + at + 1:]
            assert KERNEL.cache_key(raw) is None, (at, bad)
        raw = base[:start + at] + b"\x7f" + base[start + at + 1:]  # DEL is ASCII: a key may hold it
        assert KERNEL.cache_key(raw) is not None, at
