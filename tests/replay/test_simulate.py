"""The simulator: contract of the lines, determinism, realism, and agreement with its ground truth."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import orjson
import pytest

from spikedetect.sim.geo import build_population
from spikedetect.sim.injection import CATEGORIES, SOURCES
from spikedetect.sim.simulate import Simulation, SimulationConfig, generate
from spikedetect.sim.suite import SUITE_LAYOUT
from spikedetect.sim.traffic import DAY_MS, DEFAULT_START_MS, MINUTE_MS, Traffic, seasonal_factor
from spikedetect.sim.truth import load_truth, write_truth

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = ["ts", "service", "region", "category", "source", "event_id"]


@dataclass
class Stream:
    """A generated stream, parsed: raw lines plus one numpy/list column per field."""

    sim: Simulation
    lines: list[bytes]
    ts_ms: np.ndarray
    service: np.ndarray
    region: np.ndarray
    category: np.ndarray
    source: np.ndarray
    event_id: list[str]

    def mask(self, service: str, key: str, start_ms: int, end_ms: int) -> np.ndarray:
        """Reports (re-sends included) of ``service`` under region ``key`` with ts in [start, end)."""
        m = (self.service == service) & (self.ts_ms >= start_ms) & (self.ts_ms < end_ms)
        if key != "*":
            m &= (self.region == key) | np.char.startswith(self.region, key + "/")
        return m

    def count(self, service: str, key: str, start_ms: int, end_ms: int) -> int:
        return int(self.mask(service, key, start_ms, end_ms).sum())

    def per_minute(self, service: str, key: str, start_ms: int, minutes: int) -> np.ndarray:
        m = self.mask(service, key, start_ms, start_ms + minutes * MINUTE_MS)
        return np.bincount((self.ts_ms[m] - start_ms) // MINUTE_MS, minlength=minutes)


def make_stream(**kwargs: object) -> Stream:
    sim = Simulation(SimulationConfig(**kwargs))  # type: ignore[arg-type]
    lines = list(sim.lines())
    objs = [orjson.loads(line) for line in lines]
    ts = np.array([o["ts"][:-1] for o in objs], dtype="datetime64[ms]").astype(np.int64)
    return Stream(
        sim,
        lines,
        ts,
        np.array([o["service"] for o in objs]),
        np.array([o["region"] for o in objs]),
        np.array([o["category"] for o in objs]),
        np.array([o["source"] for o in objs]),
        [o["event_id"] for o in objs],
    )


@pytest.fixture(scope="module")
def quiet_day() -> Stream:
    """One day of normal traffic plus the four traps, at full scale."""
    return make_stream(days=1, scenario="quiet", seed=7)


@pytest.fixture(scope="module")
def plain_day() -> Stream:
    """The same day without anything injected."""
    return make_stream(days=1, scenario="none", seed=7)


@pytest.fixture(scope="module")
def outage_day() -> Stream:
    """A small-scale day with the widespread outage (at 5% of its size)."""
    return make_stream(days=1, scenario="widespread", scale=0.2, peak_scale=0.05, seed=3)


@pytest.fixture(scope="module")
def outage_day_plain() -> Stream:
    return make_stream(days=1, scenario="none", scale=0.2, seed=3)


# -- determinism ------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs() -> None:
    cfg = SimulationConfig(days=0.25, scale=0.3, peak_scale=0.02, scenario="widespread,producer_gap", seed=11)
    first = list(generate(cfg))
    assert first == list(generate(cfg))
    assert list(Simulation(cfg).lines()) == first
    other = list(
        generate(
            SimulationConfig(
                days=0.25, scale=0.3, peak_scale=0.02, scenario="widespread,producer_gap", seed=12
            )
        )
    )
    assert other != first
    assert len(set(first) & set(other)) < len(first) // 100  # not a shifted copy either


def test_restarting_batches_repeats_the_stream() -> None:
    sim = Simulation(SimulationConfig(days=1 / 24, scale=0.5, scenario="none"))
    once = [line for b in sim.batches() for line in b.lines]
    assert once == list(sim.lines())
    assert sim.stats.events == len(once)


# -- the contract of a report line --------------------------------------------------------------------


def test_every_line_follows_the_report_contract(quiet_day: Stream) -> None:
    sim = quiet_day.sim
    services = set(sim.services)
    for line in quiet_day.lines[::37]:
        obj = orjson.loads(line)
        assert list(obj) == FIELDS
        assert TS_RE.match(obj["ts"]), obj["ts"]
        assert obj["service"] in services
        parts = obj["region"].split("/")
        assert 1 <= len(parts) <= 4 and re.fullmatch(r"[A-Z]{2}", parts[0]) and all(parts)
        assert obj["category"] in CATEGORIES and obj["source"] in SOURCES
        assert re.fullmatch(r"[0-9a-f]{16}", obj["event_id"])
    assert quiet_day.ts_ms.min() >= sim.truth.start_ms and quiet_day.ts_ms.max() < sim.truth.end_ms
    depths = Counter(r.count("/") + 1 for r in quiet_day.region)
    assert depths[3] > 0.85 * len(quiet_day.lines) and depths[2] > 0 and depths[1] > 0


def test_normal_category_and_source_mix(plain_day: Stream) -> None:
    n = len(plain_day.lines)
    cats, srcs = Counter(plain_day.category.tolist()), Counter(plain_day.source.tolist())
    want = {"direct_messages": 0.20, "feed": 0.25, "login": 0.15, "server_connection": 0.04,
            "profile": 0.10, "notifications": 0.10, "other": 0.16}  # fmt: skip
    for cat, share in want.items():
        assert cats[cat] / n == pytest.approx(share, abs=0.01)
    assert srcs["app"] / n == pytest.approx(0.60, abs=0.01)
    assert srcs["web"] / n == pytest.approx(0.35, abs=0.01)
    assert srcs["unknown"] / n == pytest.approx(0.05, abs=0.01)


def test_about_one_percent_exact_resends_shortly_after_the_original(quiet_day: Stream) -> None:
    seen: dict[str, int] = {}
    dups = 0
    for i, (eid, line) in enumerate(zip(quiet_day.event_id, quiet_day.lines, strict=True)):
        if eid in seen:
            dups += 1
            first = seen[eid]
            assert quiet_day.lines[first] == line  # same ts, event_id and fields
            assert i > first
        else:
            seen[eid] = i
    assert 0.007 < dups / len(quiet_day.lines) < 0.013
    assert dups == quiet_day.sim.stats.duplicates
    counts = Counter(quiet_day.event_id)
    assert max(counts.values()) == 2  # one re-send at most; distinct reports have distinct ids


def test_lines_are_slightly_out_of_order_never_by_more_than_20_s(quiet_day: Stream) -> None:
    ts = quiet_day.ts_ms
    behind = np.maximum.accumulate(ts) - ts
    assert behind.max() <= 20_000
    assert behind.max() > 5_000  # the jitter is real
    assert 0.05 < np.count_nonzero(behind) / len(ts) < 0.9


# -- realism of normal traffic ---------------------------------------------------------------------


def test_volume_default_peak_and_small_cities_often_silent(plain_day: Stream) -> None:
    start = plain_day.sim.truth.start_ms
    per_min = np.bincount(
        (plain_day.ts_ms[plain_day.service == "instagram"] - start) // MINUTE_MS, minlength=1440
    )
    assert np.sort(per_min)[-30] >= 60 and per_min.max() <= 160  # a peak of roughly 60-150 a minute
    boise = plain_day.per_minute("instagram", "US/ID/Boise", start, 1440)
    assert boise.sum() > 50
    assert (boise == 0).mean() > 0.7
    assert plain_day.sim.traffic.peak_global("instagram", DEFAULT_START_MS) == pytest.approx(103, rel=0.1)


def test_daily_cycle_follows_local_time(plain_day: Stream) -> None:
    start = plain_day.sim.truth.start_ms

    def hourly(key: str) -> np.ndarray:
        return np.array(
            [
                plain_day.count("instagram", key, start + h * 3_600_000, start + (h + 1) * 3_600_000)
                for h in range(24)
            ]
        )

    us_west, india = hourly("US/CA"), hourly("IN")
    # local peak 20-21h and trough ~4am: UTC-8 peaks at 04-05 UTC, UTC+5:30 at 14-16 UTC
    assert int(np.argmax(us_west)) in (3, 4, 5, 6)
    assert int(np.argmax(india)) in (13, 14, 15, 16)
    assert int(np.argmin(us_west)) in (10, 11, 12, 13)
    assert int(np.argmin(india)) in (21, 22, 23, 0)
    assert 3 < india.max() / india.min() < 9


def test_weekends_are_a_bit_busier() -> None:
    saturday, wednesday = DEFAULT_START_MS + 4 * DAY_MS, DEFAULT_START_MS + 1 * DAY_MS
    noon = 12 * 3_600_000
    sat, wed = seasonal_factor(np.array([saturday + noon, wednesday + noon]), np.array([0]))[:, 0]
    assert 1.03 < sat / wed < 1.2


def test_counts_are_overdispersed(plain_day: Stream) -> None:
    """Per-minute counts of a big key vary more than Poisson around the expected rate."""
    traffic = Traffic(build_population())
    start = plain_day.sim.truth.start_ms
    minutes = start + np.arange(1440) * MINUTE_MS
    expected = traffic.expected_key("instagram", "*", minutes)
    idx = (plain_day.ts_ms[plain_day.service == "instagram"] - start) // MINUTE_MS
    observed = np.bincount(idx, minlength=1440)
    dispersion = np.mean((observed - expected) ** 2 / expected)
    assert dispersion > 1.3
    assert abs(observed.sum() / expected.sum() - 1) < 0.03  # yet unbiased


# -- injected outages agree with the ground truth -----------------------------------------------------


def test_normal_reports_are_the_same_with_and_without_injection(
    outage_day: Stream, outage_day_plain: Stream
) -> None:
    assert set(outage_day_plain.lines) <= set(outage_day.lines)
    injected = outage_day.sim.stats.injected["widespread-1"]
    assert len(outage_day.lines) - len(outage_day_plain.lines) >= injected


def test_widespread_counts_far_exceed_the_same_minutes_without_it(
    outage_day: Stream, outage_day_plain: Stream
) -> None:
    (outage,) = outage_day.sim.truth.outages
    assert outage.kind == "widespread" and outage.large
    span = 30
    with_it = outage_day.per_minute("instagram", "*", outage.start_ms, span)
    without = outage_day_plain.per_minute("instagram", "*", outage.start_ms, span)
    assert (with_it[1:] > 10 * without[1:]).all()
    before = outage.start_ms - 30 * MINUTE_MS
    assert outage_day.count("instagram", "*", before, outage.start_ms) == outage_day_plain.count(
        "instagram", "*", before, outage.start_ms
    )
    for key in outage.must_detect:
        assert key in outage.affected_keys()
        assert outage_day.count(
            "instagram", key, outage.start_ms, outage.start_ms + 20 * MINUTE_MS
        ) > 5 * max(
            1, outage_day_plain.count("instagram", key, outage.start_ms, outage.start_ms + 20 * MINUTE_MS)
        )
    # quiet again at the end
    after = outage_day.count("instagram", "*", outage.end_ms + MINUTE_MS, outage.end_ms + 31 * MINUTE_MS)
    assert after == outage_day_plain.count(
        "instagram", "*", outage.end_ms + MINUTE_MS, outage.end_ms + 31 * MINUTE_MS
    )


def test_widespread_shape_like_the_seed_write_up(outage_day: Stream) -> None:
    (outage,) = outage_day.sim.truth.outages
    scale = 0.05
    glob = outage_day.per_minute("instagram", "*", outage.start_ms, 180)
    india = outage_day.per_minute("instagram", "IN", outage.start_ms, 180)
    assert glob.max() == pytest.approx(12_000 * scale, rel=0.15)
    assert india.max() == pytest.approx(1_300 * scale, rel=0.3)
    assert glob[:6].max() > 0.8 * glob.max()  # fast ramp
    assert 90 <= (outage.end_ms - outage.start_ms) / MINUTE_MS <= 180
    # staggered recovery: India falls off well before the US west coast
    us_west = outage_day.per_minute("instagram", "US/CA", outage.start_ms, 180)

    def falls_off(series: np.ndarray) -> int:
        peak = int(np.argmax(series))
        return peak + int(np.argmax(series[peak:] < 0.3 * series.max()))

    fall_in, fall_ca = falls_off(india), falls_off(us_west)
    assert fall_ca - fall_in >= 15
    # the top US cities of the write-up
    cities = Counter(r for r, s, t in zip(outage_day.region, outage_day.service, outage_day.ts_ms, strict=True)
                     if s == "instagram" and r.startswith("US/") and outage.start_ms <= t < outage.end_ms)  # fmt: skip
    top5 = {r for r, _ in cities.most_common(5)}
    assert top5 == {
        "US/CA/Los Angeles",
        "US/IL/Chicago",
        "US/AZ/Phoenix",
        "US/NY/New York",
        "US/DC/Washington",
    }


def test_widespread_categories_and_sources(outage_day: Stream) -> None:
    (outage,) = outage_day.sim.truth.outages
    mask = (
        (outage_day.service == "instagram")
        & (outage_day.ts_ms >= outage.start_ms)
        & (outage_day.ts_ms < outage.start_ms + 45 * MINUTE_MS)
    )
    n = mask.sum()
    assert (outage_day.category[mask] == "server_connection").sum() / n == pytest.approx(0.18, abs=0.02)
    assert (outage_day.source[mask] == "app").sum() / n == pytest.approx(0.75, abs=0.03)
    assert (outage_day.category[mask] == "direct_messages").sum() / n > 0.5


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("single_city", "plateau"),
        ("night", "plateau"),
        ("sharp_spike", "plateau"),
        ("slow_ramp", "ramp"),
        ("flapping", "pulses"),
    ],
)
def test_other_outage_kinds_show_in_their_first_key(kind: str, check: str) -> None:
    _, hhmm = SUITE_LAYOUT[kind]
    at = DEFAULT_START_MS + (int(hhmm[:2]) * 60 + int(hhmm[3:])) * MINUTE_MS
    window = {"start_ms": at - at % 3_600_000 - 3_600_000, "days": 3 / 24, "seed": 5}  # just around its slot
    stream = make_stream(scenario=kind, **window)
    base = make_stream(scenario="none", **window)
    (outage,) = stream.sim.truth.outages
    assert outage.start_ms == at
    key, service = outage.must_detect[0], outage.service
    n_min = (outage.end_ms - outage.start_ms) // MINUTE_MS
    with_it = stream.per_minute(service, key, outage.start_ms, n_min)
    without = base.per_minute(service, key, outage.start_ms, n_min)
    extra = with_it - without
    assert (extra >= 0).all()
    assert all(k in outage.affected_keys() for k in outage.must_detect)
    if check == "plateau":
        assert extra[1:-1].mean() > 4 * max(without.mean(), 0.5)
    elif check == "ramp":
        q = len(extra) // 5
        assert extra[:q].mean() * 3 < extra[-q:].mean()
        assert without[-q:].mean() * 4 < extra[-q:].mean()
    else:  # 3 minutes on, 2 off
        on = np.array([m % 5 < 3 for m in range(n_min)])
        assert extra[on].min() > 3 * max(extra[~on].max(), 1)
    if kind == "night":
        offset = stream.sim.traffic.population.leaf("BR/SP/São Paulo").utc_offset_min
        assert ((outage.start_ms // MINUTE_MS + offset) // 60) % 24 == 3


# -- traps --------------------------------------------------------------------------------------------


def _trap(stream: Stream, kind: str):  # type: ignore[no-untyped-def]
    return next(t for t in stream.sim.truth.traps if t.kind == kind)


def test_traps_change_only_what_they_say(quiet_day: Stream, plain_day: Stream) -> None:
    """quiet = plain - (threads in the gap) + (the one-window burst) + (New Zealand)."""
    gap, burst, new = (
        _trap(quiet_day, "producer_gap"),
        _trap(quiet_day, "one_window_burst"),
        _trap(quiet_day, "new_region"),
    )
    plain_set, quiet_set = set(plain_day.lines), set(quiet_day.lines)
    removed = [orjson.loads(x) for x in plain_set - quiet_set]
    added = [orjson.loads(x) for x in quiet_set - plain_set]
    assert removed and all(o["service"] == "threads" for o in removed)
    for o in removed:
        ts = int(np.datetime64(o["ts"][:-1], "ms").astype(np.int64))
        assert gap.start_ms <= ts < gap.end_ms
    added_burst = [o for o in added if o["region"] == burst.regions[0]]
    assert len(added_burst) >= 2 and all(o["service"] == "facebook" for o in added_burst)
    assert {o["region"].split("/")[0] for o in added} == {"NZ", "IN"}
    assert all(o["region"] in new.regions for o in added if o["region"].startswith("NZ"))


def test_producer_gap_stops_a_service_then_it_resumes_normally(quiet_day: Stream, plain_day: Stream) -> None:
    gap = _trap(quiet_day, "producer_gap")
    assert quiet_day.count(gap.service, "*", gap.start_ms, gap.end_ms) == 0
    before = quiet_day.count(gap.service, "*", gap.start_ms - 20 * MINUTE_MS, gap.start_ms)
    after = quiet_day.count(gap.service, "*", gap.end_ms, gap.end_ms + 20 * MINUTE_MS)
    assert before > 50 and 0.6 < after / before < 1.6  # resumes at the normal level, no backlog
    assert "*" in gap.keys and "US/CA/Los Angeles" in gap.keys


def test_one_window_burst_is_a_modest_single_window(quiet_day: Stream, plain_day: Stream) -> None:
    burst = _trap(quiet_day, "one_window_burst")
    city = burst.regions[0]
    assert burst.end_ms - burst.start_ms == MINUTE_MS
    got = quiet_day.count(burst.service, city, burst.start_ms, burst.end_ms)
    normal = plain_day.count(burst.service, city, burst.start_ms, burst.end_ms)
    expected = quiet_day.sim.traffic.expected_key(burst.service, city, burst.start_ms)[0]
    assert got - normal == max(2, round(1.75 * expected))
    for m in (-2, -1, 1, 2):  # the windows around it are untouched
        lo = burst.start_ms + m * MINUTE_MS
        assert quiet_day.count(burst.service, city, lo, lo + MINUTE_MS) == plain_day.count(
            burst.service, city, lo, lo + MINUTE_MS
        )


def test_new_region_appears_mid_stream_and_keeps_reporting(quiet_day: Stream) -> None:
    new = _trap(quiet_day, "new_region")
    assert quiet_day.count(new.service, "NZ", quiet_day.sim.truth.start_ms, new.start_ms) == 0
    hourly = [
        quiet_day.count(new.service, "NZ", new.start_ms + h * 3_600_000, new.start_ms + (h + 1) * 3_600_000)
        for h in range(3)
    ]
    assert all(20 < h < 200 for h in hourly)  # ordinary for a small country (~1/min), and it goes on
    assert new.end_ms == quiet_day.sim.truth.end_ms and "*" not in new.keys and "NZ" in new.keys


def test_daily_peak_trap_marks_the_real_peak_and_injects_nothing(quiet_day: Stream) -> None:
    trap = _trap(quiet_day, "daily_peak")
    traffic = quiet_day.sim.traffic
    day = quiet_day.sim.truth.start_ms
    assert trap.start_ms <= traffic.peak_minute("instagram", "*", day) < trap.end_ms
    assert trap.keys[0] == "*" and trap.service == "instagram"
    assert not any(c.id.startswith("daily_peak") for c in quiet_day.sim.scenario.components)


# -- the suite and the truth file ---------------------------------------------------------------------


@pytest.mark.parametrize("days", [3, 2])
def test_suite_lays_out_every_kind_after_a_clean_first_day(days: int) -> None:
    truth = Simulation(SimulationConfig(days=days)).truth
    assert {o.kind for o in truth.outages} == {
        "widespread",
        "single_city",
        "night",
        "slow_ramp",
        "flapping",
        "sharp_spike",
    }
    assert {t.kind for t in truth.traps} == {"daily_peak", "one_window_burst", "new_region", "producer_gap"}
    items = [(o.service, o.start_ms, o.end_ms, o.affected_keys()) for o in truth.outages]
    items += [(t.service, t.start_ms, t.end_ms, frozenset(t.keys)) for t in truth.traps]
    for _, start, end, _ in items:
        assert truth.start_ms + DAY_MS <= start < end <= truth.end_ms
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            if a[0] == b[0] and a[3] & b[3]:  # same service, shared keys: well apart
                gap = max(b[1] - a[2], a[1] - b[2])
                assert gap >= 60 * MINUTE_MS, (a[:3], b[:3])


def test_truth_round_trips_through_its_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = Simulation(SimulationConfig(days=2, peak_scale=0.1))
    truth = sim.truth.with_stats({"events": 5})
    write_truth(truth, tmp_path / "t.json")
    loaded = load_truth(tmp_path / "t.json")
    assert loaded == truth and loaded.stats == {"events": 5}
    raw = orjson.loads((tmp_path / "t.json").read_bytes())
    assert raw["format"] == "spikedetect.truth/v1" and raw["window_ms"] == 60_000
    wide = next(o for o in raw["outages"] if o["kind"] == "widespread")
    assert wide["must_detect"][:3] == ["*", "US", "IN"] and wide["large"] is True
    assert set(wide) >= {"id", "kind", "service", "start", "end", "regions", "must_detect", "large"}
    assert all(set(t) >= {"id", "kind", "service", "start", "end", "regions", "keys"} for t in raw["traps"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scenario": "nope"},
        {"start_ms": DEFAULT_START_MS + 1},
        {"days": 0},
        {"scale": 0},
        {"max_lateness_ms": 61_000},
        {"seed": -1},
        {"duplicate_rate": 0.6},
    ],
)
def test_config_is_validated_when_built(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SimulationConfig(**kwargs)  # type: ignore[arg-type]
