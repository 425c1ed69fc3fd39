"""The state of one input partition in the ingest stage, and the rule that makes it idle.

Idle means quiet *and* caught up, and both as fetch answers show them. Until a fetch has
answered since the assignment the end offset is unknown: a restarted worker whose first fetch
is slow (table recovery, a busy machine) must not take the wait for idleness - that would
push the watermark ahead by the wall clock and skip the records it is about to re-read.

The end offset is only as fresh as the last fetch answer read. While the event loop is busy
(owners closing windows for many keys can hold it for seconds) no answer is read, and the
first one read afterwards may have waited in the socket since before a producer sent more.
The fetcher sends its next request only after reading an answer, so a *later* answer reflects
the log after the quiet time. A partition therefore goes idle on the second caught-up answer
received after it had been quiet for ``wait_ms``, and stays idle - its watermark follows the
wall clock, it sends idle marks - only on answers newer than the one its previous tick used,
so each idle mark rests on a fresh answer (owners count them: ``CloseGate.note_mark``).
See docs/operations.md, "Idle input".
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from spikedetect.core.counter import BatchResult, WindowCounter
from spikedetect.core.messages import Mark


@dataclass
class Totals:
    """What the ingest stage did since it started (re-reads after a restart included)."""

    consumed: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: int = 0

    def summary_since(self, last: Totals, elapsed_s: float, *, lag: int, open_incidents: str,
                      partitions: int) -> str:
        """The ``summary`` log line: what happened since ``last``, ``elapsed_s`` ago.

        >>> Totals(consumed=120, accepted=100).summary_since(Totals(), 60.0, lag=0, open_incidents="2",
        ...                                                  partitions=4)[:60]
        'summary interval_s=60.0 events_per_s=2.0 consumed=120 accept'
        """
        elapsed_s = max(elapsed_s, 1e-6)
        return (f"summary interval_s={elapsed_s:.1f} events_per_s={(self.consumed - last.consumed) / elapsed_s:.1f} "
                f"consumed={self.consumed - last.consumed} accepted={self.accepted - last.accepted} lag={lag} "
                f"late={self.late - last.late} rejected={self.rejected - last.rejected} "
                f"duplicates={self.duplicates - last.duplicates} open_incidents={open_incidents} "
                f"partitions={partitions}")


@dataclass
class SourceState:
    """One input partition owned by this worker."""

    partition: int
    counter: WindowCounter
    replay_until: int = -1  # offsets below this were processed before the restart
    next_offset: int = -1  # the next offset to read here (after a restart: the committed resume offset)
    last_arrival: float = field(default_factory=time.monotonic)
    last_mark_ws: int | None = None
    last_mark_at: float = 0.0
    idle: bool = False
    dirty: bool = False
    # the wall time (ms) of the first fetch answer that found this partition caught up after
    # it had been quiet long enough; idleness waits for a later answer to confirm it
    confirm_poll_ms: int | None = None

    def restore(self, committed_offset: int, metadata: str) -> None:
        """Resume from a checkpoint: the counter's watermark as it was, re-reading from the
        committed offset. Records below the recorded position ``o`` were processed before
        (:attr:`replay_until`); until they have been re-read the partition is behind, however
        quiet it looks - re-reading rebuilds the windows that were still open.

        Raises ``ValueError`` (or ``KeyError``/``TypeError``) on an unreadable checkpoint."""
        data = orjson.loads(metadata)
        processed = int(data["o"])  # validated before anything changes
        self.counter.restore_checkpoint({k: data[k] for k in ("max_ts_ms", "floor_wm_ms", "frontier_ms")
                                         if k in data})
        self.replay_until = processed
        self.next_offset = committed_offset

    def feed(self, offsets: Sequence[int], values: Sequence[bytes], stamps: Sequence[int | None],
             origin: Callable[[int], Any]) -> tuple[list[tuple[int, str]], BatchResult | None]:
        """Count one fetch's records: those below :attr:`replay_until` are a re-read (windows
        already closed skipped, open ones rebuilt), the rest new. Returns the rejects (index in
        the fetch, reason) and the new records' result (None: the fetch was all re-read)."""
        split = bisect.bisect_left(offsets, self.replay_until) if self.replay_until > offsets[0] else 0
        rejects: list[tuple[int, str]] = []
        if split:
            res = self.counter.feed_batch(values[:split], stamps[:split], position=offsets[0], replaying=True,
                                          origin=origin)
            rejects += res.rejects
        if split == len(offsets):
            return rejects, None
        new = self.counter.feed_batch(values[split:], stamps[split:], position=offsets[split],
                                      origin=lambda i: origin(split + i))
        return rejects + [(split + i, reason) for i, reason in new.rejects], new

    def go_idle(self, quiet_ms: float, idle_rate: float) -> bool:
        """Idle now: settle the held reports (once, on becoming idle: counted if they continue the
        stream, else ``ts_skewed``) and move the watermark with the wall clock. Returns whether it
        was idle before."""
        was_idle, self.idle = self.idle, True
        c = self.counter
        if not was_idle:
            c.settle()
        anchor = c.anchor_ms()
        if anchor is not None:
            c.advance_to(anchor - c.lateness_ms + int(quiet_ms * idle_rate))
            self.dirty = True
        return was_idle

    def mark(self, n_sources: int) -> Mark:
        """The source's watermark as the core's :class:`Mark`, with the oldest window it still
        holds (owners close nothing from it on until its partials have been sent)."""
        c = self.counter
        return Mark(self.partition, c.watermark_ms, idle=self.idle, n_sources=n_sources, open_ws=c.oldest_open_ms())

    def checkpoint(self) -> tuple[int, str] | None:
        """(resume offset, metadata) to commit; None before anything was read or restored."""
        if self.next_offset < 0:
            return None
        resume = self.counter.resume_position()
        meta = {"o": max(self.next_offset, self.replay_until), **self.counter.checkpoint()}
        return (self.next_offset if resume is None else resume), orjson.dumps(meta).decode()


def idle_now(st: SourceState, *, high: int | None, poll_ms: int | None, quiet_ms: float, wait_ms: int,
             wall_now_ms: float) -> bool:
    """Whether the partition is idle at this look (see the module docstring); keeps its
    confirmation state in ``st.confirm_poll_ms``.

    ``high``: its end offset from the last fetch answer (None: none yet); ``poll_ms``: the wall
    time of that answer; ``quiet_ms``: time since its last records; ``wait_ms``: the quiet time
    that makes it idle.

    >>> from spikedetect.core.config import DetectorConfig
    >>> st = SourceState(0, WindowCounter(DetectorConfig()), next_offset=10)
    >>> look = dict(high=10, quiet_ms=5_000, wait_ms=1_000, wall_now_ms=100_000)
    >>> [idle_now(st, poll_ms=99_000, **look) for _ in range(2)]  # the same answer twice: not yet
    [False, False]
    >>> idle_now(st, poll_ms=99_500, **look)  # a later answer confirms
    True
    """
    if high is None or quiet_ms < wait_ms or high > max(st.next_offset, 0):
        st.confirm_poll_ms = None
        return False  # end unknown yet, not quiet, or quiet only because it is behind
    if st.idle:
        if poll_ms is None or (st.confirm_poll_ms is not None and poll_ms <= st.confirm_poll_ms):
            return False
        st.confirm_poll_ms = poll_ms
        return True
    if poll_ms is None or poll_ms < wall_now_ms - quiet_ms + wait_ms:
        st.confirm_poll_ms = None  # no answer since the quiet time was long enough
        return False
    if st.confirm_poll_ms is None:
        st.confirm_poll_ms = poll_ms
    return poll_ms > st.confirm_poll_ms
