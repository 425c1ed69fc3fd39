"""Output files of the offline commands: checked before anything is opened, written atomically.

:func:`check_paths` refuses an output that names an input (``replay X --out X`` would wipe
X), a directory, a missing directory, or the same file twice - before any output is opened.
:class:`AtomicOutput` writes to a temporary file next to the target and renames it over the
target on :meth:`~AtomicOutput.commit`; a run that fails leaves the target untouched. ``-``
is stdout, and a path that exists but is not a regular file (``/dev/null``, a FIFO) is
written in place. A ``.gz`` suffix writes gzip (no name or time in the header, so equal
content gives equal bytes).
"""

from __future__ import annotations

import gzip
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from spikedetect.files.faults import InputError


def _identity(path: str) -> tuple[int, int] | str:
    try:
        st = os.stat(path)
        return (st.st_dev, st.st_ino)
    except OSError:
        return os.path.realpath(path)


def _regular_or_missing(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True


def check_paths(inputs: Mapping[str, str | None], outputs: Mapping[str, str | None]) -> None:
    """Raise :class:`InputError` for an unusable output. Keys name the option (``--out``)."""
    seen: dict[tuple[int, int] | str, str] = {}
    for option, path in inputs.items():
        if path and path != "-":
            seen.setdefault(_identity(path), f"input {option}")
    for option, path in outputs.items():
        if not path or path == "-":
            continue
        if os.path.isdir(path):
            raise InputError(path, 0, f"{option} names a directory, not a file")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise InputError(path, 0, f"{option}: directory {parent} does not exist")
        ident = _identity(path)
        if not _regular_or_missing(path):
            continue  # /dev/null, a FIFO: written in place, may be shared
        if ident in seen:
            raise InputError(path, 0, f"{option} is also {seen[ident]}: refusing to overwrite it")
        seen[ident] = f"output {option}"


class AtomicOutput:
    """A binary output: a temporary file renamed over ``path`` by :meth:`commit`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tmp: str | None = None
        self._raw: IO[bytes]
        self.stream: IO[bytes]
        if path == "-":
            self._raw = self.stream = sys.stdout.buffer
            return
        if _regular_or_missing(path):
            fd, self._tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".tmp",
                                             dir=os.path.dirname(os.path.abspath(path)))  # fmt: skip
            self._raw = os.fdopen(fd, "wb")
        else:
            self._raw = open(path, "wb")  # noqa: SIM115 - closed in commit/abort
        self.stream = self._raw
        if path.endswith(".gz"):
            self.stream = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6)  # type: ignore[assignment]

    def write(self, data: bytes) -> None:
        self.stream.write(data)

    def _close(self) -> None:
        if self.stream is not self._raw:
            self.stream.close()
        self._raw.flush()
        if self._raw is not sys.stdout.buffer:
            self._raw.close()

    def commit(self) -> None:
        """Flush, close and move into place."""
        self._close()
        if self._tmp is not None:
            os.chmod(self._tmp, 0o666 & ~_umask())
            os.replace(self._tmp, self.path)
            self._tmp = None

    def abort(self) -> None:
        """Close and drop the temporary file (the target is left as it was)."""
        try:
            self._close()
        finally:
            if self._tmp is not None:
                Path(self._tmp).unlink(missing_ok=True)
                self._tmp = None

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (``-``: stdout) through a temporary file."""
    with AtomicOutput(path) as out:
        out.write(data)


__all__ = ["AtomicOutput", "check_paths", "write_atomic"]
