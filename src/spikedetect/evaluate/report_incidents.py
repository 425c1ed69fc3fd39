"""The incidents of ``spikedetect report``: one entry per incident, outages (v2) before regions (v1)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from spikedetect.core.timefmt import time_field_ms
from spikedetect.evaluate.signals import SIGNAL_KINDS

MAX_CHILD_SERIES = 12  # member regions charted under an outage
V1, V2 = "spikedetect.incident/v1", "spikedetect.incident/v2"

Event = Mapping[str, Any]


def _gather(events: Iterable[Event]) -> tuple[dict[str, Event], dict[str, Event], dict[str, list[str]]]:
    """Per incident id: its latest event (by ``seq``), its first, and every child region listed."""
    latest: dict[str, Event] = {}
    first: dict[str, Event] = {}
    children: dict[str, list[str]] = {}
    for ev in events:
        iid = ev.get("incident_id")
        if not iid or ev.get("schema", V1) not in (V1, V2):
            continue
        if not ev.get("service") or not ev.get("region"):  # incomplete (as evaluate skips it)
            continue
        seq = ev.get("seq", 0)
        if iid not in latest or seq >= latest[iid].get("seq", 0):
            latest[iid] = ev
        if iid not in first or seq < first[iid].get("seq", 0):
            first[iid] = ev
        known = children.setdefault(iid, [])
        listed = ev.get("regions") if ev.get("schema") == V2 else ev.get("children")
        known += [c["region"] for c in listed or [] if c.get("region") and c["region"] not in known]
    return latest, first, children


def _members(ev: Event, iid: str, latest: dict[str, Event]) -> list[dict[str, Any]]:
    """The member regions of an outage event that no v1 event describes, as region incidents."""
    return [{**m, "schema": V1, "service": ev.get("service"), "group_id": iid, "kind": "region",
             "child_regions": [], "detector": ev.get("detector")}
            for m in ev.get("regions") or [] if m.get("incident_id") and m["incident_id"] not in latest
            and m.get("region")]  # fmt: skip


def _order(e: dict[str, Any]) -> tuple[int, str, str]:
    return (time_field_ms(e.get("opened_at")) or 0, e.get("service", ""), e.get("region", ""))


def latest_incidents(events: Iterable[Event]) -> list[dict[str, Any]]:
    """One dict per incident (its latest event by ``seq``), with ``detected_at`` from its first
    event and ``child_regions``: every child region any of its events listed.

    Outage incidents (``spikedetect.incident/v2``) come first (``kind: "outage"``, their
    members as ``child_regions``; composition and ingest-gap incidents keep their ``kind``), then region incidents (``kind: "region"``, with the
    ``group_id`` of their outage): the v1 events given, and every member of an outage that
    no v1 event describes. Each part is sorted by opening."""
    latest, first, children = _gather(events)
    outages, regions = [], []
    for iid, ev in latest.items():
        inc = dict(ev)
        inc["detected_at"] = first[iid].get("detected_at", ev.get("detected_at"))
        inc["child_regions"] = children[iid]
        if ev.get("schema") != V2:
            inc["kind"] = "region"
            regions.append(inc)
            continue
        if ev.get("kind") not in SIGNAL_KINDS:  # an outage; composition, ingest_gap keep their kind (issue 18)
            inc["kind"] = "outage"
            regions += _members(ev, iid, latest)
        inc["child_regions"] = [r for r in children[iid] if r != ev.get("region")][:MAX_CHILD_SERIES]
        outages.append(inc)
    return sorted(outages, key=_order) + sorted(regions, key=_order)
