"""The scorer, driven by hand-made incidents against a hand-made ground truth."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from spikedetect.core.timefmt import format_ts_ms
from spikedetect.evaluate.incidents import collect_incidents
from spikedetect.evaluate.score import evaluate
from spikedetect.sim.simulate import Simulation, SimulationConfig
from spikedetect.sim.truth import GroundTruth, OutageTruth, TrapTruth

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_795_478_400_000  # 2026-11-24T00:00Z

BIG = OutageTruth(
    id="big-1", kind="widespread", service="ig", start_ms=T0 + 10 * HOUR, end_ms=T0 + 12 * HOUR,
    regions=("US/CA/Los Angeles", "US/NY/New York", "IN/MH/Mumbai"),
    must_detect=("*", "US", "IN", "US/CA/Los Angeles"), large=True,
)  # fmt: skip
SMALL = OutageTruth(
    id="small-1", kind="single_city", service="wa", start_ms=T0 + 30 * HOUR, end_ms=T0 + 31 * HOUR,
    regions=("IN/TG/Hyderabad",), must_detect=("IN/TG/Hyderabad", "IN/TG"),
)  # fmt: skip
PEAK = TrapTruth(
    id="peak-1", kind="daily_peak", service="ig", start_ms=T0 + 40 * HOUR, end_ms=T0 + 42 * HOUR,
    regions=("*",), keys=("*", "IN"),
)  # fmt: skip
BURST = TrapTruth(
    id="burst-1", kind="one_window_burst", service="wa", start_ms=T0 + 20 * HOUR, end_ms=T0 + 20 * HOUR + MIN,
    regions=("IN/KA/Bengaluru",), keys=("IN/KA/Bengaluru", "IN/KA"),
)  # fmt: skip
TRUTH = GroundTruth(seed=1, start_ms=T0, end_ms=T0 + 2 * DAY, outages=(BIG, SMALL), traps=(PEAK, BURST))


def incident(
    iid: str, service: str, region: str, opened: int, detected: int | None = None, closed: int | None = None
) -> list[dict[str, Any]]:
    """The events of one incident: opened, one update, and closed when ``closed`` is given."""
    detected = opened + MIN if detected is None else detected
    base = {"schema": "spikedetect.incident/v1", "incident_id": iid, "service": service, "region": region,
            "window_ms": MIN, "opened_at": format_ts_ms(opened), "closed_at": None}  # fmt: skip
    events = [
        {**base, "type": "opened", "seq": 1, "detected_at": format_ts_ms(detected)},
        {**base, "type": "updated", "seq": 2, "detected_at": format_ts_ms(detected + 5 * MIN)},
    ]
    if closed is not None:
        events.append({**base, "type": "closed", "seq": 3, "detected_at": format_ts_ms(closed + MIN),
                       "closed_at": format_ts_ms(closed)})  # fmt: skip
    return events


def perfect() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, key in enumerate(BIG.must_detect):
        out += incident(f"b{n}", "ig", key, BIG.start_ms, BIG.start_ms + 2 * MIN, BIG.end_ms + 5 * MIN)
    for n, key in enumerate(SMALL.must_detect):
        out += incident(f"s{n}", "wa", key, SMALL.start_ms, SMALL.start_ms + 4 * MIN, SMALL.end_ms)
    return out


def test_perfect_detection() -> None:
    r = evaluate(perfect(), TRUTH)
    assert (r.recall, r.key_recall, r.precision, r.false_alarms_per_day, r.trap_alarms) == (
        1.0,
        1.0,
        1.0,
        0.0,
        0,
    )
    assert r.level_recall == {"global": 1.0, "country": 1.0, "state": 1.0, "city": 1.0}
    assert r.median_detection_delay_windows == 2.0  # only the large outage counts
    assert r.median_detection_delay_s == 120.0
    assert r.median_close_delay_s == pytest.approx((300 + 0) / 2)
    big, small = r.outages
    assert (big.detected, big.detection_delay_s, big.close_delay_s, big.fragments) == (True, 120.0, 300.0, 1)
    assert (small.detection_delay_windows, small.close_delay_s) == (4.0, 0.0)
    orjson.dumps(r.to_dict())  # JSON-able


@pytest.mark.parametrize(
    ("name", "events", "matched", "unmatched", "trap_alarms"),
    [
        ("ancestor key not in must_detect still matches", incident("x", "ig", "US/CA", BIG.start_ms), 1, 0, 0),
        ("sibling region does not", incident("x", "ig", "US/TX/Houston", BIG.start_ms), 0, 1, 0),
        ("wrong service does not", incident("x", "wa", "US", BIG.start_ms), 0, 1, 0),
        ("opened within end + 30 min", incident("x", "ig", "US", BIG.end_ms + 29 * MIN), 1, 0, 0),
        ("opened after end + 30 min", incident("x", "ig", "US", BIG.end_ms + 31 * MIN, closed=BIG.end_ms + 40 * MIN), 0, 1, 0),
        ("opened 2 windows before start", incident("x", "ig", "US", BIG.start_ms - 2 * MIN, closed=BIG.start_ms), 1, 0, 0),
        ("closed before start - 2 windows", incident("x", "ig", "US", BIG.start_ms - 9 * MIN, closed=BIG.start_ms - 3 * MIN), 0, 1, 0),
        ("already open before the outage: not caused by it", incident("x", "ig", "*", BIG.start_ms - 3 * MIN, closed=BIG.end_ms), 0, 1, 0),
        ("stuck in alarm from hours before, into the daily-peak trap", incident("x", "ig", "*", BIG.start_ms - 300 * MIN), 0, 1, 1),
        ("alarm on a trap key in its span", incident("x", "ig", "IN", PEAK.start_ms + 30 * MIN, closed=PEAK.start_ms + 40 * MIN), 0, 1, 1),
        ("trap span + 10 min counts", incident("x", "wa", "IN/KA", BURST.end_ms + 9 * MIN, closed=BURST.end_ms + 20 * MIN), 0, 1, 1),
        ("after the trap span is a plain false alarm", incident("x", "wa", "IN/KA", BURST.end_ms + 11 * MIN, closed=BURST.end_ms + 20 * MIN), 0, 1, 0),
        ("non-trap key in the trap span", incident("x", "ig", "GB", PEAK.start_ms, closed=PEAK.start_ms + 9 * MIN), 0, 1, 0),
    ],
)  # fmt: skip
def test_matching_rules(
    name: str, events: list[dict[str, Any]], matched: int, unmatched: int, trap_alarms: int
) -> None:
    r = evaluate(events, TRUTH)
    assert (r.matched_incidents, r.unmatched_incidents, r.trap_alarms) == (matched, unmatched, trap_alarms), (
        name
    )
    assert r.false_alarms_per_day == unmatched / 2


def test_a_matched_incident_on_a_trap_key_is_not_a_trap_alarm() -> None:
    truth = GroundTruth(seed=1, start_ms=T0, end_ms=T0 + DAY, outages=(BIG,),
                        traps=(TrapTruth("p", "daily_peak", "ig", BIG.start_ms, BIG.end_ms, ("*",), ("*",)),))  # fmt: skip
    r = evaluate(incident("x", "ig", "*", BIG.start_ms, closed=BIG.end_ms), truth)
    assert (r.matched_incidents, r.trap_alarms, r.precision) == (1, 0, 1.0)


def test_missed_keys_and_level_recall() -> None:
    events = incident("a", "ig", "US", BIG.start_ms) + incident("b", "ig", "US/CA/Los Angeles", BIG.start_ms)
    r = evaluate(events, TRUTH)
    big, small = r.outages
    assert not big.detected and big.detection_delay_s is None  # "*" is the first must-detect key
    assert big.first_alarm_delay_s == 60.0
    assert big.keys_found == ["US", "US/CA/Los Angeles"] and big.keys_missed == ["*", "IN"]
    assert big.recall == 0.5 and not small.detected
    assert r.recall == 0.0 and r.key_recall == pytest.approx(2 / 6)
    assert r.level_recall == {"global": 0.0, "country": 0.5, "state": 0.0, "city": 0.5}
    assert r.median_detection_delay_windows is None


def test_latest_event_wins_and_detection_uses_the_opened_event() -> None:
    events = incident("x", "ig", "*", BIG.start_ms, BIG.start_ms + 3 * MIN, closed=BIG.end_ms + 10 * MIN)
    events.reverse()  # order on disk does not matter: seq does
    r = evaluate(events, TRUTH)
    big = r.outages[0]
    assert big.detection_delay_s == 180.0  # not the later "updated" detected_at
    assert big.close_delay_s == 600.0
    (inc,), skipped = collect_incidents(events)
    assert inc.closed_at_ms == BIG.end_ms + 10 * MIN and inc.events == 3 and skipped == 0


def test_fragments_and_close_delay_of_a_split_incident() -> None:
    events = incident("x1", "ig", "*", BIG.start_ms, closed=BIG.start_ms + 20 * MIN)
    events += incident("x2", "ig", "*", BIG.start_ms + 30 * MIN, closed=BIG.end_ms + 2 * MIN)
    big = evaluate(events, TRUTH).outages[0]
    assert big.fragments == 2 and big.detection_delay_s == 60.0 and big.close_delay_s == 120.0
    still_open = events + incident("x3", "ig", "*", BIG.start_ms + 50 * MIN)
    assert evaluate(still_open, TRUTH).outages[0].close_delay_s is None


def test_no_incidents_and_junk_lines() -> None:
    junk = [{"schema": "other/v1", "incident_id": "z"}, {"type": "opened"}]
    r = evaluate(junk, TRUTH)
    assert (r.incidents, r.precision, r.recall, r.false_alarms_per_day, r.skipped_events) == (
        0,
        None,
        0.0,
        0.0,
        2,
    )


def test_an_oracle_scores_perfectly_on_the_simulated_suite() -> None:
    """Incidents that open one window after each outage on each must-detect key, and one per trap key."""
    truth = Simulation(SimulationConfig(days=3, peak_scale=0.1)).truth
    events: list[dict[str, Any]] = []
    for o in truth.outages:
        for n, key in enumerate(o.must_detect):
            events += incident(
                f"{o.id}-{n}", o.service, key, o.start_ms, o.start_ms + 2 * MIN, o.end_ms + MIN
            )
    r = evaluate(events, truth)
    assert (r.recall, r.key_recall, r.precision, r.trap_alarms) == (1.0, 1.0, 1.0, 0)
    assert r.median_detection_delay_windows == 2.0
    for t in truth.traps:
        events += incident(f"{t.id}-trap", t.service, t.keys[-1], t.start_ms, closed=t.end_ms)
    r = evaluate(events, truth)
    assert r.trap_alarms == len(truth.traps) and r.false_alarms_per_day == pytest.approx(len(truth.traps) / 3)


def test_outage_incidents_are_scored_as_groups_and_a_shared_global_member_ties_nothing() -> None:
    """Two simultaneous city outages; the global key joined the Paris one: each true outage
    overlaps exactly one outage incident, and the members score as region incidents."""
    from spikedetect.sim.truth import GroundTruth, OutageTruth

    h = 3_600_000
    truth = GroundTruth(seed=1, start_ms=0, end_ms=24 * h, outages=(
        OutageTruth("fr", "twin_cities", "wa", 4 * h, 5 * h, ("FR/IDF/Paris",), ("FR/IDF/Paris",)),
        OutageTruth("in", "twin_cities", "wa", 4 * h, 5 * h, ("IN/TG/Hyderabad",), ("IN/TG/Hyderabad",)),
    ))  # fmt: skip

    def member(region: str, rid: str) -> dict[str, object]:
        return {"region": region, "incident_id": rid, "opened_at": 4 * h, "detected_at": 4 * h + 120_000,
                "closed_at": 5 * h}

    def outage(oid: str, seq: int, *members: dict[str, object]) -> dict[str, object]:
        return {"schema": "spikedetect.incident/v2", "type": "closed" if seq > 1 else "opened",
                "incident_id": oid, "seq": seq, "service": "wa", "region": members[0]["region"],
                "regions": list(members)}

    events = [outage("out-fr", 1, member("FR/IDF/Paris", "i1")),
              outage("out-fr", 2, member("FR/IDF/Paris", "i1"), member("*", "i3")),
              outage("out-in", 1, member("IN/TG/Hyderabad", "i2")),
              outage("out-in", 2, member("IN/TG/Hyderabad", "i2"))]
    result = evaluate(events, truth)
    assert result.groups is not None
    assert {g.id: g.incidents for g in result.groups.scores} == {"fr": ["out-fr"], "in": ["out-in"]}
    assert all(g.events == 2 and g.delay_s == 120 and g.regions_covered == 1.0 for g in result.groups.scores)
    assert result.groups.one_incident == 2 and result.groups.unmatched_incidents == 0
    assert result.recall == 1.0 and result.incidents == 3  # the members, as region incidents


def test_a_series_drop_is_neither_an_outage_nor_a_false_alarm() -> None:
    for schema in ("spikedetect.incident/v2", "spikedetect.incident/v1"):  # whatever it looks like, kind rules
        drop = [{**e, "schema": schema, "kind": "drop", "direction": "drop"}
                for e in incident("d1", "ig", "*", T0 + 5 * HOUR)]
        r = evaluate(perfect() + drop, TRUTH)
        assert (r.precision, r.false_alarms_per_day, r.trap_alarms) == (1.0, 0.0, 0)
        assert r.signals is None
