"""Scenarios: which kinds of the catalogue to inject, and where each goes in time.

A scenario is ``suite`` (every outage and trap), ``outages``, ``quiet`` (the traps only),
``none`` (normal traffic only), a kind, or a comma-separated list of those. Every kind has a fixed
slot in :data:`SUITE_LAYOUT`: day 1 is clean history so baselines can learn, the rest sits
on days 2 and 3. The table also fits on one day without two events on the same service
within two hours of each other, so a 2-day run puts everything on day 2 (a 1-day run on
day 1). Slots are UTC times of day, chosen for local time (the night outage at 03:30 in
Brazil, the burst at India's evening peak, ...).

>>> parse_scenario("quiet")
('daily_peak', 'one_window_burst', 'new_region', 'producer_gap')
>>> parse_scenario("night,flapping")
('night', 'flapping')
"""

from __future__ import annotations

from spikedetect.sim.context import Context
from spikedetect.sim.injection import Scenario
from spikedetect.sim.scenarios import CATALOGUE
from spikedetect.sim.traffic import DAY_MS, MINUTE_MS

OUTAGE_KINDS = ("widespread", "single_city", "night", "slow_ramp", "flapping", "sharp_spike")
TRAP_KINDS = ("daily_peak", "one_window_burst", "new_region", "producer_gap")
SIGNAL_KINDS = ("composition_shift", "web_gap", "share_drift", "city_share_noise")  # issue 18
SCENARIOS = {
    "suite": OUTAGE_KINDS + TRAP_KINDS,
    "signals": SIGNAL_KINDS,
    "outages": OUTAGE_KINDS,
    "quiet": TRAP_KINDS,
    "none": (),
}

# kind -> (day of a 3-day run, UTC time of day); daily_peak searches its day for the peak.
SUITE_LAYOUT: dict[str, tuple[int, str]] = {
    "single_city": (2, "04:30"),  # whatsapp Hyderabad, 10:00 IST
    "twin_cities": (2, "12:00"),  # whatsapp Hyderabad 17:30 IST + London 12:00 (not in "suite": ask for it)
    "slow_ramp": (2, "10:00"),  # facebook GB, late morning
    "one_window_burst": (2, "14:37"),  # facebook Bengaluru, 20:07 IST
    "daily_peak": (2, "00:00"),  # instagram global evening peak (~15:30 UTC)
    "sharp_spike": (2, "19:00"),  # instagram MX, 13:00 local
    "new_region": (2, "21:00"),  # instagram NZ appears, 10:00 NZDT
    "widespread": (3, "03:10"),  # instagram US evening / India morning
    "night": (3, "06:30"),  # facebook BR, 03:30 local
    "flapping": (3, "07:30"),  # whatsapp Mumbai, 13:00 IST
    "producer_gap": (3, "09:00"),  # threads
    # the "signals" scenario (issue 18): day 2, each kind on a service of its own
    "composition_shift": (2, "02:00"),  # facebook, US evening
    "web_gap": (2, "12:00"),  # whatsapp web
    "share_drift": (2, "00:00"),  # instagram, the whole day
    "city_share_noise": (2, "00:00"),  # instagram Los Angeles, the whole day
}


def parse_scenario(name: str) -> tuple[str, ...]:
    """The kinds a scenario stands for: names and kinds, comma-separated; ValueError if unknown.

    >>> parse_scenario("quiet,widespread")
    ('daily_peak', 'one_window_burst', 'new_region', 'producer_gap', 'widespread')
    """
    kinds: list[str] = []
    parts = [p.strip() for p in name.split(",") if p.strip()]
    for part in parts:
        if part not in SCENARIOS and part not in CATALOGUE:
            choices = ", ".join([*SCENARIOS, *CATALOGUE])
            raise ValueError(f"unknown scenario {part!r}: use one of {choices}, or several, comma-separated")
        kinds += SCENARIOS.get(part, (part,))
    if not parts:
        raise ValueError("empty scenario")
    return tuple(dict.fromkeys(kinds))


def build_scenario(name: str, ctx: Context) -> Scenario:
    """Place each kind of the scenario at its slot; kinds that do not fit in the stream are left out."""
    out = Scenario()
    days = max(1, -(-(ctx.end_ms - ctx.start_ms) // DAY_MS))
    anchor = ctx.start_ms - ctx.start_ms % DAY_MS
    for kind in parse_scenario(name):
        day, hhmm = SUITE_LAYOUT[kind]
        at = anchor + (min(day, days) - 1) * DAY_MS + (int(hhmm[:2]) * 60 + int(hhmm[3:])) * MINUTE_MS
        if not ctx.start_ms <= at < ctx.end_ms:
            continue
        part = CATALOGUE[kind](ctx, at, f"{kind}-1")
        spans = [(x.start_ms, x.end_ms) for x in part.outages] + [(x.start_ms, x.end_ms) for x in part.traps]
        spans += [(x.start_ms, x.end_ms) for x in part.signals]
        if all(ctx.start_ms <= start and end <= ctx.end_ms for start, end in spans):
            out.extend(part)
    out.outages.sort(key=lambda o: o.start_ms)
    out.traps.sort(key=lambda t: t.start_ms)
    out.signals.sort(key=lambda t: t.start_ms)
    return out
