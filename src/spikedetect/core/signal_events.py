"""Signal incidents on the ``spikedetect.incident/v2`` stream: ``composition`` and ``ingest_gap``.

Outage incidents (:mod:`~spikedetect.core.outage_events`) carry no ``kind`` (an absent kind
means ``"outage"``, so their bytes stay as they were); the two signals of issue 18 carry
``kind`` and share the lifecycle ``opened`` -> ``updated`` -> ``closed`` and the dedup key
``(incident_id, seq)``. The kind-specific fields are in ``extra`` and flattened into the JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from spikedetect.core.event_base import V2Event
from spikedetect.core.outage_events import OutageEvent

SignalKind = Literal["composition", "ingest_gap", "drop"]
SignalType = Literal["opened", "updated", "closed"]
SignalCloseReason = Literal["recovered", "resumed", "level_shift"]

# (state, trigger) -> (next state, event): the lifecycle of a signal incident
SIGNAL_TRANSITIONS: dict[tuple[str | None, str], tuple[str, SignalType]] = {
    (None, "open"): ("open", "opened"),
    ("open", "grow"): ("open", "updated"),
    ("open", "close"): ("closed", "closed"),
}


def signal_next(state: str | None, trigger: str) -> tuple[str, SignalType]:
    from spikedetect.core.errors import IllegalTransition

    try:
        return SIGNAL_TRANSITIONS[(state, trigger)]
    except KeyError:
        raise IllegalTransition(f"a signal incident in state {state!r} cannot take {trigger!r}") from None


def signal_id(kind: SignalKind, service: str, region: str, first_ws_ms: int, params_hash: str) -> str:
    """Deterministic id: ``cmp-`` / ``gap-`` / ``drp-`` + a hash of kind, service, region, first window, params."""
    blob = f"{kind}|{service}|{region}|{first_ws_ms}|{params_hash}".encode()
    prefix = {"composition": "cmp-", "ingest_gap": "gap-", "drop": "drp-"}[kind]
    return prefix + hashlib.sha256(blob).hexdigest()[:20]


@dataclass(frozen=True, kw_only=True)
class SignalEvent(V2Event):
    """One ``composition`` or ``ingest_gap`` event: the fields of
    :class:`~spikedetect.core.event_base.V2Event`, ``kind``, and the kind's own fields (``extra``,
    flattened into the JSON)."""

    kind: SignalKind
    type: SignalType
    close_reason: SignalCloseReason | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "extra"}
        d.update(self.extra)
        return d


def merge_v2(outages: Sequence[OutageEvent], signals: Sequence[SignalEvent]) -> list[OutageEvent | SignalEvent]:
    """The main stream's order: window by window (``updated_at``), outage events first. The same
    on every path (replay, live), however windows are batched."""
    if not signals:
        return list(outages)
    both: list[OutageEvent | SignalEvent] = [*outages, *signals]
    return sorted(both, key=lambda e: e.updated_at)
