"""Report events: the input contract and its validation.

A report is one JSON object (UTF-8)::

    {"ts": "2026-11-26T03:14:15.123Z", "service": "instagram", "region": "US/CA/Los Angeles",
     "category": "direct_messages", "source": "app", "event_id": "b2c7"}

Validation never raises: it returns either a :class:`Report` or a reason string
from :data:`REASONS`, which the driver routes to a dead-letter topic or file.

>>> v = ReportValidator()
>>> v.decode(b'{"ts": 1795662855123, "service": "ig", "region": "us/CA", "category": "Login"}')
Report(ts_ms=1795662855123, service='ig', region='US/CA', category='login', source='unknown', event_id=None)
>>> v.decode(b'{"ts": 1795662855123, "service": "ig"}')
'missing_region'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import orjson

from spikedetect.core.timefmt import MAX_TS_MS, MIN_TS_MS, parse_ts_ms

# Machine-readable rejection reasons, with what they mean (also in docs/events.md).
REASONS: dict[str, str] = {
    "value_too_large": "the message is larger than max_value_bytes",
    "not_utf8": "the message is not valid UTF-8",
    "not_json": "the message is not valid JSON (NaN and Infinity literals included)",
    "not_object": "the JSON value is not an object",
    "missing_ts": "no ts and no record timestamp to fall back on",
    "bad_ts_type": "ts is neither an RFC 3339 string nor an integer of epoch milliseconds",
    "bad_ts_format": "ts is a string but not RFC 3339 with an offset",
    "ts_out_of_range": "ts is before 2000 or after 2100",
    "ts_too_far_future": "ts is further ahead of the event-time frontier (or the record time) than max_future_skew_ms",
    "missing_service": "no service",
    "bad_service": "service is not a string of 1-64 printable characters without '|'",
    "missing_region": "no region",
    "bad_region": "region is not a '/'-path of printable, non-empty parts of at most 64 characters",
    "region_too_deep": "region has more levels than max_region_depth",
    "missing_category": "no category",
    "bad_category": "category is not a string of 1-32 printable characters",
    "bad_source": "source is not a string of 1-32 printable characters",
    "bad_event_id": "event_id is not a string of 1-128 printable characters or an integer",
    "too_many_keys": "the service already has max_keys_per_service regions",
    "late": "the report's window was already closed by the watermark",
    "ts_skewed": "ts is ahead of the source's event-time frontier and no other reports confirmed it before "
                 "the input ended (or the hold buffer was full)",
}


# ":SS.mmmZ" -> milliseconds into the minute, for every valid second and millisecond: one
# lookup validates and converts the tail of an RFC 3339 UTC timestamp (with ``minutes``, the
# validator's and the counters' fast path).
SECONDS_MS: dict[str, int] = {f":{s:02d}.{ms:03d}Z": s * 1000 + ms for s in range(60) for ms in range(1000)}


def known_ts_ms(minutes: Mapping[str, int], ts: str) -> int | None:
    """Epoch ms of ``ts``, "YYYY-MM-DDTHH:MM:SS.mmmZ" whose minute is in ``minutes`` (the
    validator's, learned from valid timestamps) and whose tail is in :data:`SECONDS_MS`: the value
    the full parse gives, without the regex and datetime. None for any other string.

    The validator's fast path. The counters' per-report fast paths (``WindowCounter.feed_batch``'s
    pure loop and ``_count.pyx``) inline it over the same dicts, a miss raising KeyError, as a call
    per report costs too much there (tests/core/test_reports.py holds the pure copy to this one)."""
    if len(ts) == 24:
        minute = minutes.get(ts[:16])
        if minute is not None:
            tail = SECONDS_MS.get(ts[16:])
            if tail is not None:
                return minute + tail
    return None


class Report(NamedTuple):
    """A validated report; strings are normalised (region country code and category cased)."""

    ts_ms: int
    service: str
    region: str
    category: str
    source: str
    event_id: str | None


class ReportValidator:
    """Validates decoded report objects; caches the normalisation of repeated strings.

    The caches hold only valid values and are cleared when they grow past ``cache_size``,
    so hostile input cannot grow memory without bound.
    """

    def __init__(self, *, max_value_bytes: int = 8192, max_region_depth: int = 4, cache_size: int = 200_000):
        self.max_value_bytes = max_value_bytes
        self.max_region_depth = max_region_depth
        self.cache_size = cache_size
        # raw -> normalised, valid values only; read directly by the counter's fast path
        self.services: dict[str, str] = {}
        self.regions: dict[str, str] = {}
        self.categories: dict[str, str] = {}
        self.sources: dict[str, str] = {"unknown": "unknown"}
        # "YYYY-MM-DDTHH:MM" -> epoch ms, learned from valid UTC timestamps ending in Z
        self.minutes: dict[str, int] = {}

    # -- whole messages ------------------------------------------------------
    def decode(self, raw: bytes, fallback_ts_ms: int | None = None) -> Report | str:
        """Decode and validate one message (the slow, clear path; drivers batch)."""
        if len(raw) > self.max_value_bytes:
            return "value_too_large"
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            # orjson: "str is not valid UTF-8"; a leading BOM is valid UTF-8 but not JSON
            return "not_utf8" if "not valid utf-8" in str(exc).lower() else "not_json"
        if type(obj) is not dict:
            return "not_object"
        return self.validate(obj, fallback_ts_ms)

    def validate(self, obj: dict[str, object], fallback_ts_ms: int | None = None) -> Report | str:
        """Validate a decoded object; returns a Report or a reason."""
        ts = obj.get("ts")
        if ts is None:
            if fallback_ts_ms is None:
                return "missing_ts"
            ts_ms = fallback_ts_ms
        else:
            parsed = self.ts_ms(ts)
            if isinstance(parsed, str):
                return parsed
            ts_ms = parsed
        why, service = self._label(obj.get("service"), self.services, "missing_service", "bad_service",
                                   self._check_service)
        if why:
            return why
        why, region = self._region(obj.get("region"))
        if why:
            return why
        why, category = self._label(obj.get("category"), self.categories, "missing_category", "bad_category")
        if why:
            return why
        # an absent source is "unknown"; an explicit null is not a source
        why, source = self._label(obj.get("source", "unknown"), self.sources, "", "bad_source")
        if why:
            return why
        why, eid = _event_id(obj.get("event_id"))
        if why:
            return why
        return Report(ts_ms, service, region, category, source, eid)

    # -- fields ---------------------------------------------------------------
    def ts_ms(self, ts: object) -> int | str:
        """Event time in epoch ms, or a reason."""
        if type(ts) is str:
            value = known_ts_ms(self.minutes, ts)
            if value is None:
                value = parse_ts_ms(ts)
            if value is None:
                return "bad_ts_format"
            n = len(ts)
            if ((n == 24 and ts[19] == ".") or n == 20) and ts[-1] == "Z" and MIN_TS_MS <= value < MAX_TS_MS:
                if len(self.minutes) >= self.cache_size:
                    self.minutes.clear()
                self.minutes[ts[:16]] = value - value % 60_000
        elif type(ts) is int:
            value = ts
        elif type(ts) is float and ts.is_integer():
            value = int(ts)
        else:
            return "bad_ts_type"
        if not MIN_TS_MS <= value < MAX_TS_MS:
            return "ts_out_of_range"
        return value

    def _remember(self, cache: dict[str, str], raw: str, value: str) -> str:
        if len(cache) >= self.cache_size:
            cache.clear()
        cache[raw] = value
        return value

    def _region(self, reg: object) -> tuple[str, str]:
        """("", the normalised region) or (reason, "")."""
        region = self.regions.get(reg) if type(reg) is str else None
        if region is not None:
            return "", region
        if reg is None:
            return "missing_region", ""
        return self._check_region(reg)

    def _label(self, raw: object, cache: dict[str, str], missing: str, bad: str,
               check: Callable[[object], str | None] | None = None) -> tuple[str, str]:
        """("", the normalised value) or (reason, ""): ``missing`` when absent (if it has one),
        ``bad`` when ``check`` (default: a category-like label) rejects it."""
        value = cache.get(raw) if type(raw) is str else None
        if value is not None:
            return "", value
        if raw is None and missing:
            return missing, ""
        value = self._check_label(raw, cache) if check is None else check(raw)
        return (bad, "") if value is None else ("", value)

    def _check_service(self, svc: object) -> str | None:
        if type(svc) is not str or not 0 < len(svc) <= 64 or "|" in svc:
            return None
        if not svc.isprintable() or svc.strip() != svc:
            return None
        return self._remember(self.services, svc, svc)

    def _check_region(self, reg: object) -> tuple[str, str]:
        """("", normalised) or (reason, "")."""
        if type(reg) is not str or not 0 < len(reg) <= 256:
            return "bad_region", ""
        parts = reg.split("/")
        if len(parts) > self.max_region_depth:
            return "region_too_deep", ""
        for part in parts:
            if not 0 < len(part) <= 64 or part.strip() != part or not part.isprintable() or part == "*":
                return "bad_region", ""
        country = parts[0]
        if not (2 <= len(country) <= 3 and country.isascii() and country.isalpha()):
            return "bad_region", ""
        parts[0] = country.upper()
        return "", self._remember(self.regions, reg, "/".join(parts))

    def _check_label(self, raw: object, cache: dict[str, str]) -> str | None:
        if type(raw) is not str:
            return None
        value = raw.strip().lower()
        if not 0 < len(value) <= 32 or not value.isprintable():
            return None
        return self._remember(cache, raw, value)


def _event_id(eid: object) -> tuple[str, str | None]:
    """("", the event id or None) or (reason, None); an integer id becomes its string."""
    if eid is not None and type(eid) is not str:
        if type(eid) is int:
            return "", str(eid)
        return "bad_event_id", None
    if eid is not None and not (0 < len(eid) <= 128 and eid.isprintable()):
        return "bad_event_id", None
    return "", eid
