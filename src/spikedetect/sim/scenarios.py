"""The catalogue of outages and traps: what each kind injects and the ground truth it makes.

Outage kinds (an :class:`~spikedetect.sim.injection.Injection` and an
:class:`~spikedetect.sim.truth.OutageTruth` each): ``widespread``, ``single_city``,
``night``, ``slow_ramp``, ``flapping``, ``sharp_spike``. Trap kinds (normal-but-tricky
traffic that must not alarm, a :class:`~spikedetect.sim.truth.TrapTruth` each):
``daily_peak``, ``one_window_burst``, ``new_region``, ``producer_gap``. Signal kinds (issue 18,
not in ``suite``: the ``signals`` scenario): ``composition_shift`` and ``web_gap`` (each a
:class:`~spikedetect.sim.truth.SignalTruth` and a trap: no outage), and the traps
``share_drift`` and ``city_share_noise``. Where they go in
time is :mod:`~spikedetect.sim.suite`'s business: an entry gets its start time.

Outages other than ``widespread`` are sized relative to the normal level of their keys,
so they scale with ``--scale``; ``widespread`` has an absolute size scaled by ``peak_scale``.

>>> from spikedetect.sim.geo import build_population
>>> ctx = Context(Traffic(build_population()), seed=1, start_ms=0, end_ms=DAY_MS)
>>> single_city(ctx, 4 * 3_600_000, "s-1").outages[0].must_detect
('IN/TG/Hyderabad', 'IN/TG')
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from spikedetect.core.regions import depth, region_keys
from spikedetect.sim.geo import country_leaves
from spikedetect.sim.injection import (
    CATEGORIES,
    NORMAL_MIX,
    OUTAGE_MIXES,
    Gap,
    Injection,
    NewRegion,
    Relabel,
    Scenario,
)
from spikedetect.sim.traffic import DAY_MS, MINUTE_MS, Traffic
from spikedetect.sim.truth import OutageTruth, SignalTruth, TrapTruth

MIN_VISIBLE_PER_MIN = 10.0  # a key is "clearly visible" with this many extra reports/min ...
MIN_VISIBLE_RATIO = 2.0  # ... and at least this many times its expected count
MAX_EXTRA_KEYS = 4  # must_detect: the main key and at most this many more (the biggest excesses)

WIDESPREAD_PEAK_PER_MIN = 12_000.0
WIDESPREAD_COUNTRIES = {
    "US": 0.64,
    "IN": 0.10,
    "GB": 0.06,
    "CA": 0.05,
    "BR": 0.05,
    "MX": 0.04,
    "DE": 0.04,
    "AU": 0.02,
}
# the cities that reported most in the seed write-up, with their share of the US reports
WIDESPREAD_US_CITIES = {
    "US/CA/Los Angeles": 0.10, "US/IL/Chicago": 0.08, "US/AZ/Phoenix": 0.07,
    "US/NY/New York": 0.065, "US/DC/Washington": 0.06,
}  # fmt: skip
# minutes after the start when a group's reports fall off, by US UTC offset; India; the rest
_RECOVERY_MIN = {-300: (55, 70), -360: (60, 80), -420: (65, 85), -480: (70, 95), -600: (70, 95)}
_RECOVERY_IN, _RECOVERY_OTHER = (35, 50), (30, 80)
# after recovery: (minutes after the group's recovery, level) - a fast drop, then a long tail
_TAIL = ((8, 0.12), (30, 0.05), (60, 0.015), (75, 0.0))


@dataclass
class Context:
    """What a catalogue entry needs: normal traffic, the stream's span, the seed, knobs."""

    traffic: Traffic
    seed: int
    start_ms: int
    end_ms: int
    peak_scale: float = 1.0

    def rng(self, id: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(id.encode()), 1])

    def expected(self, service: str, key: str, t_ms: int) -> float:
        return float(self.traffic.expected_key(service, key, t_ms - t_ms % MINUTE_MS)[0])

    def relative(self, service: str, key: str, multiple: float, t_ms: int) -> tuple[list[str], np.ndarray]:
        """Leaves under ``key`` and extra rates that lift each to ``multiple`` x its level at ``t_ms``."""
        pop = self.traffic.population
        idx = pop.leaves_under(key)
        minute = np.array([t_ms - t_ms % MINUTE_MS])
        base = self.traffic.expected_leaves(service, idx, minute)[0]
        return [pop.leaves[i].region for i in idx], (multiple - 1.0) * base

    def must_detect(
        self, service: str, regions: list[str], peaks: np.ndarray, t_ms: int, first: str
    ) -> tuple[str, ...]:
        """``first``, then the keys where the outage is clearly visible (biggest excess; top level first)."""
        extra: dict[str, float] = {}
        for region, rate in zip(regions, peaks, strict=True):
            for key in region_keys(region):
                extra[key] = extra.get(key, 0.0) + float(rate)
        visible = [
            k
            for k, x in extra.items()
            if k != first
            and x >= MIN_VISIBLE_PER_MIN
            and x >= MIN_VISIBLE_RATIO * self.expected(service, k, t_ms)
        ]
        visible = sorted(visible, key=lambda k: (-extra[k], depth(k)))[:MAX_EXTRA_KEYS]
        return (first, *sorted(visible, key=lambda k: (depth(k), -extra[k])))


def _recovery_window(country: str, utc_offset_min: int) -> tuple[int, int]:
    if country == "US":
        return _RECOVERY_MIN.get(utc_offset_min, _RECOVERY_OTHER)
    return _RECOVERY_IN if country == "IN" else _RECOVERY_OTHER


def _minutes(*values: float) -> list[int]:
    return [round(v * MINUTE_MS) for v in values]


def _outage(
    ctx: Context, kind: str, id: str, service: str, key: str, multiple: float, at_ms: int,
    knots_min: list[float], levels: list[float], t_peak_min: float, text: str, large: bool = False,
) -> Scenario:  # fmt: skip
    """An outage on every leaf under ``key``, ``multiple`` x its level at the envelope's peak."""
    t_peak = at_ms + round(t_peak_min * MINUTE_MS)
    regions, peaks = ctx.relative(service, key, multiple, t_peak)
    knots = [at_ms + k for k in _minutes(*knots_min)]
    inj = Injection.shaped(id, service, regions, peaks, knots, levels, OUTAGE_MIXES[kind])
    truth = OutageTruth(
        id, kind, service, inj.start_ms, inj.end_ms, tuple(regions),
        ctx.must_detect(service, regions, peaks, t_peak, key), large, round(float(peaks.sum()), 1), text,
    )  # fmt: skip
    return Scenario([inj], outages=[truth])


def widespread(ctx: Context, at_ms: int, id: str) -> Scenario:
    """Instagram DMs down across the US, India and more: ~12,000 reports/min at the peak
    (x ``peak_scale``), ramp in 3-5 min, regions recover at different times, long tail."""
    service, pop = "instagram", ctx.traffic.population
    shares, rng = pop.shares(service), ctx.rng(id)
    total = WIDESPREAD_PEAK_PER_MIN * ctx.peak_scale
    regions: list[str] = []
    peaks: list[float] = []
    knots: list[list[int]] = []
    groups: dict[str, tuple[int, int]] = {}  # state or country -> (ramp ms, recovery ms)
    for country, c_share in WIDESPREAD_COUNTRIES.items():
        idx = pop.leaves_under(country)
        w = shares[idx] / shares[idx].sum()
        if country == "US":
            named = np.array([pop.leaves[i].region in WIDESPREAD_US_CITIES for i in idx])
            w[~named] *= (1.0 - sum(WIDESPREAD_US_CITIES.values())) / w[~named].sum()
            w[named] = [WIDESPREAD_US_CITIES[pop.leaves[i].region] for i in np.asarray(idx)[named]]
        for i, wi in zip(idx, w, strict=True):
            leaf = pop.leaves[i]
            group = "/".join(leaf.region.split("/")[:2]) if country in ("US", "IN") else country
            if group not in groups:
                lo, hi = _recovery_window(country, leaf.utc_offset_min)
                ramp_s, recover_s = rng.uniform(180, 300), rng.uniform(lo * 60, hi * 60)
                groups[group] = (round(ramp_s) * 1000, round(recover_s) * 1000)
            ramp, recover = groups[group]
            regions.append(leaf.region)
            peaks.append(total * c_share * float(wi))
            knots.append(
                [
                    at_ms,
                    at_ms + ramp,
                    at_ms + recover,
                    *(at_ms + recover + m for m in _minutes(*(t for t, _ in _TAIL))),
                ]
            )
    levels = [0.0, 1.0, 0.85, *(lv for _, lv in _TAIL)]
    inj = Injection.shaped(id, service, regions, peaks, np.array(knots), levels, OUTAGE_MIXES["widespread"])
    must = ("*", "US", "IN", *WIDESPREAD_US_CITIES)
    text = f"instagram DMs down in the US, India and {len(WIDESPREAD_COUNTRIES) - 2} more countries, staggered recovery"
    truth = OutageTruth(
        id, "widespread", service, inj.start_ms, inj.end_ms, tuple(regions), must, True, total, text
    )
    return Scenario([inj], outages=[truth])


def single_city(ctx: Context, at_ms: int, id: str) -> Scenario:
    """whatsapp in Hyderabad at 25x its level for 45 minutes."""
    return _outage(ctx, "single_city", id, "whatsapp", "IN/TG/Hyderabad", 25, at_ms, [0, 2, 42, 45], [0, 1, 1, 0],
                   20, "whatsapp down in Hyderabad, 25x for 45 min")  # fmt: skip


def twin_cities(ctx: Context, at_ms: int, id: str) -> Scenario:
    """whatsapp down at the same time in Hyderabad (IN) and London (GB), 25x for 45 minutes:
    two independent outages, which must stay two incidents."""
    out = _outage(ctx, "single_city", f"{id}-in", "whatsapp", "IN/TG/Hyderabad", 25, at_ms, [0, 2, 42, 45],
                  [0, 1, 1, 0], 20, "whatsapp down in Hyderabad, 25x for 45 min (with London)")
    out.extend(_outage(ctx, "single_city", f"{id}-gb", "whatsapp", "GB/ENG/London", 25, at_ms, [0, 2, 42, 45],
                       [0, 1, 1, 0], 20, "whatsapp down in London, 25x for 45 min (with Hyderabad)"))
    out.outages = [dataclasses.replace(o, kind="twin_cities") for o in out.outages]
    return out


def night(ctx: Context, at_ms: int, id: str) -> Scenario:
    """facebook in Brazil at 3:30am local, 8x the low night level for 40 minutes."""
    return _outage(ctx, "night", id, "facebook", "BR", 8, at_ms, [0, 3, 36, 40], [0, 1, 1, 0],
                   20, "facebook logins failing in Brazil at 03:30 local, 8x the night level")  # fmt: skip


def slow_ramp(ctx: Context, at_ms: int, id: str) -> Scenario:
    """facebook in Great Britain growing linearly to 10x over 75 minutes, then fixed at once."""
    return _outage(ctx, "slow_ramp", id, "facebook", "GB", 10, at_ms, [0, 75, 76], [0, 1, 0],
                   75, "facebook feed degrading in GB: linear to 10x over 75 min, then fixed")  # fmt: skip


def flapping(ctx: Context, at_ms: int, id: str) -> Scenario:
    """whatsapp in Mumbai at 15x, 3 minutes on and 2 off, six times: one incident."""
    knots: list[float] = []
    levels: list[float] = []
    eps = 1 / MINUTE_MS
    for p in range(6):
        knots += [5 * p, 5 * p + 3 - eps, 5 * p + 3] + ([5 * p + 5 - eps] if p < 5 else [])
        levels += [1, 1, 0] + ([0] if p < 5 else [])
    return _outage(ctx, "flapping", id, "whatsapp", "IN/MH/Mumbai", 15, at_ms, knots, levels,
                   1, "whatsapp flapping in Mumbai: 3 min on, 2 off, for 28 min")  # fmt: skip


def sharp_spike(ctx: Context, at_ms: int, id: str) -> Scenario:
    """instagram in Mexico at 30x for 5 minutes."""
    return _outage(ctx, "sharp_spike", id, "instagram", "MX", 30, at_ms, [0, 1, 4, 5], [0, 1, 1, 0],
                   2, "instagram spike in Mexico, 30x for 5 min", large=True)  # fmt: skip


def daily_peak(ctx: Context, at_ms: int, id: str) -> Scenario:
    """The normal evening peak of the biggest key (instagram global), +-1 h: nothing injected."""
    service, traffic = "instagram", ctx.traffic
    peak = traffic.peak_minute(service, "*", at_ms - at_ms % DAY_MS)
    start, end = peak - 60 * MINUTE_MS, peak + 60 * MINUTE_MS
    shares = traffic.population.shares(service)
    keys = ["*"]
    for country in dict.fromkeys(leaf.country for leaf in traffic.population.leaves):
        big = shares[traffic.population.leaves_under(country)].sum() >= 0.1
        if big and start <= traffic.peak_minute(service, country, at_ms - at_ms % DAY_MS) < end:
            keys.append(country)
    text = "instagram's normal daily peak (global and the countries peaking with it)"
    return Scenario(traps=[TrapTruth(id, "daily_peak", service, start, end, ("*",), tuple(keys), text)])


def one_window_burst(ctx: Context, at_ms: int, id: str) -> Scenario:
    """One 60-s window of facebook in Bengaluru at ~2.75x its normal count."""
    service, city = "facebook", "IN/KA/Bengaluru"
    extra = max(2.0, round(1.75 * ctx.expected(service, city, at_ms)))
    inj = Injection.shaped(id, service, [city], [extra], [at_ms, at_ms + MINUTE_MS - 1], [1, 1],
                           OUTAGE_MIXES["sharp_spike"], exact=True)  # fmt: skip
    text = f"one 60-s window with {extra:.0f} extra facebook reports in Bengaluru (~2.75x)"
    trap = TrapTruth(
        id, "one_window_burst", service, at_ms, at_ms + MINUTE_MS, (city,), (city, "IN/KA"), text
    )
    return Scenario([inj], traps=[trap])


def new_region(ctx: Context, at_ms: int, id: str) -> Scenario:
    """New Zealand starts reporting to instagram mid-stream, at a normal level for its size."""
    service, share = "instagram", 0.012
    leaves = tuple(country_leaves("NZ", "AUK Auckland; WGN Wellington; CAN Christchurch", 780))
    mean = (
        np.array([leaf.weight for leaf in leaves])
        * share
        * ctx.traffic.service_rates[service]
        * ctx.traffic.scale
    )
    keys = tuple(dict.fromkeys(k for leaf in leaves for k in region_keys(leaf.region) if k != "*"))
    text = "New Zealand appears mid-stream (instagram) and keeps reporting at a normal level"
    trap = TrapTruth(
        id, "new_region", service, at_ms, ctx.end_ms, tuple(lf.region for lf in leaves), keys, text
    )
    return Scenario([NewRegion(id, service, leaves, mean, at_ms)], traps=[trap])


def producer_gap(ctx: Context, at_ms: int, id: str) -> Scenario:
    """Every threads report stops for 20 minutes, then resumes at the normal level (no backlog)."""
    service, end = "threads", at_ms + 20 * MINUTE_MS
    keys = tuple(sorted({k for leaf in ctx.traffic.population.leaves for k in region_keys(leaf.region)}))
    text = "the threads producer sends nothing for 20 min, then resumes at the normal level"
    trap = TrapTruth(id, "producer_gap", service, at_ms, end, ("*",), keys, text)
    return Scenario(gaps=[Gap(service, at_ms, end)], traps=[trap])


# -- composition shifts and ingest gaps (issue 18) ------------------------------------------
SHIFT_CATEGORY, SHIFT_SHARE = "server_connection", 0.20  # the simulator's normal share is 4%
DRIFT_CATEGORY, DRIFT_PEAK = "login", 0.30  # normal 15%


def _share_prob(category: str, share: float) -> float:
    """Relabel probability that takes ``category`` from its normal share to ``share``."""
    p0 = NORMAL_MIX.categories[CATEGORIES.index(category)]
    return (share - p0) / (1.0 - p0)


def composition_shift(ctx: Context, at_ms: int, id: str) -> Scenario:
    """facebook everywhere: server connection rises from its normal 4% to 20% of the reports for
    30 minutes while the total stays normal (other categories give way)."""
    service, end = "facebook", at_ms + 30 * MINUTE_MS
    countries = dict.fromkeys(leaf.country for leaf in ctx.traffic.population.leaves)
    country = max(countries, key=lambda c: (ctx.expected(service, c, at_ms), c))
    q = _share_prob(SHIFT_CATEGORY, SHIFT_SHARE)
    rel = Relabel(id, service, "*", (at_ms, end - 1), (q, q), CATEGORIES.index(SHIFT_CATEGORY))
    text = f"facebook server connection from 4% to {SHIFT_SHARE:.0%} of reports for 30 min, normal total"
    sig = SignalTruth(id, "composition", service, at_ms, end, ("*", country), category=SHIFT_CATEGORY, description=text)
    trap = TrapTruth(id, "composition_shift", service, at_ms, end, ("*",), ("*", country), text + " (no outage)")
    return Scenario(relabels=[rel], signals=[sig], traps=[trap])


def web_gap(ctx: Context, at_ms: int, id: str) -> Scenario:
    """whatsapp's web producer sends nothing for 20 minutes; app reports go on."""
    service, end = "whatsapp", at_ms + 20 * MINUTE_MS
    keys = tuple(sorted({k for leaf in ctx.traffic.population.leaves for k in region_keys(leaf.region)}))
    text = "the whatsapp web producer sends nothing for 20 min (source: web), then resumes"
    sig = SignalTruth(id, "ingest_gap", service, at_ms, end, ("*",), sources=("web",), description=text)
    trap = TrapTruth(id, "web_gap", service, at_ms, end, ("*",), keys, text + " (no outage)")
    return Scenario(gaps=[Gap(service, at_ms, end, "web")], signals=[sig], traps=[trap])


def share_drift(ctx: Context, at_ms: int, id: str) -> Scenario:
    """instagram's login share drifts from 15% to 30% and back over a day, smoothly: normal."""
    service = "instagram"
    hours = np.arange(25)
    shares = 0.15 + (DRIFT_PEAK - 0.15) * (0.5 - 0.5 * np.cos(2 * np.pi * hours / 24))
    probs = tuple(_share_prob(DRIFT_CATEGORY, float(x)) for x in shares)
    knots = tuple(at_ms + int(h) * 60 * MINUTE_MS for h in hours)
    rel = Relabel(id, service, "*", knots, probs, CATEGORIES.index(DRIFT_CATEGORY))
    text = "instagram's login share drifts 15% -> 30% -> 15% over a day (normal drift, total unchanged)"
    trap = TrapTruth(id, "share_drift", service, at_ms, knots[-1], ("*",), ("*", "US", "IN"), text)
    return Scenario(relabels=[rel], traps=[trap])


def city_share_noise(ctx: Context, at_ms: int, id: str) -> Scenario:
    """instagram in Los Angeles (1-3 reports/min): half its reports take a category from a mix
    drawn anew every 10 minutes (wildly noisy shares, normal total) for a day."""
    service, city, end = "instagram", "US/CA/Los Angeles", at_ms + DAY_MS
    rel = Relabel(id, service, city, (at_ms, end - 1), (0.5, 0.5), -1, 600_000, 4.0)
    text = "instagram Los Angeles: the category mix is noise, re-drawn every 10 min, for a day"
    trap = TrapTruth(id, "city_share_noise", service, at_ms, end, (city,), (city, "US/CA"), text)
    return Scenario(relabels=[rel], traps=[trap])


CATALOGUE: dict[str, Callable[[Context, int, str], Scenario]] = {
    f.__name__: f
    for f in (widespread, single_city, twin_cities, night, slow_ramp, flapping, sharp_spike,
              daily_peak, one_window_burst, new_region, producer_gap,
              composition_shift, web_gap, share_drift, city_share_noise)
}  # fmt: skip
