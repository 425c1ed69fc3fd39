"""The trap kinds of the catalogue: normal-but-tricky traffic that must not alarm (a
:class:`~spikedetect.sim.truth.TrapTruth` each): ``daily_peak``, ``one_window_burst``,
``new_region``, ``producer_gap``."""

from __future__ import annotations

import numpy as np

from spikedetect.core.regions import region_keys
from spikedetect.sim.context import Context
from spikedetect.sim.geo import country_leaves
from spikedetect.sim.injection import OUTAGE_MIXES, Gap, Injection, NewRegion, Scenario
from spikedetect.sim.traffic import DAY_MS, MINUTE_MS
from spikedetect.sim.truth import TrapTruth


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
