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
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from spikedetect.files.faults import Fault

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

    def __init__(self, stream: BinaryIO, path: str, batch_size: int = 20_000) -> None:
        self.stream, self.path, self.batch_size = stream, path, batch_size
        self.fault: Fault | None = None
        self.cut_mid_line = False
        self.lines = 0
        self.line_numbers: list[int] = []  # of the lines in the batch just yielded

    def position(self) -> int:
        """Bytes of the underlying file read so far (compressed bytes for gzip)."""
        raw = getattr(self.stream, "fileobj", None) or self.stream
        try:
            return int(raw.tell())
        except (OSError, ValueError):
            return 0

    def __iter__(self) -> Iterator[list[bytes]]:
        tail = b""
        batch: list[bytes] = []
        numbers: list[int] = []
        while True:
            block = self._read()
            if not block:
                if self.fault is not None:
                    tail = b""  # a line cut by the fault is not used
                break
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            for line in lines:
                self.lines += 1
                if line.strip():
                    batch.append(line)
                    numbers.append(self.lines)
            if len(batch) >= self.batch_size:
                self.line_numbers = numbers
                yield batch
                batch, numbers = [], []
        if tail:
            self.lines += 1
            if tail.strip():
                self.cut_mid_line = True
                batch.append(tail)
                numbers.append(self.lines)
        if batch:
            self.line_numbers = numbers
            yield batch


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
