"""The partials messages a partition owner keeps in its table until their windows are written closed.

Each entry is one message as the owner kept it (a v2 pack, or a v1 single-window partial),
filed under the last window it carries. Windows close in order, so an entry may go once that
window is closed and the state write that records it applied is done
(:meth:`PendingPartials.drop_closed`); until then a crash finds it in the changelog and the
next owner re-applies the windows of it that are still open. A re-send stored under the same
key replaces the entry (its bytes are counted once).

>>> p, table = PendingPartials(), {"0|p|60000|a": b"xx", "0|p|120000|b": b"yyy"}
>>> p.add(60_000, "0|p|60000|a", 2); p.add(120_000, "0|p|120000|b", 3); p.add(60_000, "0|p|60000|a", 2)
>>> p.total, p.closed_bytes(120_000, bound=4), p.closed_bytes(120_000, bound=100)
(5, 2, 5)
>>> p.drop_closed(120_000, table), p.total, sorted(table)
(1, 3, ['0|p|120000|b'])
"""

from __future__ import annotations

from spikedetect.stream import owner_persist
from spikedetect.stream.owner_persist import TableWriter


class PendingPartials:
    """Table keys and bytes of the kept partials messages, by the last window each carries."""

    def __init__(self) -> None:
        self.by_ws: dict[int, dict[str, int]] = {}  # last window -> {table key: bytes}
        self.total = 0  # the sum of every entry's bytes

    def add(self, last_ws: int, key: str, n_bytes: int) -> None:
        """An entry written to the table under ``key`` (replacing any earlier one of that key)."""
        entries = self.by_ws.setdefault(last_ws, {})
        self.total += n_bytes - entries.get(key, 0)
        entries[key] = n_bytes

    def closed_bytes(self, next_ws: int | None, bound: int | None = None) -> int:
        """Bytes of the entries whose windows are all closed; below ``bound`` (default: the state
        write's, :data:`~spikedetect.stream.owner_persist.MAX_UNPERSISTED_PARTIAL_BYTES`), every
        entry's (as good)."""
        if bound is None:
            bound = owner_persist.MAX_UNPERSISTED_PARTIAL_BYTES
        if self.total < bound:
            return self.total
        return sum(sum(e.values()) for ws, e in self.by_ws.items() if ws < (next_ws or 0))

    def drop_closed(self, next_ws: int | None, table: TableWriter) -> int:
        """Delete from ``table`` the entries whose windows are all before ``next_ws``; how many."""
        if next_ws is None:
            return 0
        n = 0
        for ws in [w for w in self.by_ws if w < next_ws]:
            entries = self.by_ws.pop(ws)
            for key, n_bytes in entries.items():
                table.pop(key, None)
                self.total -= n_bytes
            n += len(entries)
        return n
