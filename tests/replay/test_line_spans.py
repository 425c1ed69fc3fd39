"""The file reader's two forms (lists of bytes, and the counting kernel's line spans that
``spikedetect replay`` reads into) give the same batches, lines, line numbers, faults and
end-of-input facts, on any bytes and any block size."""

from __future__ import annotations

import gzip
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.files import sources
from spikedetect.files.sources import BatchReader
from spikedetect.kernel import load_compiled

KERNEL = load_compiled()
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled kernel is not built (no C compiler)")


@pytest.fixture(autouse=True)
def _kernel_even_when_pure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spans are the kernel's: compared here even in the SPIKEDETECT_PURE=1 pass."""
    monkeypatch.setattr(sources, "_kernel", KERNEL)


def read(data: bytes, batch_size: int, spans: bool, gz: bool = False) -> tuple[Any, ...]:
    stream: Any = gzip.GzipFile(fileobj=io.BytesIO(data)) if gz else io.BytesIO(data)
    reader = BatchReader(stream, "f", batch_size, spans=spans)
    batches = [(type(b).__name__, list(b), [reader.line_numbers[i] for i in range(len(b))]) for b in reader]
    kinds = {k for k, _, _ in batches}
    assert kinds <= ({"Lines"} if spans else {"list"})
    fault = None if reader.fault is None else str(reader.fault)
    return [b[1:] for b in batches], reader.lines, reader.cut_mid_line, fault


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80) | st.lists(st.sampled_from([b"a", b"{}", b" ", b"\t\r", b"\n", b"\n\n", b"\x0b",
                                                           b"\xff", b"x\n"])).map(b"".join),
       st.sampled_from([1, 2, 3, 7, 4 * 1024 * 1024]), st.integers(1, 5))
def test_spans_and_lists_read_alike(data: bytes, block_bytes: int, batch_size: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "BLOCK_BYTES", block_bytes)  # small blocks: lines cut across reads, batches joined
        assert read(data, batch_size, True) == read(data, batch_size, False)


def lines_of(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The reference: (line number, line) of every non-blank line, and how many lines there are."""
    pieces = data.split(b"\n")
    last = pieces.pop()  # what follows the last newline: a line without one, or nothing
    out = [(i + 1, p) for i, p in enumerate(pieces) if p.strip()]
    if last.strip():
        out.append((len(pieces) + 1, last))
    return out, len(pieces) + (1 if last else 0)


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"ab", b"{}", b" ", b"\n", b"\n\n", b"x\n", b"long line " * 3])).map(b"".join),
       st.sampled_from([1, 2, 3, 5, 8, 64]), st.integers(1, 5), st.booleans())
def test_either_form_reads_the_lines_split_gives(data: bytes, block_bytes: int, batch_size: int, spans: bool) -> None:
    """Lines cut across blocks, lines longer than a block, blank lines and a last line without a
    newline: every form reads what ``data.split(b"\\n")`` holds, numbered from 1."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "BLOCK_BYTES", block_bytes)
        reader = BatchReader(io.BytesIO(data), "f", batch_size, spans=spans)
        got = [(reader.line_numbers[i], line) for b in reader for i, line in enumerate(b)]
    assert (got, reader.lines) == lines_of(data)


@needs_kernel
def test_a_truncated_gzip_ends_both_forms_at_the_same_line() -> None:
    whole = gzip.compress(b"".join(b'{"n":%d}\n' % i for i in range(5000)))
    cut = whole[: len(whole) // 2]
    spans, lists = read(cut, 100, True, gz=True), read(cut, 100, False, gz=True)
    assert spans == lists and spans[3] is not None and "truncated" in spans[3]


@needs_kernel
def test_spans_are_asked_for_not_imposed() -> None:
    """Other readers (evaluate, report, demo) keep their lists; a pure run has no spans to give."""
    assert read(b"a\nb\n", 10, False)[0] == [([b"a", b"b"], [1, 2])]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "_kernel", None)
        assert BatchReader(io.BytesIO(b"a\n"), "f", spans=True)._split is None
