"""The messages between the counter side and the scorer side of the core (``Partial``, ``Mark``).

A source's :class:`~spikedetect.core.counter.WindowCounter` hands out its closed windows as
*partials* and its watermark as a *mark*; a :class:`~spikedetect.core.scorer.Scorer` merges
the partials of every source and closes a window once every gating source's mark has passed
it. In one process :class:`~spikedetect.core.pipeline.Pipeline` passes them directly; live,
``stream/wire.py`` encodes the same two types on the partials topic.

>>> from spikedetect.core.counter import ClosedWindow
>>> p = Partial(3, ClosedWindow(60_000, {"ig": {("US", "feed", "web"): 2}}), part=("ig", 0))
>>> p.kind, p.ws_ms, p.reports
('partial', 60000, 2.0)
>>> Mark(3, 120_000, idle=True).kind
'mark'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from spikedetect.core.counter import ClosedWindow


@dataclass(frozen=True)
class Partial:
    """One source's leaf counts of a closed window (or a piece of them, named by ``part``)."""

    source: Any
    window: ClosedWindow
    part: Any = 0  # a piece's name when a source splits a window (live: (service, chunk))
    kind: ClassVar[Literal["partial"]] = "partial"

    @property
    def ws_ms(self) -> int:
        return self.window.ws_ms

    @property
    def reports(self) -> float:
        return float(sum(sum(c.values()) for c in self.window.counts.values()))


@dataclass(frozen=True)
class Mark:
    """A source's watermark; ``idle``: it has nothing to send now (it stops holding windows open).

    ``n_sources`` (live: the input partitions) and ``open_ws`` (the oldest window the source
    still holds) are what the live owner needs besides; in one process they stay unset."""

    source: Any
    wm_ms: int | None
    idle: bool = False
    n_sources: int = 0
    open_ws: int | None = None
    kind: ClassVar[Literal["mark"]] = "mark"


Message = Partial | Mark

__all__ = ["Mark", "Message", "Partial"]
