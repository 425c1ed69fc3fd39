"""Event-time parsing and formatting (RFC 3339 and epoch milliseconds).

>>> parse_ts_ms("2026-11-26T03:14:15.123Z")
1795662855123
>>> format_ts_ms(1795662855123)
'2026-11-26T03:14:15.123Z'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
# RFC 3339 date-time (section 5.6): seconds required, '.' fraction, Z or +hh:mm; 'T'/'Z' in
# either case, a space allowed for 'T'. ASCII digits only: fromisoformat alone accepts much more.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def parse_ts_ms(value: str) -> int | None:
    """Parse an RFC 3339 timestamp *with an offset* to epoch ms; None if it is not one.

    >>> parse_ts_ms("2026-11-26T04:14:15+01:00")
    1795662855000
    >>> parse_ts_ms("2026-11-26 03:14:15") is None   # no offset: not RFC 3339
    True
    """
    if _RFC3339.fullmatch(value) is None:
        return None
    try:
        dt = datetime.fromisoformat(value[:-1] + "Z" if value[-1] == "z" else value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    delta = dt - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def time_field_ms(value: object) -> int | None:
    """A time field of an event as epoch ms: a number as is, a string as RFC 3339, None as None
    (and None for a string that is not a time).

    >>> time_field_ms(1_795_662_855_000), time_field_ms("2026-11-26T03:14:15Z"), time_field_ms(None)
    (1795662855000, 1795662855000, None)
    """
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return parse_ts_ms(str(value))


def format_ts_ms(ts_ms: int) -> str:
    """Format epoch ms as RFC 3339 UTC with milliseconds and a ``Z``."""
    dt = _EPOCH + timedelta(milliseconds=ts_ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time_arg(value: str) -> int:
    """Parse a command-line time: epoch ms, or RFC 3339 where a missing offset means UTC.

    >>> parse_time_arg("2026-11-26T00:00Z")
    1795651200000
    >>> parse_time_arg("1795651200000")
    1795651200000
    """
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a time: {value!r} (use RFC 3339 or epoch milliseconds)") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
