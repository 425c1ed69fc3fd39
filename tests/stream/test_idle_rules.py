"""Quiet input loses no counts (issue 13): the owner and ingest idle rules, driven directly.

* An idle source's marks carry the oldest window it still holds; an owner closes nothing from
  there on - even when every source is idle and another's wall-clock watermark is far ahead -
  until that source's partials are in. (Live, at the end of a burst, the owner closed the last
  two windows before input partition 2's partials for them arrived: 23 reports late_partial.)
* The late-partial metric counts what the dead-letter topic gets (it read 0 with 23 dead letters).
* A partition that has delivered nothing since its assignment waits 3 x idle_ms to be idle.
* A partition going idle settles its held reports and its mark says which window it still holds.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import ClosedWindow, WindowCounter
from spikedetect.stream.ingest import SourceState
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.outbox import Outbox
from spikedetect.stream.owner import IDLE_CONFIRMATIONS, PartitionOwner
from spikedetect.stream.wire import decode, encode_mark, encode_partials
from tests.stream.test_reliability_ingest import SETTINGS, idle_ticks, service

BASE = 1_795_651_200_000
MIN = 60_000
CFG = DetectorConfig()


def partials(source: int, ws: int, n: int) -> list[bytes]:
    window = ClosedWindow(ws, {"ig": {("US/CA", "login", "app"): n}})
    return [blob for _, blob in encode_partials(source, window)]


class Owner:
    def __init__(self, idle_confirmations: int = 0) -> None:
        self.metrics = Metrics()
        self.closed: dict[int, float] = {}
        self.sent: list[Outbox] = []
        self.owner = PartitionOwner(0, CFG, {}, self.metrics, on_window=self._window,
                                    idle_confirmations=idle_confirmations)

    def _window(self, ws: int, closed: Any) -> None:
        self.closed[ws] = float(closed.observed[closed.keys.index(("ig", "*"))])

    async def _publish(self, out: Outbox) -> None:
        self.sent.append(out)

    async def send(self, *blobs: bytes) -> None:
        for blob in blobs:
            await self.owner.handle(blob, self._publish)

    def late_metric(self) -> float:
        value = self.metrics.registry.get_sample_value("spikedetect_late_partial_reports_total")
        return 0.0 if value is None else value

    def dead(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for out in self.sent for body, _ in out.dead]


async def test_an_idle_source_that_still_holds_a_window_keeps_it_open() -> None:
    o = Owner()
    # source 0 went quiet first: its wall-clock watermark is far ahead, it holds nothing
    await o.send(*partials(0, BASE, 5), *partials(0, BASE + MIN, 6))
    await o.send(encode_mark(0, BASE + 30 * MIN, 2, idle=True, open_ws=None))
    # source 1 is idle too, but its counter still holds the window BASE + MIN (its own idle
    # watermark has only passed BASE + MIN): the window must wait for its partials
    await o.send(*partials(1, BASE, 1))
    await o.send(encode_mark(1, BASE + MIN, 2, idle=True, open_ws=BASE + MIN))
    assert o.closed == {BASE: 6.0}
    await o.send(*partials(1, BASE + MIN, 2))
    await o.send(encode_mark(1, BASE + 5 * MIN, 2, idle=True, open_ws=None))
    assert o.closed[BASE + MIN] == 8.0  # both sources' counts
    assert o.dead() == [] and o.late_metric() == 0


async def test_an_owner_closes_past_an_idle_source_only_after_it_confirms_idleness_again() -> None:
    """Live, the overload run lost one service's first window (a late_partial): input
    partition 2 had delivered nothing yet and was idle, the event loop was busy for seconds
    while its first records arrived, and the owner closed window BASE on the other partitions'
    watermark without it. Now the owner waits for IDLE_CONFIRMATIONS idle marks of each idle
    source after the watermark moved (each rests on a fresh fetch answer); a source whose
    records turn up meanwhile ends its idleness with their partials first."""
    o = Owner(idle_confirmations=IDLE_CONFIRMATIONS)
    await o.send(encode_mark(1, None, 2, idle=True))  # source 1: nothing delivered yet
    await o.send(*partials(0, BASE, 5))
    await o.send(encode_mark(0, BASE + 2 * MIN, 2, open_ws=None))
    for _ in range(IDLE_CONFIRMATIONS - 1):  # still idle, but not yet enough answers since
        await o.send(encode_mark(1, None, 2, idle=True))
    assert o.closed == {}
    await o.send(*partials(1, BASE, 3))  # its records were on the way: not late
    await o.send(encode_mark(1, BASE + 2 * MIN, 2, open_ws=None))
    assert o.closed[BASE] == 8.0 and o.dead() == []
    # and a source that stays idle lets the window close once it has confirmed enough times
    o = Owner(idle_confirmations=IDLE_CONFIRMATIONS)
    await o.send(encode_mark(1, None, 2, idle=True))
    await o.send(*partials(0, BASE, 5))
    await o.send(encode_mark(0, BASE + 2 * MIN, 2, open_ws=None))
    for _ in range(IDLE_CONFIRMATIONS):
        await o.send(encode_mark(1, None, 2, idle=True))
    assert o.closed[BASE] == 5.0


async def test_the_late_partial_metric_counts_what_is_dead_lettered() -> None:
    o = Owner()
    await o.send(encode_mark(2, None, 3, idle=True))  # source 2 has never delivered anything
    await o.send(*partials(0, BASE, 5), *partials(1, BASE, 4))
    await o.send(encode_mark(0, BASE + 3 * MIN, 3), encode_mark(1, BASE + 3 * MIN, 3))
    assert BASE in o.closed
    await o.send(*partials(2, BASE, 7))  # its first window, after the others closed it: forced late
    await o.send(*partials(2, BASE + 3 * MIN, 3))  # an open window: merged, not late
    dead = o.dead()
    assert [(d["reason"], d["source_partition"], d["reports"]) for d in dead] == [("late_partial", 2, 7.0)]
    assert o.late_metric() == sum(d["reports"] for d in dead) == 7.0


async def test_a_partition_that_never_delivered_waits_longer_to_be_idle() -> None:
    svc, _ = service(high=10)
    for st in svc.sources.values():
        st.next_offset = 10
    fresh = svc.sources[0]
    fresh.last_arrival = time.monotonic() - 2 * SETTINGS.idle_ms / 1000  # quiet 2 x idle_ms
    delivered = svc.sources[1]
    delivered.counter.feed_batch([orjson.dumps({"ts": BASE + i * 1000, "service": "ig", "region": "US",
                                                "category": "x"}) for i in range(20)])
    delivered.last_arrival = fresh.last_arrival
    await idle_ticks(svc)
    assert delivered.idle and not fresh.idle
    fresh.last_arrival = time.monotonic() - 3.1 * SETTINGS.idle_ms / 1000
    await idle_ticks(svc)
    assert fresh.idle
    assert SETTINGS.idle_empty_wait_ms == 3 * SETTINGS.idle_ms
    assert SETTINGS.replace(idle_empty_ms=500).idle_empty_wait_ms == 500


async def test_going_idle_settles_held_reports_and_the_mark_names_the_open_window() -> None:
    svc, _ = service(high=10)
    svc.n_owners = 1
    st: SourceState = svc.sources[1]
    st.next_offset = 10
    c: WindowCounter = st.counter
    c.feed_batch([orjson.dumps({"ts": BASE + i * 1000, "service": "ig", "region": "US", "category": "x"})
                  for i in range(20)])
    res = c.feed_batch([orjson.dumps({"ts": BASE + 40 * MIN, "service": "ig", "region": "US", "category": "x"})],
                       origin=lambda i: i)
    assert res.rejects == [] and len(c.held) == 1  # 40 min ahead of the frontier
    st.last_arrival = time.monotonic() - 2 * SETTINGS.idle_ms / 1000
    dead: list[tuple[Any, str]] = []

    async def dead_letter(tp: Any, rejected: list[tuple[Any, str]]) -> None:
        dead.extend(rejected)

    svc._dead_letter = dead_letter  # type: ignore[method-assign]
    await idle_ticks(svc)
    assert st.idle and len(c.held) == 0
    assert dead == [(0, "ts_skewed")]
    marks = [decode(v) for topic, v in svc.producer.sent if decode(v).kind == "mark" and decode(v).source == 1]  # type: ignore[union-attr]
    assert marks and marks[-1].idle and marks[-1].open_ws == BASE  # its first window is still open
