"""The region incident event, ``spikedetect.incident/v1``: what the incident machine emits,
and :class:`WindowView`: what it sees of a key in one closed window.

Event types and close reasons are :data:`EventType` and :data:`CloseReason`, so a typo is a
``mypy --strict`` error, not a silently different stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

from spikedetect.core.event_base import EventBase
from spikedetect.core.timefmt import format_ts_ms
from spikedetect.kernel import closing as _kernel

SCHEMA = "spikedetect.incident/v1"

EventType = Literal["opened", "updated", "closed"]
CloseReason = Literal["recovered", "level_shift", "max_duration"]
IncidentState = Literal["open", "closed"]  # an incident's state once it has emitted an event


class WindowView(NamedTuple):
    """What one key saw in one closed window (input of :meth:`~spikedetect.core.incidents.IncidentMachine.step`).

    Immutable; a named tuple rather than a frozen dataclass because one is built per stepped key
    and window (tens of thousands per replayed day), and a frozen dataclass's ``__init__`` costs
    several times a tuple's."""

    ws_ms: int
    observed: float
    expected: float
    score: float
    baseline: str
    categories: dict[str, float]
    sources: dict[str, float]
    children: dict[str, tuple[float, float]]  # child key -> (reports, expected)
    window_score: float | None = None  # this window's own score (None: ``score``)


def num(x: float, digits: int = 3) -> float:
    """Round for output; whole numbers stay whole so output is stable and readable.

    >>> num(2.0004), num(-0.0), num(7), num(1.23456)
    (2.0, 0.0, 7.0, 1.235)
    """
    x = float(x)
    if x.is_integer():  # round would return it as it is (and a float's round is slow)
        return float(int(x))
    r = round_float(x, digits)
    return float(int(r)) if r == int(r) else r


_POWERS = {3: 1000.0, 4: 10000.0}  # 10**digits of the roundings events make


def round_float_py(x: float, digits: int) -> float:
    """``round(x, digits)`` of a float, the same bits, mostly without the decimal conversion of
    round (~0.6 us): ``|x| * 10**digits`` (one rounding, < 2**-22 off below 2**31) more than
    1e-6 from a tie has the nearest integer ``n`` the exact product has, the one round's decimal
    holds, and ``n / 10**digits`` (both exact, the quotient correctly rounded) is the double nearest
    that decimal, as round returns it; the sign is ``x``'s. Near a tie, large or not finite: round.
    :data:`round_float` is the compiled loops' (the same double arithmetic) when they are built.

    >>> [round_float_py(v, 3) == round(v, 3) for v in (2.0005, 1.23456, -0.0001, 1e12 + 0.4)]
    [True, True, True, True]
    """
    m = _POWERS.get(digits)
    if m is not None and type(x) is float:
        a = abs(x) * m
        if a < 2147483648.0:
            n = int(a)  # a - n is exact: a and n within a factor 2 (or n is 0)
            d = a - n
            if abs(d - 0.5) > 1e-6:
                return math.copysign((n + 1 if d > 0.5 else n) / m, x)
    return round(x, digits)


class TimeTexts(dict[int, str]):
    """:func:`~spikedetect.core.timefmt.format_ts_ms` of the times met lately (an event gives three
    or four, most of them the same few window starts), each formatted once.

    >>> texts = TimeTexts(); texts[1_795_651_200_000], len(texts)
    ('2026-11-26T00:00:00.000Z', 1)
    """

    def __missing__(self, ts_ms: int) -> str:
        if len(self) >= 4096:
            self.clear()
        text = self[ts_ms] = format_ts_ms(ts_ms)
        return text


round_float: Callable[[float, int], float] = round_float_py if _kernel is None else _kernel.round_float


@dataclass(frozen=True, kw_only=True)
class IncidentEvent(EventBase):
    """One ``spikedetect.incident/v1`` event: the fields of
    :class:`~spikedetect.core.event_base.EventBase` plus the region's counts. ``to_json`` is
    byte-for-byte deterministic."""

    type: EventType
    close_reason: CloseReason | None
    observed: float
    expected: float
    peak_count: float
    peak_at: str
    total_reports: float
    excess_reports: float
    categories: dict[str, float]
    sources: dict[str, float]
    children: list[dict[str, Any]]
    baseline: str
    schema: str = SCHEMA
    group_id: str | None = None  # the outage incident (spikedetect.incident/v2) it belongs to

    def with_group(self, group_id: str | None) -> IncidentEvent:
        """A copy with ``group_id`` set: ``dataclasses.replace``'s result for a tenth of its cost,
        one per region event the grouper passes - the fields copied, as the frozen ``__init__``
        sets them. A class whose ``__init__`` does more (a subclass, a ``__post_init__``,
        ``__slots__``) gets ``replace`` itself."""
        if type(self) is not IncidentEvent or not _PLAIN_INIT:
            return replace(self, group_id=group_id)
        copy = object.__new__(IncidentEvent)
        fields = copy.__dict__  # filled before anyone sees it, as the frozen __init__ does
        fields.update(self.__dict__)
        fields["group_id"] = group_id
        return copy

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        if self.group_id is None:
            del d["group_id"]
        return d

    @property
    def kafka_key(self) -> bytes:
        return f"{self.service}|{self.region}".encode()


# with_group's shortcut holds while IncidentEvent's __init__ only sets its fields
_PLAIN_INIT = not hasattr(IncidentEvent, "__post_init__") and not hasattr(IncidentEvent, "__slots__")
