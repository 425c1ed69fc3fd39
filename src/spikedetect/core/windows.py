"""Pure window maths for event-time tumbling windows.

A window is identified by its start ``ws_ms`` and covers ``[ws_ms, ws_ms + window_ms)``.
A watermark ``wm_ms`` closes every window whose end is at or before it.

>>> window_start(125_000, 60_000)
120000
>>> is_closed(120_000, 60_000, wm_ms=180_000)
True
>>> list(closable_windows(0, 60_000, wm_ms=185_000))
[0, 60000, 120000]
"""

from __future__ import annotations

from collections.abc import Iterator

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS


def window_start(ts_ms: int, window_ms: int) -> int:
    """Start of the window holding ``ts_ms`` (floor division; negative times work too)."""
    return ts_ms - ts_ms % window_ms


def window_end(ws_ms: int, window_ms: int) -> int:
    return ws_ms + window_ms


def is_closed(ws_ms: int, window_ms: int, wm_ms: int) -> bool:
    """True when the watermark has passed the end of the window starting at ``ws_ms``."""
    return ws_ms + window_ms <= wm_ms


def watermark(max_ts_ms: int, lateness_ms: int) -> int:
    """The watermark implied by the newest event time seen and the allowed lateness."""
    return max_ts_ms - lateness_ms


def closable_windows(first_ws_ms: int, window_ms: int, wm_ms: int) -> Iterator[int]:
    """Starts of the consecutive windows from ``first_ws_ms`` that ``wm_ms`` closes."""
    ws = first_ws_ms
    while ws + window_ms <= wm_ms:
        yield ws
        ws += window_ms


def time_of_day_ms(ts_ms: int) -> int:
    """Milliseconds since midnight UTC."""
    return ts_ms % DAY_MS


def day_of_week(ts_ms: int) -> int:
    """0 = Monday ... 6 = Sunday (UTC). 1970-01-01 was a Thursday."""
    return (ts_ms // DAY_MS + 3) % 7
