"""When an owner may close windows: the scorer's closing watermark, held back for idle sources.

An idle source is left out of the scorer's closing watermark (it has nothing to send), but an
owner only closes on a watermark that has stood for ``idle_grace`` of wall time while some source
is idle, only after each idle source confirmed its idleness ``idle_confirmations`` times since
the watermark moved, and never past the oldest window a source still holds (its marks say which).
See docs/operations.md, "Idle input".
"""

from __future__ import annotations

import time
from collections import deque

from spikedetect.core.scorer import Scorer

# idle marks of a source an owner waits for after the watermark moved before it closes past it
# (see CloseGate.note_mark): the third rests on a fetch requested after the move
IDLE_CONFIRMATIONS = 3


class CloseGate:
    """The closing rule of one owner partition (wall-clock grace and idle confirmations)."""

    def __init__(self, scorer: Scorer, idle_grace_ms: int = 0, idle_confirmations: int = 0) -> None:
        self.scorer = scorer
        self.idle_grace_s = idle_grace_ms / 1000.0
        self._wm_history: deque[tuple[float, int]] = deque()
        # per idle source: the closing watermark as it stood when each of its latest
        # ``idle_confirmations`` idle marks arrived (see closable)
        self.idle_confirmations = idle_confirmations
        self._idle_marks: dict[int, deque[int | None]] = {}
        self.open_ws: dict[int, int] = {}  # per source: the oldest window it still holds (latest mark)

    def holds(self, source: int, open_ws: int | None) -> None:
        """A mark said the oldest window ``source`` still holds (None: none)."""
        if open_ws is None:
            self.open_ws.pop(source, None)
        else:
            self.open_ws[source] = open_ws

    def closable(self) -> int | None:
        """The watermark to close up to. While some source is idle - excluded because it has
        nothing to send - only a watermark that has stood for ``idle_grace`` of wall time is
        used, so a source that was idle a moment ago and is now reading new data (another
        worker's fetch is a few hundred ms behind) gets to report before windows close.
        Never past the oldest window a source still holds (its marks say which): an idle
        source's counts for it are still to come."""
        s = self.scorer
        wm = self.candidate()
        if wm is None:
            return None
        if self.idle_confirmations:
            for src in s.idle_sources:
                marks = self._idle_marks.get(src)
                if marks is None or len(marks) < self.idle_confirmations or marks[0] is None:
                    return None
                wm = min(wm, marks[0])
        now = time.monotonic()
        hist = self._wm_history
        if not hist or hist[-1][1] != wm:
            hist.append((now, wm))
        if not s.idle_sources or self.idle_grace_s <= 0:
            hist.clear()
            hist.append((now, wm))
            return wm
        while len(hist) > 1 and hist[1][0] <= now - self.idle_grace_s:
            hist.popleft()
        if hist[0][0] > now - self.idle_grace_s:
            return None
        return min(hist[0][1], wm)

    def candidate(self) -> int | None:
        """The scorer's closing watermark, never past the oldest window a source still holds."""
        wm = self.scorer.closing_watermark()
        if wm is not None and self.open_ws:
            wm = min(wm, min(self.open_ws.values()))
        return wm

    def note_mark(self, source: int, idle: bool) -> None:
        """Remember where the closing watermark stood when an idle source said so again.

        An idle source is left out of the closing watermark, but wall time alone does not show
        that it is still idle: while the event loop is busy no fetch is read, and a partition
        whose first records came meanwhile looks idle for seconds. Its ingest sends an idle mark
        only on a fetch answer newer than the previous mark's, so the ``idle_confirmations``-th
        idle mark after the watermark reached W rests on an answer requested after W's records
        were read: records in that partition older than W would have ended its idleness."""
        if not self.idle_confirmations:
            return
        if not idle:
            self._idle_marks.pop(source, None)
            return
        marks = self._idle_marks.get(source)
        if marks is None:
            marks = self._idle_marks[source] = deque(maxlen=self.idle_confirmations)
        marks.append(self.candidate())


__all__ = ["IDLE_CONFIRMATIONS", "CloseGate"]
