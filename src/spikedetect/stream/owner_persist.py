"""When and what a partition owner writes to its table after closing windows.

Closing publishes at once; the state that closing changed (grouper, signals, keys, meta,
deleted partials) is written at most once per ``persist_interval_ms`` of wall time, like
Kafka Streams' state caches flushed on commit. Between writes the table holds an older but
consistent state: the keys, grouper and signals records of the last write, the meta record's
``next_ws`` of that write, and every partial of the windows closed since (they are deleted
only by the write that records their windows applied). A crash therefore leaves a changelog
prefix from which the next owner re-closes those windows and re-emits identical events,
exactly as after a crash in the middle of one write (see :mod:`spikedetect.stream.owner`).

A write is due when the interval has passed (0: after every close that closed anything), or
when the partials of closed windows waiting in the table exceed
:data:`MAX_UNPERSISTED_PARTIAL_BYTES` (memory, and the re-close work after a crash, stay
bounded however long the interval), and always when the owner gives up its partition.

>>> p = PersistCadence(1_000, clock=lambda: 0.0)
>>> p.note_closed(3, 0), p.due(0)
(None, None)
>>> p.clock = lambda: 1.0
>>> p.due(0)
'interval'
>>> p.due(MAX_UNPERSISTED_PARTIAL_BYTES), PersistCadence(0).due(0)
('bound', None)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from spikedetect.core.outages import OutageGrouper
from spikedetect.core.scorer import Scorer
from spikedetect.core.state import dumps, key_record_bytes

# Partial bytes of closed windows that may wait in the table for the next write (memory, and
# re-close work after a crash, are bounded by it whatever the interval).
MAX_UNPERSISTED_PARTIAL_BYTES = 32 * 1024 * 1024


class TableWriter(Protocol):
    """Where an owner's state goes: its Faust table, or a plain dict in tests."""

    def __setitem__(self, key: str, value: bytes, /) -> None: ...

    def pop(self, key: str, default: None, /) -> Any: ...


class PersistCadence:
    """Whether an owner's state write is due: the interval since the last one, or the bound."""

    def __init__(self, interval_ms: int, clock: Callable[[], float] = time.monotonic) -> None:
        if interval_ms < 0:
            raise ValueError("persist interval must not be negative")
        self.interval_ms = interval_ms
        self.clock = clock
        self.last_s = clock()
        self.dirty = False  # windows closed since the last write
        self.windows = 0  # how many
        self.unacked = False  # the owner is closing: its events are not acknowledged yet
        self.next_ws: int | None = None  # the meta record's next window, as of the last write

    def note_closed(self, n_closed: int, moved: int) -> None:
        """Closing changed state: ``n_closed`` windows closed, or ``moved`` (the next window moved)."""
        self.dirty = self.dirty or bool(n_closed or moved)
        self.windows += n_closed

    def due(self, unpersisted_partial_bytes: int) -> str | None:
        """Why a write is due now (``interval`` or ``bound``), or None."""
        if not self.dirty:
            return None
        if unpersisted_partial_bytes >= MAX_UNPERSISTED_PARTIAL_BYTES:
            return "bound"
        if self.interval_ms == 0 or (self.clock() - self.last_s) * 1000.0 >= self.interval_ms:
            return "interval"
        return None

    def written(self, next_ws: int | None) -> None:
        self.next_ws = next_ws
        self.dirty = False
        self.windows = 0
        self.last_s = self.clock()


def write_state(q: int, scorer: Scorer, grouper: OutageGrouper, table: TableWriter) -> None:
    """Write what closing changed since the last write, in the order the owner module gives:
    the grouper state of every touched service, the signals record, every key, the key records
    of retired keys removed (unless the key came back since), then the meta record."""
    s = scorer
    t = table
    for svc in sorted(grouper.touched):  # before the keys: see the owner module
        t[f"{q}|g|{svc}"] = dumps(grouper.export_service(svc))
    grouper.touched.clear()
    if s.signals is not None:  # composition and ingest-gap state (it remembers its last window)
        t[f"{q}|sig"] = dumps(s.signals.to_dict())
    for sk in s.keyspace.keys:
        t[f"{q}|k|{sk[0]}|{sk[1]}"] = key_record_bytes(s, sk)  # exact-size bytes
    live = s.keyspace.index
    for sk in s.retired:
        if sk not in live:  # retired, then back as a new row before this write: its record stays
            t.pop(f"{q}|k|{sk[0]}|{sk[1]}", None)
    s.retired.clear()
    t[f"{q}|meta"] = orjson.dumps({"next_ws": s.next_ws, "n_src": len(s.watermarks)})
