"""Event-time parsing (RFC 3339 with an offset) and formatting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core.timefmt import MAX_TS_MS, MIN_TS_MS, format_ts_ms, parse_time_arg, parse_ts_ms

T = 1_795_662_855_000  # 2026-11-26T03:14:15Z (the module's own doctest value)
HOUR = 3_600_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T03:14:15Z", T),
        ("2026-11-26T03:14:15.123Z", T + 123),
        ("2026-11-26t03:14:15.123z", T + 123),  # RFC 3339 5.6: T and Z may be lower case
        ("2026-11-26T03:14:15z", T),
        ("2026-11-26t03:14:15Z", T),
        ("2026-11-26 03:14:15Z", T),  # RFC 3339 5.6 note: a space for readability
        ("2026-11-26T04:14:15+01:00", T),
        ("2026-11-25T22:14:15-05:00", T),
        ("2026-11-26T08:44:15+05:30", T),
        ("2026-11-26T03:14:15+00:00", T),
        ("2026-11-26T03:14:15-00:00", T),  # "unknown local offset": still the same instant
        ("2026-11-26T03:14:15.1Z", T + 100),
        ("2026-11-26T03:14:15.12Z", T + 120),
        ("2026-11-26T03:14:15.123456Z", T + 123),
        ("2026-11-26T03:14:15.123456789Z", T + 123),  # extra digits truncate, never round up
        ("2026-11-26T03:14:15.9999Z", T + 999),
        ("2026-11-26T04:14:15.5+01:00", T + 500),
        ("2000-01-01T00:00:00Z", MIN_TS_MS),
        ("1970-01-01T00:00:00Z", 0),  # parses; the range check is the validator's job
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_parse_valid(text: str, expected: int) -> None:
    assert parse_ts_ms(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "2026-11-26",
        "2026-11-26T03:14:15",  # no offset
        "2026-11-26 03:14:15",
        "2026-11-26T03:14:15.123",
        "2026-11-26T03:14Z",  # seconds are required
        "2026-11-26T03:14+01:00",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T03:60:00Z",
        "2026-11-26T03:14:15+24:00",
        "2026-11-26T03:14:15.Z",  # a fraction needs digits
        "2026-11-26T03:14:15 Z",
        "2026-11-26T03:14:15,123Z",  # ISO 8601 allows a comma; RFC 3339 does not
        "2026-11-26T03:14:15+0100",
        "2026-11-26T03:14:15.123+01",
        "2026-W48-4T03:14:15Z",  # ISO week date
        "20261126T031415Z",  # ISO basic format
        "2026-11-26T031415+01:00",
        " 2026-11-26T03:14:15Z",
        "2026-11-26T03:14:15Z\n",
        "2026-11-26T03:14:15ZZ",
        "2026-11-26T03:14:15.\u0661\u0662\u0663Z",  # Arabic-Indic digits
        "2026-11-26T03:14:\uff11\uff15Z",  # full-width digits
        "+2026-11-26T03:14:15Z",
    ],
)
def test_parse_rejects(text: str) -> None:
    assert parse_ts_ms(text) is None


@pytest.mark.parametrize(
    ("ts_ms", "text"),
    [
        (T, "2026-11-26T03:14:15.000Z"),
        (T + 123, "2026-11-26T03:14:15.123Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (MAX_TS_MS, "2100-01-01T00:00:00.000Z"),
    ],
)
def test_format(ts_ms: int, text: str) -> None:
    assert format_ts_ms(ts_ms) == text
    assert parse_ts_ms(text) == ts_ms


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(10**12), max_value=MAX_TS_MS))
def test_format_parse_round_trip(ts_ms: int) -> None:
    text = format_ts_ms(ts_ms)
    assert parse_ts_ms(text) == ts_ms
    assert parse_ts_ms(text.lower()) == ts_ms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1795651200000", 1_795_651_200_000),
        (" 1795651200000 ", 1_795_651_200_000),
        ("-5", -5),
        ("2026-11-26T00:00Z", 1_795_651_200_000),
        ("2026-11-26T00:00", 1_795_651_200_000),  # a command line without offset means UTC
        ("2026-11-26T01:00+01:00", 1_795_651_200_000),
        ("2026-11-26", 1_795_651_200_000),
    ],
)
def test_parse_time_arg(text: str, expected: int) -> None:
    assert parse_time_arg(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "2026-13-01"])
def test_parse_time_arg_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_time_arg(text)
