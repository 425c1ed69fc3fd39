"""Report validation: one row per rejection reason, on the validator and on both counter paths.

The counter has a fast path for (service, region, category, source) combinations and minutes
it has already validated; a "warm" counter must judge every message exactly like the validator.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core import reports
from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter
from spikedetect.core.reports import REASONS, Report, ReportValidator
from spikedetect.core.timefmt import MAX_TS_MS, MIN_TS_MS, format_ts_ms

T = 1_795_662_855_123  # 2026-11-26T03:14:15.123Z
BASE: dict[str, Any] = {
    "ts": "2026-11-26T03:14:15.123Z",
    "service": "ig",
    "region": "US/CA/Los Angeles",
    "category": "login",
    "source": "app",
    "event_id": "e1",
}
MISSING = object()


def msg(**changes: Any) -> bytes:
    obj = dict(BASE)
    for key, value in changes.items():
        if value is MISSING:
            del obj[key]
        else:
            obj[key] = value
    return orjson.dumps(obj)


def raw_with(field: str, literal: str) -> bytes:
    """BASE with one field's JSON text replaced verbatim (for literals orjson will not write)."""
    obj = dict(BASE)
    obj[field] = "@@"
    return orjson.dumps(obj).replace(b'"@@"', literal.encode())


def sized(n: int) -> bytes:
    """A valid message of exactly n bytes (padded with an ignored field)."""
    bare = msg(pad="")
    out = msg(pad="x" * (n - len(bare)))
    assert len(out) == n
    return out


# (raw message, expected reason)
REJECTS: list[tuple[str, bytes, str]] = [
    ("oversized", sized(8193), "value_too_large"),
    ("garbage", b"not json", "not_json"),
    ("truncated", msg()[:-1], "not_json"),
    ("empty", b"", "not_json"),
    ("nan_literal", raw_with("ts", "NaN"), "not_json"),
    ("infinity", raw_with("ts", "Infinity"), "not_json"),
    ("minus_infinity", raw_with("ts", "-Infinity"), "not_json"),
    ("overflowing_float", raw_with("ts", "1e400"), "not_json"),
    ("invalid_utf8_byte", b"\xff", "not_utf8"),
    ("invalid_utf8_in_string", msg().replace(b"Los Angeles", b"Los \xffngeles"), "not_utf8"),
    ("json_array", b"[1, 2]", "not_object"),
    ("json_number", b"42", "not_object"),
    ("json_string", b'"hello"', "not_object"),
    ("json_null", b"null", "not_object"),
    ("missing_ts", msg(ts=MISSING), "missing_ts"),
    ("null_ts", msg(ts=None), "missing_ts"),
    ("bool_ts", msg(ts=True), "bad_ts_type"),
    ("non_integral_float_ts", msg(ts=T + 0.5), "bad_ts_type"),
    ("list_ts", msg(ts=[T]), "bad_ts_type"),
    ("object_ts", msg(ts={"ms": T}), "bad_ts_type"),
    ("string_ts_without_offset", msg(ts="2026-11-26T03:14:15"), "bad_ts_format"),
    ("string_ts_garbage", msg(ts="yesterday"), "bad_ts_format"),
    ("string_ts_digits", msg(ts=str(T)), "bad_ts_format"),
    # same cached minute as the warm-up events, non-ASCII digits after it: the fast path must not take it
    ("string_ts_arabic_indic_ms", msg(ts="2026-11-26T03:14:15.\u0661\u0662\u0663Z"), "bad_ts_format"),
    ("string_ts_second_60", msg(ts="2026-11-26T03:14:60Z"), "bad_ts_format"),
    ("string_ts_bad_second", msg(ts="2026-11-26T03:14:1x.000Z"), "bad_ts_format"),
    ("ts_1970_string", msg(ts="1970-01-01T00:00:00Z"), "ts_out_of_range"),
    ("ts_1970_int", msg(ts=0), "ts_out_of_range"),
    ("ts_negative_int", msg(ts=-T), "ts_out_of_range"),
    ("ts_2200_string", msg(ts="2200-01-01T00:00:00Z"), "ts_out_of_range"),
    ("ts_just_before_2000", msg(ts=MIN_TS_MS - 1), "ts_out_of_range"),
    ("ts_2100_exactly", msg(ts=MAX_TS_MS), "ts_out_of_range"),
    ("ts_huge_float", msg(ts=1e30), "ts_out_of_range"),
    # orjson 3.13 reads integers beyond 64 bits as floats, so such a ts is out of range, never accepted
    ("ts_int_over_64_bits", raw_with("ts", str(10**30)), "ts_out_of_range"),
    ("ts_uint64_max", raw_with("ts", str(2**64 - 1)), "ts_out_of_range"),
    ("missing_service", msg(service=MISSING), "missing_service"),
    ("null_service", msg(service=None), "missing_service"),
    ("int_service", msg(service=5), "bad_service"),
    ("empty_service", msg(service=""), "bad_service"),
    ("pipe_in_service", msg(service="ig|fb"), "bad_service"),
    ("bell_in_service", msg(service="ig\u0007"), "bad_service"),
    ("newline_in_service", msg(service="ig\n"), "bad_service"),
    ("padded_service", msg(service=" ig"), "bad_service"),
    ("long_service", msg(service="s" * 65), "bad_service"),
    ("missing_region", msg(region=MISSING), "missing_region"),
    ("int_region", msg(region=7), "bad_region"),
    ("list_region", msg(region=["US"]), "bad_region"),
    ("empty_region", msg(region=""), "bad_region"),
    ("empty_part", msg(region="US//Los Angeles"), "bad_region"),
    ("trailing_slash", msg(region="US/"), "bad_region"),
    ("leading_slash", msg(region="/US"), "bad_region"),
    ("star_part", msg(region="US/*"), "bad_region"),
    ("star_region", msg(region="*"), "bad_region"),
    ("country_with_digit", msg(region="U1/CA"), "bad_region"),
    ("country_too_long", msg(region="USAX/CA"), "bad_region"),
    ("country_too_short", msg(region="U/CA"), "bad_region"),
    ("country_not_ascii", msg(region="\u00dcS/CA"), "bad_region"),
    ("bell_in_region", msg(region="US/C\u0007A"), "bad_region"),
    ("newline_in_region", msg(region="US/CA\n"), "bad_region"),
    ("padded_part", msg(region="US/ CA"), "bad_region"),
    ("long_part", msg(region="US/" + "c" * 65), "bad_region"),
    ("region_five_levels", msg(region="US/CA/Los Angeles/Venice/Beach"), "region_too_deep"),
    ("missing_category", msg(category=MISSING), "missing_category"),
    ("int_category", msg(category=7), "bad_category"),
    ("empty_category", msg(category=""), "bad_category"),
    ("blank_category", msg(category="   "), "bad_category"),
    ("long_category", msg(category="c" * 33), "bad_category"),
    ("bell_in_category", msg(category="log\u0007in"), "bad_category"),
    ("int_source", msg(source=7), "bad_source"),
    ("null_source", msg(source=None), "bad_source"),
    ("empty_source", msg(source=""), "bad_source"),
    ("newline_in_source", msg(source="a\nb"), "bad_source"),
    ("list_event_id", msg(event_id=[1]), "bad_event_id"),
    ("object_event_id", msg(event_id={}), "bad_event_id"),
    ("float_event_id", msg(event_id=1.5), "bad_event_id"),
    ("bool_event_id", msg(event_id=True), "bad_event_id"),
    ("empty_event_id", msg(event_id=""), "bad_event_id"),
    ("long_event_id", msg(event_id="e" * 129), "bad_event_id"),
    ("bell_in_event_id", msg(event_id="e\u0007"), "bad_event_id"),
    ("event_id_over_64_bits", raw_with("event_id", str(10**30)), "bad_event_id"),
]

ACCEPTS: list[tuple[str, bytes, Report]] = [
    ("base", msg(), Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1")),
    ("exactly_max_bytes", sized(8192), Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1")),
    ("int_ts", msg(ts=T), Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1")),
    ("integral_float_ts", msg(ts=float(T)), Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1")),
    (
        "offset_ts",
        msg(ts="2026-11-26T04:14:15.123+01:00"),
        Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1"),
    ),
    (
        "lowercase_t_z",
        msg(ts="2026-11-26t03:14:15.123z"),
        Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1"),
    ),
    (
        "first_ms_of_2000",
        msg(ts=MIN_TS_MS),
        Report(MIN_TS_MS, "ig", "US/CA/Los Angeles", "login", "app", "e1"),
    ),
    (
        "last_ms_before_2100",
        msg(ts=MAX_TS_MS - 1),
        Report(MAX_TS_MS - 1, "ig", "US/CA/Los Angeles", "login", "app", "e1"),
    ),
    (
        "category_lower_cased",
        msg(category="LOGIN"),
        Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1"),
    ),
    (
        "category_stripped",
        msg(category=" Login "),
        Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1"),
    ),
    ("source_default", msg(source=MISSING), Report(T, "ig", "US/CA/Los Angeles", "login", "unknown", "e1")),
    ("source_lower_cased", msg(source="App"), Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1")),
    (
        "country_upper_cased",
        msg(region="us/CA/Los Angeles"),
        Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1"),
    ),
    ("three_letter_country", msg(region="usa"), Report(T, "ig", "USA", "login", "app", "e1")),
    ("four_levels", msg(region="US/CA/LA/Venice"), Report(T, "ig", "US/CA/LA/Venice", "login", "app", "e1")),
    (
        "unicode_city",
        msg(region="DE/BY/M\u00fcnchen"),
        Report(T, "ig", "DE/BY/M\u00fcnchen", "login", "app", "e1"),
    ),
    ("int_event_id", msg(event_id=42), Report(T, "ig", "US/CA/Los Angeles", "login", "app", "42")),
    ("null_event_id", msg(event_id=None), Report(T, "ig", "US/CA/Los Angeles", "login", "app", None)),
    ("no_event_id", msg(event_id=MISSING), Report(T, "ig", "US/CA/Los Angeles", "login", "app", None)),
    (
        "max_event_id",
        msg(event_id="e" * 128),
        Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e" * 128),
    ),
    ("max_service", msg(service="s" * 64), Report(T, "s" * 64, "US/CA/Los Angeles", "login", "app", "e1")),
    (
        "extra_fields_ignored",
        msg(extra={"x": [1, 2]}),
        Report(T, "ig", "US/CA/Los Angeles", "login", "app", "e1"),
    ),
]

COUNTER_ONLY = {"late", "too_many_keys", "ts_too_far_future", "ts_skewed"}  # need stream context: below, test_frontier.py
PATHS = ["validator", "counter_cold", "counter_warm"]


def judge(path: str, raw: bytes) -> tuple[str | None, WindowCounter | None]:
    """The reason (None: accepted) on one path, and the counter used."""
    if path == "validator":
        got = ReportValidator().decode(raw)
        return (got if isinstance(got, str) else None), None
    counter = WindowCounter(DetectorConfig())
    if path == "counter_warm":  # same combination and minute, twice: the fast path is primed
        warm = counter.feed_batch([msg(ts="2026-11-26T03:14:00Z", event_id=f"w{i}") for i in range(3)])
        assert warm.accepted == 3 and not warm.rejects
    res = counter.feed_batch([raw])
    assert res.duplicates == 0
    assert res.accepted + len(res.rejects) == 1
    return (res.rejects[0][1] if res.rejects else None), counter


def test_every_reason_has_a_row() -> None:
    covered = {reason for _, _, reason in REJECTS} | COUNTER_ONLY
    assert covered == set(REASONS)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("raw", "reason"), [pytest.param(r, why, id=name) for name, r, why in REJECTS])
def test_rejects(path: str, raw: bytes, reason: str) -> None:
    assert reason in REASONS
    got, counter = judge(path, raw)
    assert got == reason
    if counter is not None:
        assert counter.stats.rejected >= 1 and counter.stats.late == 0


# After the 2026 warm-up, a time in 2000 or 2099 is late or too far ahead (see test_counter).
ACCEPT_PARAMS = [
    pytest.param(path, raw, rep, id=f"{name}-{path}")
    for name, raw, rep in ACCEPTS
    for path in PATHS
    if path != "counter_warm" or abs(rep.ts_ms - T) < 3_600_000
]


@pytest.mark.parametrize(("path", "raw", "report"), ACCEPT_PARAMS)
def test_accepts(path: str, raw: bytes, report: Report) -> None:
    if path == "validator":
        assert ReportValidator().decode(raw) == report
        return
    got, counter = judge(path, raw)
    assert got is None
    assert counter is not None
    counter.advance_to(MAX_TS_MS)
    closed = counter.take_closed()
    ws = report.ts_ms - report.ts_ms % 60_000
    mine = [w for w in closed if w.ws_ms == ws]
    assert len(mine) == 1
    leaf = (report.region, report.category, report.source)
    same_as_warm_up = (report.service, *leaf, ws) == (
        "ig",
        "US/CA/Los Angeles",
        "login",
        "app",
        1_795_662_840_000,
    )
    warm = 3 if path == "counter_warm" and same_as_warm_up else 0
    assert mine[0].counts[report.service][leaf] == 1 + warm


def test_fallback_record_time() -> None:
    v = ReportValidator()
    rep = v.decode(msg(ts=MISSING), fallback_ts_ms=T)
    assert isinstance(rep, Report) and rep.ts_ms == T
    # a ts in the message wins over the record time
    rep = v.decode(msg(ts=T + 5), fallback_ts_ms=T)
    assert isinstance(rep, Report) and rep.ts_ms == T + 5


def test_validator_caches_stay_bounded() -> None:
    v = ReportValidator(cache_size=10)
    for i in range(100):
        assert isinstance(v.decode(msg(region=f"US/r{i}", service=f"s{i}", category=f"c{i}")), Report)
        assert isinstance(v.decode(msg(region=f"US/bad\u0007{i}")), str)
    for cache in (v.services, v.regions, v.categories, v.sources, v.minutes):
        assert len(cache) <= 10
    # invalid values are never cached
    assert not any("\u0007" in k for k in v.regions)


def test_validator_limits_are_configurable() -> None:
    v = ReportValidator(max_value_bytes=100, max_region_depth=2)
    small = orjson.dumps({"ts": T, "service": "ig", "region": "US/CA/LA", "category": "x"})
    assert len(small) <= 100
    assert v.decode(small) == "region_too_deep"
    assert isinstance(v.decode(small.replace(b"/LA", b"")), Report)
    assert v.decode(small + b" " * 100) == "value_too_large"


TAILS = st.one_of(
    st.builds(lambda s, ms, z: f":{s:02d}.{ms:03d}{z}", st.integers(0, 99), st.integers(0, 999),
              st.sampled_from(["Z", "z", "+"])),
    st.text(min_size=8, max_size=8))


@settings(max_examples=400, deadline=None)
@given(minute=st.integers(MIN_TS_MS // 60_000 - 2, MAX_TS_MS // 60_000 + 1), tail=TAILS)
def test_a_seen_minute_parses_a_timestamp_as_the_full_parse_does(minute: int, tail: str) -> None:
    """The validator's minute cache (``ts[:16]`` seen in a valid timestamp) gives what parsing
    the whole string gives: the same value or the same reason, for any 8-character tail."""
    prefix = format_ts_ms(minute * 60_000)[:16]
    warm, cold = ReportValidator(), ReportValidator()
    warm.ts_ms(prefix + ":00.000Z")  # primes the minute (when it is in range)
    assert warm.ts_ms(prefix + tail) == cold.ts_ms(prefix + tail)


def test_a_seen_minute_skips_the_full_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    v = ReportValidator()
    assert v.ts_ms("2026-11-26T03:14:00.000Z") == T - 15_123
    monkeypatch.setattr(reports, "parse_ts_ms", lambda ts: pytest.fail(f"parsed {ts} in full"))
    assert v.ts_ms(BASE["ts"]) == T


@settings(max_examples=300, deadline=None)
@given(tail=TAILS)
def test_the_counters_fast_path_takes_a_timestamp_as_known_ts_ms(tail: str) -> None:
    """The pure counter's per-report fast path inlines ``known_ts_ms``: the same timestamps take
    it, at the same time (its window of 1 ms), and the others go to the validator."""
    c = WindowCounter(DetectorConfig(window_ms=1, lateness_ms=10 * 60_000, watermark_quorum=1), pure=True)
    for _ in range(2):  # the minute, the key generation (it empties the combinations), the combination
        c.feed_batch([msg(ts="2026-11-26T03:14:00.000Z", event_id=MISSING)])
    slow: list[object] = []
    path = c._slow_path
    c._slow_path = lambda obj, fb: slow.append(obj) or path(obj, fb)  # type: ignore[method-assign]
    ts = "2026-11-26T03:14" + tail
    c.feed_batch([msg(ts=ts, event_id=MISSING)])
    want = reports.known_ts_ms(c.validator.minutes, ts)
    assert (not slow) == (want is not None)
    if want is not None:
        assert want in c._counts
