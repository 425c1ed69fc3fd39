"""The robust event-time frontier of one source, and the reports held ahead of it.

A source's watermark is its *frontier* minus the allowed lateness. The frontier is not the
newest event time seen - one report from a phone whose clock is 50 minutes ahead would then
make every report of the next 48 minutes late - but the newest time that many reports agree on:

* **The rule.** Evidence reports are taken in arrival order in blocks of ``EVIDENCE_BLOCK``
  (256); within the current block the ``quorum``-th newest event time (default 8) is a
  candidate, and the frontier is the largest candidate so far (it never moves back). A report
  whose ``ts`` leads its Kafka record timestamp by more than ``record_lead_ms`` is skewed by
  definition and is no evidence.
* **The bound.** The frontier passes the newest *valid* report only when at least ``quorum``
  reports that are all ahead of it arrive within one block: fewer than ``quorum`` skewed
  reports among any 256 consecutive reports of a source never move its watermark, whatever
  their ``ts`` (up to ``max_future_skew_ms`` ahead; further is ``ts_too_far_future``).
  ``quorum=1`` is the plain "newest event time" watermark.
* **The cost.** The frontier trails the newest report by the time ``quorum - 1`` more reports
  take to arrive (at most about ``2 * quorum`` reports at a block boundary): at 2 reports/s,
  4-8 s of event time; at 40,000/s, well under a millisecond. A source that never brings
  ``quorum`` reports into one block closes its windows only when it ends (replay) or idles
  (live).

Reports more than ``hold_ms`` (one window) ahead of the frontier are *held*: kept aside, with
their raw bytes, in a bounded :class:`HeldReports` buffer. A held report is counted into its
window once the frontier (or an idle watermark) comes within ``hold_ms`` of it - so before its
window can close; it never closes windows itself. It must be confirmed that way within the next
``4 * quorum`` evidence reports of its source (a genuine jump in event time is confirmed by the
reports that follow it); otherwise it was skewed and is dead-lettered as ``ts_skewed``. Before
the source's first frontier every report is held and none expires: a report far ahead can delay
the first quorum (which may not span more than ``max_future_skew_ms``) by many reports. When
the input ends (replay) or goes idle (live), held reports that continue the stream - each within
the lateness plus one window of the newest counted one (or twice the time a quorum of the
source's newest reports took to arrive, for a sparse source), as the last reports of a source
can have no quorum after them - are counted, the rest are ``ts_skewed``; so is the furthest-ahead report
when the buffer is full. A report less than one window ahead is indistinguishable from a valid
one and is counted in its window (it still cannot move the frontier alone).

>>> robust_frontier([100, 101, 102, 5_000, 103], quorum=3)  # 5_000 alone moves nothing
102
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

EVIDENCE_BLOCK = 256
MAX_HELD = 4096


def robust_frontier(times: Iterable[int], quorum: int, block: int = EVIDENCE_BLOCK,
                    max_future_skew_ms: int = 3_600_000) -> int | None:
    """The frontier after evidence ``times`` in arrival order (reference form of the counter's rule).

    The first frontier is not formed from a quorum spanning more than ``max_future_skew_ms``:
    its oldest report (a clock that is behind) is dropped and the next one awaited."""
    best: int | None = None
    heap: list[int] = []
    for n, ts in enumerate(times, 1):
        if len(heap) < quorum:
            heapq.heappush(heap, ts)
            if best is None and len(heap) == quorum and max(heap) - heap[0] > max_future_skew_ms:
                heapq.heappop(heap)
        elif ts > heap[0]:
            heapq.heapreplace(heap, ts)
        if len(heap) == quorum and (best is None or heap[0] > best):
            best = heap[0]
        if n % block == 0:
            heap = []
    return best


@dataclass(order=True)
class Held:
    """A report waiting for confirmation: event time, window, key, raw bytes, origin, and the
    count of evidence reports by which the frontier must have come within reach of it."""

    ts_ms: int
    seq: int
    ws_ms: int = field(compare=False)
    key: tuple[str, str, str, str] = field(compare=False)
    raw: bytes = field(compare=False)
    origin: Any = field(compare=False, default=None)
    deadline: int = field(compare=False, default=0)
    done: bool = field(compare=False, default=False)


class HeldReports:
    """Reports ahead of the frontier, by event time (to release) and by arrival (to expire),
    at most ``limit`` of them."""

    def __init__(self, limit: int = MAX_HELD) -> None:
        self.limit = limit
        self.items: list[Held] = []  # sorted by (ts_ms, seq)
        self.arrivals: deque[Held] = deque()  # by arrival = by deadline; released ones are skipped
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self.items)

    def add(self, ts_ms: int, ws_ms: int, key: tuple[str, str, str, str], raw: bytes,
            origin: Any, deadline: int) -> tuple[bool, Held | None]:
        """Hold a report. Returns (held, evicted): when full, the furthest-ahead report goes -
        the new one itself (held False) when nothing held is further ahead."""
        item = Held(ts_ms, next(self._seq), ws_ms, key, raw, origin, deadline)
        evicted = None
        if len(self.items) >= self.limit:
            if self.items[-1].ts_ms <= ts_ms:
                return False, None
            evicted = self.items.pop()
            evicted.done = True
        bisect.insort(self.items, item)
        self.arrivals.append(item)
        return True, evicted

    def _take(self, out: list[Held]) -> list[Held]:
        for h in out:
            h.done = True
        while self.arrivals and self.arrivals[0].done:
            self.arrivals.popleft()
        return out

    def pop_until(self, ts_ms: int) -> list[Held]:
        """Remove and return the held reports with event time at or before ``ts_ms``, oldest first."""
        i = bisect.bisect_right([h.ts_ms for h in self.items], ts_ms) if self.items else 0
        out, self.items = self.items[:i], self.items[i:]
        return self._take(out)

    def pop_expired(self, evidence_total: int) -> list[Held]:
        """Remove and return the held reports whose deadline has passed, in arrival order."""
        out = []
        arrivals = self.arrivals
        while arrivals and (arrivals[0].done or arrivals[0].deadline <= evidence_total):
            h = arrivals.popleft()
            if not h.done:
                out.append(h)
        if out:
            gone = {id(h) for h in out}
            self.items = [h for h in self.items if id(h) not in gone]
        return self._take(out)

    def pop_continuing(self, newest_ms: int | None, step_ms: int) -> list[Held]:
        """End of input: the held reports that continue the stream, each within ``step_ms`` of
        the newest counted one (``newest_ms``; None: nothing was counted, so all of them)."""
        if newest_ms is None:
            out, self.items = self.items, []
            return self._take(out)
        i = 0
        items = self.items
        while i < len(items) and items[i].ts_ms <= newest_ms + step_ms:
            newest_ms = max(newest_ms, items[i].ts_ms)
            i += 1
        out, self.items = items[:i], items[i:]
        return self._take(out)

    def clear(self) -> list[Held]:
        out, self.items = self.items, []
        return self._take(out)
