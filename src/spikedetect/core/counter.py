"""Counting reports into event-time windows for one source (an input partition or a file).

The per-event hot path: decode, validate, deduplicate, judge lateness, and add one to
a single dict entry keyed by ``(service, region, category, source)`` in the event's
window. Expansion to every region level happens once per closed window, not per event.

>>> from spikedetect.core.config import DetectorConfig
>>> c = WindowCounter(DetectorConfig(window_ms=60_000, lateness_ms=0))
>>> msg = b'{"ts": "2026-11-26T03:14:15Z", "service": "ig", "region": "US/CA", "category": "feed"}'
>>> c.feed_batch([msg, msg.replace(b"14:15", b"15:01"), b"nope"]).rejects
[(2, 'not_json')]
>>> [(w.ws_ms, w.counts) for w in c.take_closed()]
[(1795662840000, {'ig': {('US/CA', 'feed', 'unknown'): 1}})]
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from spikedetect.core.config import DetectorConfig
from spikedetect.core.reports import ReportValidator
from spikedetect.core.timefmt import MAX_TS_MS, MIN_TS_MS

LeafKey = tuple[str, str, str]  # (region, category, source)
Key = tuple[str, str, str, str]  # (service, region, category, source)

_FIELDS = operator.itemgetter("service", "region", "category", "source")
# ":SS.mmmZ" -> milliseconds into the minute, for every valid second and millisecond: one
# lookup validates and converts the tail of an RFC 3339 UTC timestamp.
_SECONDS_MS: dict[str, int] = {f":{s:02d}.{ms:03d}Z": s * 1000 + ms for s in range(60) for ms in range(1000)}
_COMBO_CACHE_SIZE = 500_000


@dataclass(frozen=True)
class ClosedWindow:
    """Counts of one closed window from one source, leaf level, per service."""

    ws_ms: int
    counts: dict[str, dict[LeafKey, int]]  # service -> (region, category, source) -> reports


@dataclass
class BatchResult:
    """What one batch did; indexes refer to positions in the batch."""

    accepted: int = 0
    duplicates: int = 0
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (index, reason), "late" included


@dataclass
class CounterStats:
    accepted: int = 0
    rejected: int = 0
    late: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "rejected": self.rejected, "late": self.late,
                "duplicates": self.duplicates}


class WindowCounter:
    """Per-source window counts with a watermark (max event time minus allowed lateness)."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.window_ms = config.window_ms
        self.lateness_ms = config.lateness_ms
        self.validator = ReportValidator(max_value_bytes=config.max_value_bytes,
                                         max_region_depth=config.max_region_depth)
        self.max_ts_ms: int | None = None
        self.floor_wm_ms: int | None = None  # set by advance_to (idle input)
        self._counts: dict[int, dict[Key, int]] = {}
        self._ids: dict[int, set[str]] = {}
        self._first_pos: dict[int, int] = {}
        # Admitted (service, region, category, source) by their raw field values, and the
        # regions each service used in the current generation (at most max_keys_per_service).
        self._combos: dict[tuple[Any, ...], Key] = {}
        self._regions: dict[str, set[str]] = {}
        self._generation_end = -(2**62)
        self.stats = CounterStats()

    # -- watermark -----------------------------------------------------------
    @property
    def watermark_ms(self) -> int | None:
        """Windows ending at or before this are closed; None before the first event."""
        wm = None if self.max_ts_ms is None else self.max_ts_ms - self.lateness_ms
        if self.floor_wm_ms is not None and (wm is None or self.floor_wm_ms > wm):
            return self.floor_wm_ms
        return wm

    def advance_to(self, wm_ms: int) -> None:
        """Move the watermark forward without events (idle input). Never moves it back."""
        if self.floor_wm_ms is None or wm_ms > self.floor_wm_ms:
            self.floor_wm_ms = wm_ms

    # -- the hot path ----------------------------------------------------------
    def feed_batch(  # one flat loop on purpose: this is the hot path
        self,
        values: Sequence[bytes],
        fallback_ts_ms: Sequence[int | None] | None = None,
        *,
        position: int | None = None,
        replaying: bool = False,
    ) -> BatchResult:
        """Count a batch of raw messages.

        ``fallback_ts_ms[i]`` is message i's Kafka record time: its event time when it has
        no ``ts``, and the reference for the future-skew check. ``position`` (e.g. the
        batch's first offset) is remembered per window touched, so a driver can resume
        from :meth:`resume_position` after a crash. ``replaying=True`` is for re-reading
        input that was processed before a restart: reports in windows that are already
        closed are skipped silently (they were counted or dead-lettered then).
        """
        result = BatchResult()
        accepted = duplicates = 0
        rejects = result.rejects
        window_ms = self.window_ms
        lateness_ms = self.lateness_ms
        skew_ms = self.config.max_future_skew_ms
        max_bytes = self.config.max_value_bytes
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        fields = _FIELDS
        combos = self._combos
        minutes = self.validator.minutes
        slow = self._slow_path
        counts = self._counts
        ids = self._ids
        min_ts, max_ts_ok = MIN_TS_MS, MAX_TS_MS
        max_ts = self.max_ts_ms
        floor = self.floor_wm_ms
        wm = None if max_ts is None else max_ts - lateness_ms
        if floor is not None and (wm is None or floor > wm):
            wm = floor
        cur_ws = None
        cur: dict[Key, int] = {}
        cur_ids: set[str] = set()
        secms = _SECONDS_MS
        no_limit = 2**62
        limit = no_limit if max_ts is None else max_ts + skew_ms  # future-skew bound without fallbacks
        for i, raw in enumerate(values):
            if len(raw) > max_bytes:
                rejects.append((i, "value_too_large"))
                continue
            try:
                obj = loads(raw)
            except decode_error as exc:
                # orjson: "str is not valid UTF-8"; a leading BOM is valid UTF-8 but not JSON
                rejects.append((i, "not_utf8" if "not valid utf-8" in str(exc).lower() else "not_json"))
                continue
            try:  # fast path: a (service, region, category, source) seen and admitted before
                key = combos[fields(obj)]  # TypeError when obj is not a dict
                t = obj["ts"]
                if type(t) is str:  # "YYYY-MM-DDTHH:MM" cached per minute, ":SS.mmmZ" by table
                    if len(t) != 24:
                        raise KeyError
                    ts = minutes[t[:16]] + secms[t[16:]]
                elif type(t) is int and min_ts <= t < max_ts_ok:
                    ts = t
                else:
                    raise KeyError
                eid = obj.get("event_id")
                if eid is not None and not (type(eid) is str and 0 < len(eid) <= 128 and eid.isprintable()):
                    raise KeyError
            except (KeyError, TypeError, ValueError):
                checked = slow(obj, None if fallback_ts_ms is None else fallback_ts_ms[i])
                if isinstance(checked, str):
                    rejects.append((i, checked))
                    continue
                ts, key, eid = checked
            bound = limit
            if fallback_ts_ms is not None:
                fb = fallback_ts_ms[i]
                if fb is not None and (limit == no_limit or fb + skew_ms > limit):
                    bound = fb + skew_ms
            if ts > bound:
                rejects.append((i, "ts_too_far_future"))
                continue
            ws = ts - ts % window_ms
            if ws != cur_ws:
                if wm is not None and ws + window_ms <= wm:
                    if not replaying:
                        rejects.append((i, "late"))
                    continue
                cur_ws = ws
                got = counts.get(ws)
                if got is None:
                    got = counts[ws] = {}
                    if position is not None:
                        self._first_pos[ws] = position
                cur = got
                got_ids = ids.get(ws)
                if got_ids is None:
                    got_ids = ids[ws] = set()
                cur_ids = got_ids
            elif wm is not None and ws + window_ms <= wm:  # the watermark may have moved past cur_ws
                if not replaying:
                    rejects.append((i, "late"))
                cur_ws = None
                continue
            if eid is not None:
                if eid in cur_ids:
                    duplicates += 1
                    continue
                cur_ids.add(eid)
            cur[key] = cur.get(key, 0) + 1
            accepted += 1
            if max_ts is None or ts > max_ts:
                max_ts = ts
                limit = ts + skew_ms
                wm = max_ts - lateness_ms
                if floor is not None and floor > wm:
                    wm = floor
                if ts >= self._generation_end:
                    self._new_generation(ts)
                    self._regions[key[0]] = {key[1]}  # this report's region opens the new generation
        self.max_ts_ms = max_ts
        st = self.stats
        result.accepted, result.duplicates = accepted, duplicates
        st.accepted += accepted
        st.duplicates += duplicates
        for _, reason in rejects:
            if reason == "late":
                st.late += 1
            else:
                st.rejected += 1
        return result

    def _slow_path(self, obj: dict[str, Any], fallback_ts_ms: int | None) -> tuple[int, Key, str | None] | str:
        """Full validation; admits and caches a new (service, region, category, source)."""
        if type(obj) is not dict:
            return "not_object"
        rep = self.validator.validate(obj, fallback_ts_ms)
        if isinstance(rep, str):
            return rep
        ts, service, region, category, source, eid = rep
        regions = self._regions.get(service)
        if regions is None:
            regions = self._regions[service] = set()
        if region not in regions:
            if len(regions) >= self.config.max_keys_per_service:
                return "too_many_keys"
            regions.add(region)
        key = (service, region, category, source)
        try:
            raw = _FIELDS(obj)
            if len(self._combos) >= _COMBO_CACHE_SIZE:
                self._combos.clear()
            key = self._combos.setdefault(raw, key)
        except (KeyError, TypeError):  # e.g. no "source": fine, just not cached
            pass
        return ts, key, eid

    def _new_generation(self, ts_ms: int) -> None:
        """Forget which regions each service used, once per ``retire_after_ms`` of event time."""
        span = self.config.retire_after_ms
        self._generation_end = (ts_ms // span + 1) * span
        self._regions.clear()
        self._combos.clear()

    # -- closing -----------------------------------------------------------------
    def take_closed(self) -> list[ClosedWindow]:
        """Remove and return every window the watermark has closed, oldest first."""
        wm = self.watermark_ms
        if wm is None:
            return []
        out = []
        for ws in sorted(ws for ws in self._counts if ws + self.window_ms <= wm):
            flat = self._counts.pop(ws)
            self._ids.pop(ws, None)
            self._first_pos.pop(ws, None)
            by_service: dict[str, dict[LeafKey, int]] = {}
            for (service, region, category, source), n in flat.items():
                svc = by_service.get(service)
                if svc is None:
                    svc = by_service[service] = {}
                svc[(region, category, source)] = n
            out.append(ClosedWindow(ws, by_service))
        return out

    def open_windows(self) -> list[int]:
        return sorted(self._counts)

    def resume_position(self) -> int | None:
        """The smallest position remembered for a still-open window (None: nothing open)."""
        return min(self._first_pos.values()) if self._first_pos else None

    # -- state ---------------------------------------------------------------------
    def checkpoint(self) -> dict[str, int | None]:
        """What a driver stores to resume exactly by re-reading from :meth:`resume_position`."""
        return {"max_ts_ms": self.max_ts_ms, "floor_wm_ms": self.floor_wm_ms}

    def restore_checkpoint(self, data: dict[str, int | None]) -> None:
        self.max_ts_ms = data.get("max_ts_ms")
        self.floor_wm_ms = data.get("floor_wm_ms")
        if self.max_ts_ms is not None:
            self._new_generation(self.max_ts_ms)

    def snapshot(self) -> dict[str, Any]:
        """Full state including open window counts (JSON-serialisable)."""
        return {
            "max_ts_ms": self.max_ts_ms,
            "floor_wm_ms": self.floor_wm_ms,
            "counts": [[ws, [[*k, n] for k, n in c.items()]] for ws, c in self._counts.items()],
            "ids": [[ws, sorted(s)] for ws, s in self._ids.items()],
            "regions": {s: sorted(r) for s, r in self._regions.items()},
            "generation_end": self._generation_end,
            "stats": self.stats.as_dict(),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.max_ts_ms = snap["max_ts_ms"]
        self.floor_wm_ms = snap["floor_wm_ms"]
        self._counts = {ws: {(a, b, c, d): n for a, b, c, d, n in rows} for ws, rows in snap["counts"]}
        self._ids = {ws: set(ids) for ws, ids in snap["ids"]}
        self._first_pos = {}
        self._regions = {s: set(r) for s, r in snap["regions"].items()}
        self._combos = {}
        self._generation_end = snap["generation_end"]
        self.stats = CounterStats(**snap["stats"])
