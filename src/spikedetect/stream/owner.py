"""Stage 2: own the keys of some services, close windows, publish incidents.

One :class:`PartitionOwner` per assigned partition of the partials topic (services are
routed there by key). Its state lives in one Faust table, so every write of a
partition lands, in order, in one changelog partition:

* ``<q>|k|<service>|<region>`` -> the key's baseline row, incident tracker, last window applied
* ``<q>|p|<ws>|<source>|<service>|<chunk>`` -> a partial as received (until its window closes)
* ``<q>|m|<source>`` -> that source's latest mark
* ``<q>|meta`` -> the first window not yet closed

Closing a window: publish its incident events and wait for the broker's ack, then write
every key, then the meta record, then delete the window's partials. A crash at any
point of that sequence leaves a changelog prefix from which the next owner re-closes
the window only for keys that had not applied it, re-emitting identical events
(same ``incident_id`` and ``seq``) that consumers deduplicate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import orjson

from spikedetect.core.config import DetectorConfig
from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.scorer import ClosedKeys, Scorer
from spikedetect.core.state import export_key, import_key
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.wire import WireError, decode

log = logging.getLogger("spikedetect.owner")

Publish = Callable[[list[IncidentEvent], list[tuple[bytes, list[tuple[str, bytes]]]]], Any]


class PartitionOwner:
    def __init__(self, partition: int, config: DetectorConfig, table: MutableMapping[str, bytes],
                 metrics: Metrics, on_window: Callable[[int, ClosedKeys], None] | None = None) -> None:
        self.q = partition
        self.config = config
        self.table = table
        self.metrics = metrics
        self.scorer = Scorer(config, sources=())
        self.scorer.on_window = on_window
        self.partial_keys: dict[int, set[str]] = {}
        self.stale: list[str] = []
        self._rebuild()

    # -- recovery ------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Load this partition's keys, marks and pending partials from the table."""
        prefix = f"{self.q}|"
        meta: dict[str, Any] = {}
        partials: list[tuple[str, bytes]] = []
        s = self.scorer
        for key, value in list(self.table.items()):
            if not isinstance(key, str) or not key.startswith(prefix):
                continue
            kind = key[len(prefix):len(prefix) + 1]
            if kind == "k":
                _, _, svc, region = key.split("|", 3)
                import_key(s, (svc, region), orjson.loads(value))
            elif kind == "m":
                mark = orjson.loads(value)
                s.set_watermark(int(key.rsplit("|", 1)[1]), mark["wm"], idle=mark["idle"])
            elif key == f"{prefix}meta":
                meta = orjson.loads(value)
            elif kind == "p":
                partials.append((key, value))
        s.expect_sources(range(int(meta.get("n_src", 0))))
        s.next_ws = meta.get("next_ws")
        for key, value in partials:
            msg = decode(value)
            if s.next_ws is not None and msg.ws_ms < s.next_ws:
                self.stale.append(key)
                continue
            s.add_partial(msg.source, msg.window(), (msg.service, msg.chunk))
            self.partial_keys.setdefault(msg.ws_ms, set()).add(key)
        if s.keyspace.size or s.next_ws is not None:
            log.info("owner %s recovered %d keys, next window %s, %d pending partials",
                     self.q, s.keyspace.size, s.next_ws, len(partials) - len(self.stale))

    # -- messages --------------------------------------------------------------------
    async def handle(self, blob: bytes, publish: Publish) -> None:
        s = self.scorer
        t = self.table
        for key in self.stale:
            t.pop(key, None)
        self.stale.clear()
        try:
            msg = decode(blob)
        except WireError as exc:
            log.warning("owner %s ignores a foreign message: %s", self.q, exc)
            return
        if msg.kind == "partial":
            key = f"{self.q}|p|{msg.ws_ms}|{msg.source}|{msg.service}|{msg.chunk}"
            before = s.stats.replayed_partials + s.stats.late_partials
            s.add_partial(msg.source, msg.window(), (msg.service, msg.chunk))
            if s.stats.replayed_partials + s.stats.late_partials == before:
                t[key] = blob
                self.partial_keys.setdefault(msg.ws_ms, set()).add(key)
        else:
            if msg.n_sources > len(s.watermarks):
                s.expect_sources(range(msg.n_sources))
                t[f"{self.q}|meta"] = orjson.dumps({"next_ws": s.next_ws, "n_src": len(s.watermarks)})
            s.set_watermark(msg.source, msg.wm_ms, idle=msg.idle)
            t[f"{self.q}|m|{msg.source}"] = orjson.dumps({"wm": s.watermarks[msg.source], "idle": msg.idle})
        await self._close(publish)

    async def _close(self, publish: Publish) -> None:
        s = self.scorer
        before = s.next_ws
        windows_before = s.stats.windows_closed
        t0 = time.perf_counter()
        events = s.close_ready()
        late = [_late_record(self.q, lp) for lp in s.late]
        late_reports = sum(lp.reports for lp in s.late)
        s.late.clear()
        if events or late:
            await publish(events, late)
        closed = s.stats.windows_closed - windows_before
        if s.next_ws == before and not closed:
            return
        t = self.table
        for sk in s.keyspace.keys:
            t[f"{self.q}|k|{sk[0]}|{sk[1]}"] = orjson.dumps(export_key(s, sk))
        for sk in s.retired:
            t.pop(f"{self.q}|k|{sk[0]}|{sk[1]}", None)
        s.retired.clear()
        t[f"{self.q}|meta"] = orjson.dumps({"next_ws": s.next_ws, "n_src": len(s.watermarks)})
        for ws in [w for w in self.partial_keys if s.next_ws is not None and w < s.next_ws]:
            for key in self.partial_keys.pop(ws):
                t.pop(key, None)
        m = self.metrics
        m.windows_closed.inc(closed)
        if closed:
            m.scoring_seconds.observe((time.perf_counter() - t0) / closed)
        m.keys_scored.inc(closed * s.keyspace.size)
        m.late_partials.inc(late_reports)
        wm = s.closing_watermark()
        if wm is not None:
            m.watermark_delay.set(max(0.0, time.time() - wm / 1000.0))


def _late_record(q: int, lp: Any) -> tuple[bytes, list[tuple[str, bytes]]]:
    body = {"reason": "late_partial", "owner_partition": q, "source_partition": lp.source,
            "ws_ms": lp.ws_ms, "reports": lp.reports}
    return orjson.dumps(body), [("spikedetect.reason", b"late_partial")]
