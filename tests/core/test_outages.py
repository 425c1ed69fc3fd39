"""The outage grouper (core/outages.py): region incidents in, one outage incident per outage out."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import FrozenInstanceError, dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core.errors import IllegalTransition
from spikedetect.core.incidents import IncidentEvent
from spikedetect.core.outage_events import SCHEMA_V2, Member, OutageEvent, highest
from spikedetect.core.outages import OutageGrouper, outage_next
from spikedetect.core.regions import depth, level_name
from spikedetect.core.timefmt import format_ts_ms

W = 60_000
T0 = 1_795_651_200_000


def ev(kind: str, region: str, opened_min: int, at_min: int, peak: float, expected: float = 2.0,
       svc: str = "ig", closed_min: int | None = None) -> IncidentEvent:
    """A v1 event of the region incident of ``region`` that opened at minute ``opened_min``."""
    return IncidentEvent(
        type=kind, incident_id=f"inc-{svc}-{region}-{opened_min}", seq=1, service=svc, region=region,
        level=level_name(region), window_ms=W, opened_at=format_ts_ms(T0 + opened_min * W),
        detected_at=format_ts_ms(T0 + at_min * W),
        closed_at=format_ts_ms(T0 + closed_min * W) if closed_min is not None else None,
        close_reason="recovered" if kind == "closed" else None, observed=peak, expected=expected, score=20.0,
        peak_count=peak, peak_at=format_ts_ms(T0 + at_min * W), total_reports=peak, excess_reports=peak - expected,
        categories={"login": 1.0}, sources={"app": 1.0}, children=[], baseline="learned",
        detector={"name": "seasonal", "params_hash": "abc"})


def run(events: list[IncidentEvent], g: OutageGrouper | None = None) -> list[OutageEvent]:
    return (g or OutageGrouper()).feed(events)[0]


def by_incident(out: list[OutageEvent]) -> dict[str, list[OutageEvent]]:
    groups: dict[str, list[OutageEvent]] = {}
    for e in out:
        groups.setdefault(e.incident_id, []).append(e)
    return groups


WIDESPREAD = [
    ev("opened", "*", 0, 2, 900, 40), ev("opened", "US", 0, 2, 600, 20), ev("opened", "US/CA", 0, 2, 200, 5),
    ev("opened", "IN", 1, 3, 100, 15), ev("opened", "US/CA/Los Angeles", 1, 3, 90, 2),
    ev("opened", "IN/MH/Mumbai", 2, 4, 40, 3), ev("opened", "GB", 3, 5, 50, 5),
    ev("closed", "IN/MH/Mumbai", 2, 30, 40, 3, closed_min=25), ev("closed", "GB", 3, 31, 50, 5, closed_min=26),
    ev("closed", "US/CA/Los Angeles", 1, 33, 90, 2, closed_min=28), ev("closed", "IN", 1, 34, 100, 15, closed_min=29),
    ev("closed", "US/CA", 0, 35, 200, 5, closed_min=30), ev("closed", "US", 0, 35, 600, 20, closed_min=30),
    ev("closed", "*", 0, 36, 900, 40, closed_min=31),
]


def test_a_widespread_outage_is_one_incident_rooted_at_the_global_key_listing_every_region() -> None:
    out = run(WIDESPREAD)
    groups = by_incident(out)
    assert len(groups) == 1
    events = next(iter(groups.values()))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "opened" and events[-1].type == "closed"
    assert all(e.type == "updated" for e in events[1:-1])
    last = events[-1]
    assert last.schema == SCHEMA_V2 and last.region == "*" and last.level == "global"
    assert {m["region"] for m in last.regions} == {e.region for e in WIDESPREAD}
    assert last.countries == ["GB", "IN", "US"]
    assert last.closed_at == format_ts_ms(T0 + 31 * W)
    assert all(m["closed_at"] is not None for m in last.regions)
    assert last.opened_at == format_ts_ms(T0) and last.detected_at == format_ts_ms(T0 + 2 * W)
    # the earliest member's times, and the totals counted once (only "*" has no member above it)
    assert last.total_reports == 900 and last.excess_reports == 860
    # every new country is announced at once; nothing else grew after the opening
    assert Counter(e.type for e in events) == {"opened": 1, "updated": 2, "closed": 1}


def test_region_events_come_back_with_the_group_id_of_their_outage() -> None:
    out, regions = OutageGrouper().feed(WIDESPREAD)
    assert [r.incident_id for r in regions] == [e.incident_id for e in WIDESPREAD]
    assert {r.group_id for r in regions} == {out[0].incident_id}
    assert regions[0].to_dict()["group_id"] == out[0].incident_id
    assert "group_id" not in WIDESPREAD[0].to_dict()


def test_two_simultaneous_city_outages_in_different_countries_are_two_incidents() -> None:
    events = [
        ev("opened", "FR/IDF/Paris", 0, 2, 60), ev("opened", "IN/TG/Hyderabad", 0, 2, 80),
        # the global key trips from their sum: it joins the larger one and merges nothing
        ev("opened", "*", 1, 3, 150, 40),
        ev("closed", "FR/IDF/Paris", 0, 20, 60, closed_min=16), ev("closed", "*", 1, 20, 150, 40, closed_min=16),
        ev("closed", "IN/TG/Hyderabad", 0, 21, 80, closed_min=17),
    ]
    groups = by_incident(run(events))
    assert len(groups) == 2
    roots = sorted(es[0].region for es in groups.values())
    assert roots == ["FR/IDF/Paris", "IN/TG/Hyderabad"]
    members = {es[-1].region: {m["region"] for m in es[-1].regions} for es in groups.values()}
    assert members["FR/IDF/Paris"] == {"FR/IDF/Paris"}
    assert members["IN/TG/Hyderabad"] == {"IN/TG/Hyderabad", "*"}
    assert all(es[-1].type == "closed" for es in groups.values())


def test_a_city_outage_that_spreads_to_its_country_moves_its_root_up() -> None:
    events = [
        ev("opened", "IN/TG", 0, 2, 50, 2), ev("opened", "IN/TG/Hyderabad", 0, 2, 48, 1),  # a near-copy state
        ev("opened", "IN", 5, 7, 400, 30), ev("opened", "IN/MH/Mumbai", 6, 8, 120, 4),
        ev("closed", "IN/MH/Mumbai", 6, 30, 120, 4, closed_min=25), ev("closed", "IN", 5, 31, 400, 30, closed_min=26),
        ev("closed", "IN/TG", 0, 31, 50, 2, closed_min=26), ev("closed", "IN/TG/Hyderabad", 0, 32, 48, 1, closed_min=27),
    ]
    groups = by_incident(run(events))
    assert len(groups) == 1
    es = next(iter(groups.values()))
    assert es[0].type == "opened" and es[0].region == "IN/TG/Hyderabad" and es[0].level == "city"
    assert es[1].type == "updated" and es[1].region == "IN" and es[1].updated_at == format_ts_ms(T0 + 7 * W)
    assert es[-1].type == "closed" and es[-1].region == "IN"
    assert len({e.incident_id for e in es}) == 1


def test_updates_are_rate_limited_to_one_per_five_minutes_of_event_time() -> None:
    events = [ev("opened", "US", 0, 2, 100, 10)]
    events += [ev("updated", "US", 0, m, 100 + m, 10) for m in range(3, 60)]  # a new peak every window
    events += [ev("closed", "US", 0, 65, 160, 10, closed_min=60)]
    es = run(events)
    times = [int(e.updated_at[14:16]) + 60 * int(e.updated_at[11:13]) for e in es if e.type == "updated"]
    assert len(times) >= 5 and all(b - a >= 5 for a, b in itertools.pairwise(times))
    assert len(es) <= 2 + 60 / 5
    assert es[-1].peak_count == 160


def test_a_recovery_alone_waits_for_the_next_event() -> None:
    events = [ev("opened", "US", 0, 2, 100, 10), ev("opened", "US/NY", 0, 2, 90, 5),
              ev("closed", "US/NY", 0, 20, 90, 5, closed_min=15), ev("closed", "US", 0, 30, 100, 10, closed_min=25)]
    assert [e.type for e in run(events)] == ["opened", "closed"]


def test_outages_of_one_service_at_different_times_are_separate_and_services_never_mix() -> None:
    events = [ev("opened", "US", 0, 2, 100), ev("opened", "US", 0, 2, 100, svc="wa"),
              ev("closed", "US", 0, 20, 100, closed_min=15), ev("closed", "US", 0, 20, 100, svc="wa", closed_min=15),
              ev("opened", "US/NY", 40, 42, 100), ev("closed", "US/NY", 40, 60, 100, closed_min=55)]
    groups = by_incident(run(events))
    assert len(groups) == 3
    assert sorted(es[0].service for es in groups.values()) == ["ig", "ig", "wa"]


def test_ids_are_deterministic_and_restoring_exported_state_continues_identically() -> None:
    whole = run(WIDESPREAD)
    assert [e.to_json() for e in run(WIDESPREAD)] == [e.to_json() for e in whole]
    cuts = [i for i in range(1, len(WIDESPREAD)) if WIDESPREAD[i].detected_at != WIDESPREAD[i - 1].detected_at]
    assert len(cuts) > 5
    for cut in cuts:  # state is saved after whole windows
        first = OutageGrouper()
        head = run(WIDESPREAD[:cut], first)
        second = OutageGrouper()
        for svc in first.touched:
            second.import_service(svc, first.export_service(svc))
        assert [e.to_json() for e in head + run(WIDESPREAD[cut:], second)] == [e.to_json() for e in whole]


def test_a_window_applied_before_a_crash_is_not_applied_twice() -> None:
    g = OutageGrouper()
    first, regions = g.feed(WIDESPREAD[:3])
    again, regions_again = g.feed(WIDESPREAD[1:3])  # re-closed for keys that had not saved state
    assert again == [] and [r.group_id for r in regions_again] == [first[0].incident_id] * 2
    assert [r.to_json() for r in regions_again] == [r.to_json() for r in regions[1:3]]


def test_group_ids_of_a_closed_outage_are_remembered_for_re_deliveries() -> None:
    g = OutageGrouper()
    out = run(WIDESPREAD, g)
    _, regions = g.feed(WIDESPREAD[-1:])
    assert regions[0].group_id == out[0].incident_id


def test_state_read_back_is_checked() -> None:
    g = OutageGrouper()
    run(WIDESPREAD[:5], g)
    good = g.export_service("ig")
    bad = {**good, "open": [{**good["open"][0], "seq": "1"}]}
    with pytest.raises(ValueError):
        OutageGrouper().import_service("ig", bad)
    with pytest.raises(ValueError):
        OutageGrouper().import_service("ig", {"applied_ms": None})


def test_the_lifecycle_is_a_table() -> None:
    assert outage_next(None, "members_opened") == ("open", "opened")
    with pytest.raises(IllegalTransition):
        outage_next("closed", "change")
    with pytest.raises(IllegalTransition):
        outage_next(None, "change")


def test_countries_that_trip_before_the_global_key_are_merged_when_it_opens() -> None:
    """A widespread outage trips two countries in one window and the global key a window later,
    far beyond what they explain: one outage goes on, the other closes as merged into it."""
    events = [
        ev("opened", "DE", 0, 2, 40), ev("opened", "GB/ENG", 0, 2, 30),
        ev("opened", "*", 1, 3, 900, 40), ev("opened", "US", 1, 3, 500, 20),
        ev("closed", "DE", 0, 30, 40, closed_min=28), ev("closed", "GB/ENG", 0, 30, 30, closed_min=28),
        ev("closed", "US", 1, 30, 500, 20, closed_min=28), ev("closed", "*", 1, 31, 900, 40, closed_min=29),
    ]
    out, regions = OutageGrouper().feed(events)
    groups = by_incident(out)
    assert len(groups) == 2
    [merged] = [es for es in groups.values() if es[-1].close_reason == "merged"]
    [main] = [es for es in groups.values() if es[-1].close_reason != "merged"]
    assert [e.type for e in merged] == ["opened", "closed"] and merged[-1].merged_into == main[0].incident_id
    assert main[-1].type == "closed" and main[-1].region == "*"
    assert {m["region"] for m in main[-1].regions} == {"*", "DE", "GB/ENG", "US"}
    assert {r.group_id for r in regions if r.type == "closed"} == {main[0].incident_id}


def test_top_members_are_those_with_no_member_region_above_them() -> None:
    """top_members (ancestors looked up) against its definition: no other member's region has it
    strictly under it (:func:`is_under`), on random region trees."""
    import random

    from spikedetect.core.outage_events import Member, Outage, is_under

    rnd = random.Random(5)
    names = ["*", *(f"C{i}" for i in range(3)), *(f"C{i}/S{j}" for i in range(3) for j in range(3)),
             *(f"C{i}/S{j}/T{k}" for i in range(3) for j in range(3) for k in range(3)), "C1/S1/T1/L1"]
    for _ in range(200):
        picked = rnd.sample(names, rnd.randint(1, 12))
        o = Outage("o", "svc", "*", 60_000, {}, {f"id-{r}": Member(f"id-{r}", r, "t0", "t0") for r in picked})
        want = [m for m in o.members.values() if not any(is_under(m.region, r) for r in picked)]
        assert o.top_members() == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["*", "US", "DE", "US/CA", "US/NY", "US/CA/LA", "DE/BY"]),
                          st.sampled_from([0.0, 1.0, 2.0, 5.0])), min_size=1, max_size=12))
def test_the_highest_member_is_the_first_of_the_smallest_depth_peak_and_region(parts: list[tuple[str, float]]) -> None:
    """``highest`` (the root's walk, without a call per member) is min over (depth, -peak, region),
    the first of equals (a region can be two members: a closed incident and a new one)."""
    members = [Member(f"m{i}", region, "", "", peak_count=peak) for i, (region, peak) in enumerate(parts)]
    want = min(members, key=lambda m: (depth(m.region), -m.peak_count, m.region))
    assert highest(members) is want


def test_a_region_event_with_its_group_is_replace_with_the_group_id() -> None:
    e = ev("opened", "US/CA", 0, 1, 30.0)
    got = e.with_group("out-1")
    assert got == replace(e, group_id="out-1") and type(got) is IncidentEvent and e.group_id is None
    assert got.to_json() == replace(e, group_id="out-1").to_json()
    with pytest.raises(FrozenInstanceError):
        got.group_id = "out-2"  # type: ignore[misc]


@dataclass(frozen=True, kw_only=True)
class _Grouped(IncidentEvent):
    """An event whose ``__init__`` does more than set fields: it notes its group in ``baseline``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "baseline", f"{self.baseline.split('@')[0]}@{self.group_id}")


def test_with_group_runs_the_init_of_an_event_whose_init_does_more() -> None:
    e = _Grouped(**{**ev("opened", "US/CA", 0, 1, 30.0).__dict__, "baseline": "learned"})
    got = e.with_group("out-1")
    assert e.baseline == "learned@None" and got.baseline == "learned@out-1"
    assert type(got) is _Grouped and got == replace(e, group_id="out-1")
