"""The outage kinds of the catalogue (an :class:`~spikedetect.sim.injection.Injection` and an
:class:`~spikedetect.sim.truth.OutageTruth` each): ``widespread``, ``single_city``,
``twin_cities``, ``night``, ``slow_ramp``, ``flapping``, ``sharp_spike``.

Outages other than ``widespread`` are sized relative to the normal level of their keys,
so they scale with ``--scale``; ``widespread`` has an absolute size scaled by ``peak_scale``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikedetect.sim.context import Context
from spikedetect.sim.geo import Population
from spikedetect.sim.injection import OUTAGE_MIXES, Injection, Scenario
from spikedetect.sim.traffic import MINUTE_MS
from spikedetect.sim.truth import OutageTruth

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


def _country_weights(pop: Population, shares: np.ndarray, country: str, idx: list[int]) -> np.ndarray:
    """Each leaf's share of a country's widespread reports: its share of the service's traffic,
    except the named US cities (:data:`WIDESPREAD_US_CITIES`), which take their reported shares."""
    w: np.ndarray = shares[idx] / shares[idx].sum()
    if country == "US":
        named = np.array([pop.leaves[i].region in WIDESPREAD_US_CITIES for i in idx])
        w[~named] *= (1.0 - sum(WIDESPREAD_US_CITIES.values())) / w[~named].sum()
        w[named] = [WIDESPREAD_US_CITIES[pop.leaves[i].region] for i in np.asarray(idx)[named]]
    return w


def _tail_ms() -> list[int]:
    """The tail's knots, in ms after a group's recovery."""
    return _minutes(*(t for t, _ in _TAIL))


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
        for i, wi in zip(idx, _country_weights(pop, shares, country, idx), strict=True):
            leaf = pop.leaves[i]
            group = "/".join(leaf.region.split("/")[:2]) if country in ("US", "IN") else country
            if group not in groups:
                lo, hi = _recovery_window(country, leaf.utc_offset_min)
                ramp_s, recover_s = rng.uniform(180, 300), rng.uniform(lo * 60, hi * 60)
                groups[group] = (round(ramp_s) * 1000, round(recover_s) * 1000)
            ramp, recover = groups[group]
            regions.append(leaf.region)
            peaks.append(total * c_share * float(wi))
            knots.append([at_ms, at_ms + ramp, at_ms + recover, *(at_ms + recover + m for m in _tail_ms())])
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
