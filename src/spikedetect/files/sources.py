"""Reading report events from files in batches (JSONL, gzip, stdin).

Lines are returned as raw bytes without their newline; blank lines are skipped.
Reading and splitting happen in large blocks, so the per-line cost is a slice.

>>> import io
>>> list(iter_batches(io.BytesIO(b'{"a":1}\\n\\n{"b":2}\\n'), batch_size=10))
[[b'{"a":1}', b'{"b":2}']]
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, overload

from spikedetect.files.faults import Fault
from spikedetect.kernel import count as _kernel

if TYPE_CHECKING:
    from spikedetect.kernel._count import Lines

BLOCK_BYTES = 4 * 1024 * 1024


def open_binary(path: str | Path) -> BinaryIO:
    """A binary stream for a path: ``-`` is stdin; gzip is detected by its magic bytes."""
    if str(path) == "-":
        raw: BinaryIO = sys.stdin.buffer
        peek = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    else:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
        peek = raw.read(2)
        raw.seek(0)
    if peek == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def iter_batches(stream: BinaryIO, batch_size: int = 20_000) -> Iterator[list[bytes]]:
    """Lists of up to about ``batch_size`` non-blank lines."""
    tail = b""
    batch: list[bytes] = []
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            break
        lines = (tail + block).split(b"\n")
        tail = lines.pop()
        batch.extend(line for line in lines if line.strip())
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if tail.strip():
        batch.append(tail)
    if batch:
        yield batch


class BatchReader:
    """:func:`iter_batches` that stops at a read fault instead of raising.

    A truncated or corrupt gzip member (``EOFError``, CRC error, ``zlib.error``) ends the
    batches: what was read whole is yielded and ``fault`` says where it stopped. ``cut_mid_line``
    is true when the input ended without a final newline (the last line may be half-written).
    ``lines`` counts every line read, blank ones included, so line numbers are the file's.
    """

    def __init__(self, stream: BinaryIO, path: str, batch_size: int = 20_000, *, spans: bool = False) -> None:
        self.stream, self.path, self.batch_size = stream, path, batch_size
        self.fault: Fault | None = None
        self.cut_mid_line = False
        self.lines = 0
        self.line_numbers: Sequence[int] = []  # of the lines in the batch just yielded
        # spans: batches are the counting kernel's Lines (no bytes object per line) when it is built
        self._split = _kernel.split_lines if spans and _kernel is not None else None
        self._tail = b""

    def position(self) -> int:
        """Bytes of the underlying file read so far (compressed bytes for gzip)."""
        raw = getattr(self.stream, "fileobj", None) or self.stream
        try:
            return int(raw.tell())
        except (OSError, ValueError):
            return 0

    def __iter__(self) -> Iterator[Sequence[bytes]]:
        if self._split is not None:
            yield from self._spans(self._split)
            return
        batch: list[bytes] = []
        numbers: list[int] = []
        for buf, start, end in self._cut():
            lines = buf[start:end].split(b"\n")
            lines.pop()
            for line in lines:
                self.lines += 1
                if line.strip():
                    batch.append(line)
                    numbers.append(self.lines)
            if len(batch) >= self.batch_size:
                self.line_numbers = numbers
                yield batch
                batch, numbers = [], []
        last = self._last_line()
        if last is not None:
            batch.append(last)
            numbers.append(self.lines)
        if batch:
            self.line_numbers = numbers
            yield batch

    def _spans(self, split: Callable[[bytes, int, int, int], Lines]) -> Iterator[Sequence[bytes]]:
        """:meth:`__iter__` with each block cut by the kernel: the same batches, lines and line
        numbers, as :class:`Lines` (tests/replay/test_line_spans.py holds the two to each other)."""
        parts: list[Lines] = []
        pending = 0
        for buf, start, end in self._cut():
            lines = split(buf, end, self.lines + 1, start)
            self.lines += lines.seen
            if len(lines):
                parts.append(lines)
                pending += len(lines)
            if pending >= self.batch_size:
                yield self._batch(parts)
                parts, pending = [], 0
        last = self._last_line()
        if last is not None:
            parts.append(split(last + b"\n", len(last) + 1, self.lines, 0))
        if parts:
            yield self._batch(parts)

    def _cut(self) -> Iterator[tuple[bytes, int, int]]:
        """The whole lines read, as (a buffer, start, end): ``buf[start:end]`` ends just past a
        newline. A block's lines are cut from the block itself (not copied), after the line the
        block before left unfinished, which is yielded on its own. What is left at the end of
        input waits in ``_tail``."""
        tail = b""
        while True:
            block = self._read()
            if not block:
                if self.fault is not None:
                    tail = b""  # a line cut by the fault is not used
                break
            first = 0
            if tail:
                first = block.find(b"\n") + 1
                if not first:  # the unfinished line goes on through the whole block
                    tail += block
                    continue
                head = tail + block[:first]
                yield head, 0, len(head)
            end = block.rfind(b"\n") + 1
            if end > first:
                yield block, first, end
            tail = block[max(first, end):]
        self._tail = tail

    def _last_line(self) -> bytes | None:
        """The input's last line when it has no newline (counted; ``cut_mid_line`` set), unless blank."""
        tail = self._tail
        if not tail:
            return None
        self.lines += 1
        if not tail.strip():
            return None
        self.cut_mid_line = True
        return tail

    def _batch(self, parts: list[Lines]) -> Lines:
        batch = parts[0] if len(parts) == 1 else _kernel_lines().join(parts)
        self.line_numbers = _Numbers(batch)
        return batch

    def _read(self) -> bytes:
        """Up to BLOCK_BYTES; on a fault, what was decompressed before it (then b"" next time)."""
        if self.fault is not None:
            return b""
        read1 = getattr(self.stream, "read1", None)
        chunks: list[bytes] = []
        size = 0
        try:
            if read1 is None:
                return self.stream.read(BLOCK_BYTES)
            while size < BLOCK_BYTES:  # read1: a fault loses at most one small chunk
                chunk = read1(BLOCK_BYTES - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            data = b"".join(chunks)
            whole = self.lines + data.count(b"\n")
            self.fault = Fault(self.path, whole + 1, f"input ends early: {_describe(exc)}; the {whole:,} whole "
                               "lines before it were processed, the rest is lost")  # fmt: skip
            return data
        return b"".join(chunks)


class _Numbers(Sequence[int]):
    """The line numbers of a :class:`Lines` batch, read from it when asked (dead letters only)."""

    def __init__(self, lines: Lines) -> None:
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...
    def __getitem__(self, i: int | slice) -> int | Sequence[int]:
        if isinstance(i, slice):
            return [self.lines.number(k) for k in range(len(self.lines))[i]]
        return self.lines.number(i)


def _kernel_lines() -> type[Lines]:
    assert _kernel is not None
    lines: type[Lines] = _kernel.Lines
    return lines


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "truncated gzip: compressed data ends before its end marker"
    if isinstance(exc, gzip.BadGzipFile):
        return f"corrupt gzip: {exc}"
    if isinstance(exc, zlib.error):
        return f"corrupt gzip data: {exc}"
    return str(exc)


def count_bytes(path: str | Path) -> int | None:
    """Size of a regular file (for progress bars), None for stdin."""
    if str(path) == "-":
        return None
    return Path(path).stat().st_size


__all__ = ["BatchReader", "count_bytes", "iter_batches", "open_binary"]
