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
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

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


def count_bytes(path: str | Path) -> int | None:
    """Size of a regular file (for progress bars), None for stdin."""
    if str(path) == "-":
        return None
    return Path(path).stat().st_size


__all__ = ["count_bytes", "iter_batches", "open_binary"]
