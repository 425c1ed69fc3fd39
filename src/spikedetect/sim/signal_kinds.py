"""The signal kinds of the catalogue (issue 18, not in ``suite``: the ``signals`` scenario):
``composition_shift`` and ``web_gap`` (each a :class:`~spikedetect.sim.truth.SignalTruth` and a
trap: no outage), and the traps ``share_drift`` and ``city_share_noise``."""

from __future__ import annotations

import numpy as np

from spikedetect.core.regions import region_keys
from spikedetect.sim.context import Context
from spikedetect.sim.injection import CATEGORIES, NORMAL_MIX, Gap, Relabel, Scenario
from spikedetect.sim.traffic import DAY_MS, MINUTE_MS
from spikedetect.sim.truth import SignalTruth, TrapTruth

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
