"""Counting reports into event-time windows for one source (an input partition or a file).

The per-event hot path: decode, validate, deduplicate, judge lateness, and add one to
the event's ``(region, category, source)`` entry of its service in its window (the cached
key and leaf tuples are reused, and closed windows are handed over as counted, already
grouped by service). Expansion to every region level happens once per closed window, not per event.
The watermark follows the source's robust frontier (:mod:`spikedetect.core.frontier`).

>>> from spikedetect.core.config import DetectorConfig
>>> c = WindowCounter(DetectorConfig(window_ms=60_000, lateness_ms=0, watermark_quorum=1))
>>> msg = b'{"ts": "2026-11-26T03:14:15Z", "service": "ig", "region": "US/CA", "category": "feed"}'
>>> c.feed_batch([msg, msg.replace(b"14:15", b"15:01"), b"nope"]).rejects
[(2, 'not_json')]
>>> [(w.ws_ms, w.counts) for w in c.take_closed()]
[(1795662840000, {'ig': {('US/CA', 'feed', 'unknown'): 1}})]
"""

from __future__ import annotations

import base64
import heapq
import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

import orjson

from spikedetect.core.config import DetectorConfig
from spikedetect.core.frontier import EVIDENCE_BLOCK, MAX_HELD, Held, HeldReports
from spikedetect.core.reports import SECONDS_MS, ReportValidator
from spikedetect.core.timefmt import MAX_TS_MS, MIN_TS_MS
from spikedetect.kernel import count as _kernel

LeafKey = tuple[str, str, str]  # (region, category, source)
Key = tuple[str, str, str, str]  # (service, region, category, source)
Combo = tuple[Key, LeafKey]  # an admitted key and its leaf part (cached together: no tuple per report)
WindowCounts = dict[str, dict[LeafKey, int]]  # service -> (region, category, source) -> reports

_FIELDS = operator.itemgetter("service", "region", "category", "source")
_COMBO_CACHE_SIZE = 500_000


class EventIds(Protocol):
    """The event ids seen in one window: a set of str (pure path) or the compiled kernel's
    EidSet (raw bytes in C), which answers the same."""

    def __contains__(self, eid: object) -> bool: ...
    def add(self, eid: str) -> None: ...
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...


@dataclass(frozen=True)
class ClosedWindow:
    """Counts of one closed window from one source, leaf level, per service."""

    ws_ms: int
    counts: WindowCounts  # service -> (region, category, source) -> reports


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
    """Per-source window counts with a watermark: the robust frontier minus the allowed lateness.

    ``pure=True`` counts in Python even when the compiled kernel (:mod:`spikedetect.kernel`)
    is built; both give identical results (tests/core/test_counter_kernel.py)."""

    def __init__(self, config: DetectorConfig, *, pure: bool = False) -> None:
        self.config = config
        self.kernel: ModuleType | None = None
        # the compiled kernel's cache of admitted combinations by raw bytes (kernel.RawCombos), each
        # with the generation whose region set holds its region: kept across generations, the kernel
        # re-registers a region on first sight
        self._raw_combos: Any = None
        self.use_kernel(None if pure else _kernel)
        self.window_ms = config.window_ms
        self.lateness_ms = config.lateness_ms
        self.quorum = config.watermark_quorum
        self.hold_ms = config.window_ms  # reports further ahead of the frontier are held
        self.record_lead_ms = max(config.lateness_ms, config.window_ms)  # ts ahead of record time: no evidence
        self.validator = ReportValidator(max_value_bytes=config.max_value_bytes,
                                         max_region_depth=config.max_region_depth)
        self.max_ts_ms: int | None = None  # newest event time counted
        self.frontier_ms: int | None = None  # the robust frontier (frontier.py)
        self.floor_wm_ms: int | None = None  # set by advance_to (idle input)
        self._evidence: list[int] = []  # min-heap: the quorum newest evidence times of the current block
        self._evidence_n = 0
        self._evidence_total = 0  # evidence reports ever: held reports expire by this count
        self.confirm_within = 4 * config.watermark_quorum  # evidence reports a held report may wait
        self.held = HeldReports(MAX_HELD)
        self._dead: list[tuple[Any, bytes, str]] = []  # (origin, raw, reason) rejected after their batch
        # open windows' counts, grouped by service as counted (take_closed hands them over as they are)
        self._counts: dict[int, WindowCounts] = {}
        self._ids: dict[int, EventIds] = {}
        self._first_pos: dict[int, int] = {}
        # Admitted (service, region, category, source) by their raw field values, and the
        # regions each service used in the current generation (at most max_keys_per_service).
        self._combos: dict[tuple[Any, ...], Combo] = {}
        self._regions: dict[str, set[str]] = {}
        self._generation = 0
        self._generation_end = -(2**62)
        self.stats = CounterStats()

    def use_kernel(self, kernel: ModuleType | None) -> None:
        """Count with this compiled kernel (:func:`spikedetect.kernel.load_compiled`), or in
        pure Python (None). Both paths share this object's state, so switching is safe."""
        if kernel is not None:
            kernel.configure(_FIELDS, SECONDS_MS, _COMBO_CACHE_SIZE, EVIDENCE_BLOCK, MIN_TS_MS, MAX_TS_MS)
        self._raw_combos = None if kernel is None else kernel.RawCombos()
        self.kernel = kernel

    # -- watermark -----------------------------------------------------------
    @property
    def watermark_ms(self) -> int | None:
        """Windows ending at or before this are closed; None before the frontier is known."""
        wm = None if self.frontier_ms is None else self.frontier_ms - self.lateness_ms
        if self.floor_wm_ms is not None and (wm is None or self.floor_wm_ms > wm):
            return self.floor_wm_ms
        return wm

    def _hold_at(self) -> int:
        """Reports with ts above this are held (everything, before the frontier is known)."""
        wm = self.watermark_ms
        return -(2**62) if wm is None else wm + self.lateness_ms + self.hold_ms

    def advance_to(self, wm_ms: int) -> None:
        """Move the watermark forward without events (idle input). Never moves it back.

        Held reports that the new watermark brings within ``hold_ms`` (plus the lateness) are
        counted first, so their windows close with them."""
        if self.floor_wm_ms is None or wm_ms > self.floor_wm_ms:
            self.floor_wm_ms = wm_ms
            self._release(self._hold_at())

    def anchor_ms(self) -> int | None:
        """The event time an idle source's watermark advances from: the frontier, or before it
        is known (fewer than ``quorum`` reports) the newest counted or oldest held report."""
        if self.frontier_ms is not None:
            return self.frontier_ms
        if self.max_ts_ms is not None:
            return self.max_ts_ms
        return self.held.items[0].ts_ms if len(self.held) else None

    def take_dead(self) -> list[tuple[Any, bytes, str]]:
        """Reports rejected after their batch (``ts_skewed``): (origin, raw bytes, reason)."""
        out, self._dead = self._dead, []
        return out

    def settle(self) -> None:
        """No more input for now (its end, or idleness): count the held reports that continue
        the stream - each within the lateness plus one window of the newest counted one, or
        within twice the time a quorum of the source's recent reports took to arrive if that is
        longer (a sparse source); the last reports of a source are the ones no quorum can
        confirm - and dead-letter the rest as ``ts_skewed`` (see :meth:`take_dead`)."""
        step = self.lateness_ms + self.hold_ms
        ev = sorted(self._evidence)
        if self.frontier_ms is not None and len(ev) == self.quorum >= 4:
            # a sparse source's tail spans longer: twice what a quorum takes to arrive, from the
            # median gap between its newest reports (robust to a few skewed ones)
            gaps = sorted(b - a for a, b in itertools.pairwise(ev))
            step = max(step, 2 * self.quorum * gaps[len(gaps) // 2])
        newest = self.max_ts_ms
        if self.frontier_ms is None and len(self.held):
            # fewer than quorum reports ever: the median one stands in for the frontier
            mid = sorted(h.ts_ms for h in self.held.items)[(len(self.held) - 1) // 2]
            self._release(mid, late_wm_ms=mid - self.lateness_ms)
            newest = mid if newest is None else max(newest, mid)
        for h in self.held.pop_continuing(newest, step):
            self._count_held(h)
        for h in self.held.clear():
            self._expire(h, "ts_skewed")

    def finish(self) -> None:
        """End of input: :meth:`settle`, then move the watermark past every window that holds data."""
        self.settle()
        if self.max_ts_ms is not None:
            w = self.window_ms
            end = self.max_ts_ms - self.max_ts_ms % w + w
            if self.floor_wm_ms is None or end > self.floor_wm_ms:
                self.floor_wm_ms = end

    def _count_held(self, h: Held) -> None:
        got = self._counts.get(h.ws_ms)
        if got is None:
            got = self._counts[h.ws_ms] = {}
        svc = got.get(h.key[0])
        if svc is None:
            svc = got[h.key[0]] = {}
        leaf = h.key[1:]
        svc[leaf] = svc.get(leaf, 0) + 1
        if self.max_ts_ms is None or h.ts_ms > self.max_ts_ms:
            self.max_ts_ms = h.ts_ms
            if h.ts_ms >= self._generation_end:
                self._new_generation(h.ts_ms)
                self._regions[h.key[0]] = {h.key[1]}

    def _expire(self, h: Held, reason: str) -> None:
        self._dead.append((h.origin, h.raw, reason))
        self.stats.accepted -= 1
        if reason == "late":
            self.stats.late += 1
        else:
            self.stats.rejected += 1

    def _release(self, upto_ms: int, late_wm_ms: int | None = None) -> None:
        """Count the held reports up to ``upto_ms``. ``late_wm_ms``: the watermark the source's
        first frontier sets - reports held before it whose window it closes are ``late``."""
        if len(self.held) and self.held.items[0].ts_ms <= upto_ms:
            for h in self.held.pop_until(upto_ms):
                if late_wm_ms is not None and h.ws_ms + self.window_ms <= late_wm_ms:
                    self._expire(h, "late")
                else:
                    self._count_held(h)

    def _hold(self, raw: bytes, ts: int, ws: int, key: Key, origin: Any, position: int | None,
              deadline: int) -> str | None:
        """Keep a report that is ahead of the frontier; a reason when it cannot be kept."""
        held, evicted = self.held.add(ts, ws, key, raw, origin, deadline)
        if not held:
            return "ts_skewed"
        if evicted is not None:
            self._expire(evicted, "ts_skewed")
        if position is not None:
            self._first_pos.setdefault(ws, position)
        return None

    # -- the hot path ----------------------------------------------------------
    def feed_batch(  # one flat loop on purpose: this is the hot path
        self,
        values: Sequence[bytes],
        fallback_ts_ms: Sequence[int | None] | None = None,
        *,
        position: int | None = None,
        replaying: bool = False,
        origin: Callable[[int], Any] | None = None,
    ) -> BatchResult:
        """Count a batch of raw messages.

        ``fallback_ts_ms[i]`` is message i's Kafka record time: its event time when it has
        no ``ts``, the reference for the future-skew check, and a report whose ``ts`` leads it
        by more than ``record_lead_ms`` is no evidence for the frontier. ``position`` (e.g. the
        batch's first offset: message i is at ``position + i`` or later) is remembered per window
        touched, as the smallest such position, so a driver can resume
        from :meth:`resume_position` after a crash. ``replaying=True`` is for re-reading
        input that was processed before a restart: reports in windows that are already
        closed are skipped silently (they were counted or dead-lettered then). ``origin(i)``
        names message i in a later dead letter (:meth:`take_dead`); default ``(position, i)``.
        """
        result = BatchResult()
        if self.kernel is not None:
            self.kernel.feed_batch(self, values, fallback_ts_ms, position, replaying, origin, result)
            return result
        accepted = duplicates = 0
        rejects = result.rejects
        window_ms = self.window_ms
        lateness_ms = self.lateness_ms
        skew_ms = self.config.max_future_skew_ms
        lead_ms = self.record_lead_ms
        hold_ms = self.hold_ms
        quorum = self.quorum
        max_bytes = self.config.max_value_bytes
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        fields = _FIELDS
        combos = self._combos
        minutes = self.validator.minutes
        slow = self._slow_path
        counts = self._counts
        ids = self._ids
        heap_push, heap_replace, heap_pop = heapq.heappush, heapq.heapreplace, heapq.heappop
        evidence = self._evidence
        evidence_n = self._evidence_n
        min_ts, max_ts_ok = MIN_TS_MS, MAX_TS_MS
        no_floor = -(2**62)
        frontier = no_floor if self.frontier_ms is None else self.frontier_ms
        floor = self.floor_wm_ms
        max_ts = self.max_ts_ms
        wm = self.watermark_ms
        hold_at = self._hold_at()
        held = self.held
        block = EVIDENCE_BLOCK
        ev_total = self._evidence_total
        confirm = self.confirm_within
        ev_min = evidence[0] if len(evidence) == quorum else no_floor
        cur_ws = None
        cur: WindowCounts = {}
        cur_ids: EventIds = set()
        secms = SECONDS_MS
        no_limit = 2**62
        limit = no_limit if frontier == no_floor else frontier + skew_ms  # future-skew bound without fallbacks
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
                key, leaf = combos[fields(obj)]  # TypeError when obj is not a dict
                t = obj["ts"]
                if type(t) is str:  # reports.known_ts_ms inlined (a call: +1.7 % instructions counting)
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
                ts, (key, leaf), eid = checked
            bound = limit
            ev_bound = no_limit
            if fallback_ts_ms is not None:
                fb = fallback_ts_ms[i]
                if fb is not None:
                    ev_bound = fb + lead_ms
                    if limit == no_limit or fb + skew_ms > limit:
                        bound = fb + skew_ms
            if ts > bound:
                rejects.append((i, "ts_too_far_future"))
                continue
            ws = ts - ts % window_ms
            if ts > hold_at:  # ahead of the frontier (never late): held, counted when its window comes
                got_ids = ids.get(ws)
                if eid is not None:
                    if got_ids is None:
                        got_ids = ids[ws] = set()
                    if eid in got_ids:
                        duplicates += 1
                        continue
                reason = self._hold(raw, ts, ws, key, (position, i) if origin is None else origin(i),
                                    None if position is None else position + i,
                                    ev_total + confirm)
                if reason is not None:
                    rejects.append((i, reason))
                    continue
                if eid is not None:
                    got_ids.add(eid)  # type: ignore[union-attr]
                if ts >= self._generation_end:  # key budgets follow the newest accepted time, as before
                    self._new_generation(ts)
                    self._regions[key[0]] = {key[1]}
            else:
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
                            self._first_pos.setdefault(ws, position + i)
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
                svc = cur.get(key[0])
                if svc is None:
                    svc = cur[key[0]] = {}
                svc[leaf] = svc.get(leaf, 0) + 1
                if max_ts is None or ts > max_ts:
                    max_ts = ts
                    if ts >= self._generation_end:
                        self._new_generation(ts)
                        self._regions[key[0]] = {key[1]}  # this report's region opens the new generation
            accepted += 1
            # evidence for the frontier: the quorum-th newest event time of the current block
            if ts <= ev_bound:
                if ts > ev_min:
                    if ev_min != no_floor:
                        heap_replace(evidence, ts)
                        ev_min = evidence[0]
                    else:
                        heap_push(evidence, ts)
                        if len(evidence) == quorum:
                            if frontier == no_floor and max(evidence) - evidence[0] > skew_ms:
                                heap_pop(evidence)  # a first frontier is not dragged back by a stale clock
                            else:
                                ev_min = evidence[0]
                    if ev_min > frontier:
                        first = frontier == no_floor
                        frontier = ev_min
                        limit = frontier + skew_ms
                        wm = frontier - lateness_ms
                        if floor is not None and floor > wm:
                            wm = floor
                        hold_at = wm + lateness_ms + hold_ms
                        if held.items and held.items[0].ts_ms <= hold_at:  # a list test: no __len__ call per advance
                            self.frontier_ms, self.max_ts_ms = frontier, max_ts
                            self._release(hold_at, wm if first else None)
                            max_ts = self.max_ts_ms
                            cur_ws = None  # a release may have created the current window's dicts
                evidence_n += 1
                ev_total += 1
                # not confirmed in time: skewed. Not before a first frontier: until then every report
                # is held, and one far ahead can delay the first quorum past valid reports' deadlines
                if held.items and held.arrivals[0].deadline <= ev_total and frontier != no_floor:
                    for h in held.pop_expired(ev_total):
                        self._expire(h, "ts_skewed")
                if evidence_n >= block:
                    evidence.clear()
                    evidence_n = 0
                    ev_min = no_floor
        self._evidence_n = evidence_n
        self._evidence_total = ev_total
        self.max_ts_ms = max_ts
        self.frontier_ms = None if frontier == no_floor else frontier
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

    def _slow_path(self, obj: dict[str, Any], fallback_ts_ms: int | None) -> tuple[int, Combo, str | None] | str:
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
        combo = ((service, region, category, source), (region, category, source))
        try:
            raw = _FIELDS(obj)
            if len(self._combos) >= _COMBO_CACHE_SIZE:
                self._combos.clear()
            combo = self._combos.setdefault(raw, combo)
        except (KeyError, TypeError):  # e.g. no "source": fine, just not cached
            pass
        return ts, combo, eid

    def _new_generation(self, ts_ms: int) -> None:
        """Forget which regions each service used, once per ``retire_after_ms`` of event time."""
        span = self.config.retire_after_ms
        self._generation_end = (ts_ms // span + 1) * span
        self._generation += 1
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
            self._ids.pop(ws, None)
            self._first_pos.pop(ws, None)
            out.append(ClosedWindow(ws, self._counts.pop(ws)))
        for ws in [ws for ws in self._ids if ws + self.window_ms <= wm and ws not in self._counts]:
            del self._ids[ws]  # ids of held reports that were dead-lettered
        for ws in [ws for ws in self._first_pos if ws + self.window_ms <= wm and ws not in self._counts]:
            del self._first_pos[ws]  # positions of held reports that were dead-lettered
        return out

    def open_windows(self) -> list[int]:
        return sorted(self._counts)

    def oldest_open_ms(self) -> int | None:
        """Start of the oldest window this source still holds counts or held reports for."""
        oldest = min(self._counts) if self._counts else None
        if len(self.held) and (oldest is None or self.held.items[0].ws_ms < oldest):
            oldest = self.held.items[0].ws_ms
        return oldest

    def resume_position(self) -> int | None:
        """The smallest position remembered for a still-open window (None: nothing open)."""
        return min(self._first_pos.values()) if self._first_pos else None

    # -- state ---------------------------------------------------------------------
    def checkpoint(self) -> dict[str, int | None]:
        """What a driver stores to resume exactly by re-reading from :meth:`resume_position`
        (held reports are re-read too: their positions count as open windows)."""
        return {"max_ts_ms": self.max_ts_ms, "floor_wm_ms": self.floor_wm_ms, "frontier_ms": self.frontier_ms}

    def restore_checkpoint(self, data: dict[str, int | None]) -> None:
        self.max_ts_ms = data.get("max_ts_ms")
        self.floor_wm_ms = data.get("floor_wm_ms")
        # a checkpoint from before the robust frontier: its watermark came from the newest time
        self.frontier_ms = data.get("frontier_ms", self.max_ts_ms)
        if self.max_ts_ms is not None:
            self._new_generation(self.max_ts_ms)

    def snapshot(self) -> dict[str, Any]:
        """Full state including open window counts and held reports (JSON-serialisable)."""
        return {
            "max_ts_ms": self.max_ts_ms,
            "floor_wm_ms": self.floor_wm_ms,
            "frontier_ms": self.frontier_ms,
            "evidence": [self._evidence_n, sorted(self._evidence), self._evidence_total],
            "held": [[h.ts_ms, h.ws_ms, list(h.key), base64.b64encode(h.raw).decode(), h.deadline]
                     for h in self.held.items],
            "counts": [[ws, [[svc, *k, n] for svc, leaf in c.items() for k, n in leaf.items()]]
                       for ws, c in self._counts.items()],
            "ids": [[ws, sorted(s)] for ws, s in self._ids.items()],
            "regions": {s: sorted(r) for s, r in self._regions.items()},
            "generation_end": self._generation_end,
            "stats": self.stats.as_dict(),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.max_ts_ms = snap["max_ts_ms"]
        self.floor_wm_ms = snap["floor_wm_ms"]
        self.frontier_ms = snap.get("frontier_ms", self.max_ts_ms)
        self._evidence_n, evidence, self._evidence_total = snap.get("evidence", [0, [], 0])
        self._evidence = list(evidence)
        heapq.heapify(self._evidence)
        self.held = HeldReports(MAX_HELD)
        for ts, ws, key, raw, deadline in sorted(snap.get("held", []), key=lambda h: h[4]):  # arrival order
            self.held.add(ts, ws, (key[0], key[1], key[2], key[3]), base64.b64decode(raw), None, deadline)
        self._counts = {}
        for ws, rows in snap["counts"]:
            got: WindowCounts = {}
            self._counts[ws] = got
            for svc, region, category, source, n in rows:
                got.setdefault(svc, {})[(region, category, source)] = n
        self._ids = {ws: set(ids) for ws, ids in snap["ids"]}  # the kernel reads a set too
        self._first_pos = {}
        self._regions = {s: set(r) for s, r in snap["regions"].items()}
        self._combos = {}
        if self._raw_combos is not None:
            self._raw_combos.clear()
        self._generation_end = snap["generation_end"]
        self.stats = CounterStats(**snap["stats"])
