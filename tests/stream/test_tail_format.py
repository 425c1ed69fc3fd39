"""``spikedetect tail``'s lines: an outage shows its affected regions (all of them with --regions)."""

from __future__ import annotations

from spikedetect.core.outages import OutageGrouper
from spikedetect.stream.tools import format_incident
from tests.core.test_outages import WIDESPREAD


def test_an_outage_line_lists_its_regions_and_a_region_line_stays_one_line() -> None:
    outages, regions = OutageGrouper().feed(WIDESPREAD)
    last = outages[-1].to_dict()
    short = format_incident(last)
    head, more = short.split("\n")
    assert head.startswith(last["updated_at"] + " CLOSED") and "id " + last["incident_id"] in head
    assert more.strip() == f"{len(last['regions'])} regions in GB,IN,US: *, GB, IN, US, US/CA, IN/MH/Mumbai ..."
    full = format_incident(last, regions=True).split("\n")
    assert len(full) == 2 + len(last["regions"])
    assert all(line.startswith("    - ") for line in full[2:])
    assert "\n" not in format_incident(regions[0].to_dict())


def test_composition_and_ingest_gap_lines_name_what_moved() -> None:
    from tests.core.test_signals import run_composition, run_gaps, step

    _, comp = run_composition(700, 60.0, step)
    line = format_incident(comp[-1].to_dict())
    assert "\n" not in line and "CLOSED" in line and "COMPOSITION: rose server_connection" in line
    assert f"id {comp[-1].incident_id}#{comp[-1].seq}" in line
    _, gaps = run_gaps(300, {"ig": 30.0}, lambda svc, src, i: src == "web" and 200 <= i < 220)
    line = format_incident(gaps[0].to_dict())
    assert "OPENED" in line and "INGEST GAP: no reports from web" in line and "until" not in line
