"""The catalogue of outages, traps and signals: what each kind injects and the ground truth it makes.

Outage kinds (an :class:`~spikedetect.sim.injection.Injection` and an
:class:`~spikedetect.sim.truth.OutageTruth` each, :mod:`~spikedetect.sim.outage_kinds`):
``widespread``, ``single_city``, ``night``, ``slow_ramp``, ``flapping``, ``sharp_spike``. Trap
kinds (normal-but-tricky traffic that must not alarm, a :class:`~spikedetect.sim.truth.TrapTruth`
each, :mod:`~spikedetect.sim.trap_kinds`): ``daily_peak``, ``one_window_burst``, ``new_region``,
``producer_gap``. Signal kinds (issue 18, not in ``suite``: the ``signals`` scenario,
:mod:`~spikedetect.sim.signal_kinds`): ``composition_shift`` and ``web_gap`` (each a
:class:`~spikedetect.sim.truth.SignalTruth` and a trap: no outage), and the traps
``share_drift`` and ``city_share_noise``. Where they go in time is
:mod:`~spikedetect.sim.suite`'s business: an entry gets its start time and a
:class:`~spikedetect.sim.context.Context`.

>>> from spikedetect.sim.geo import build_population
>>> from spikedetect.sim.traffic import DAY_MS, Traffic
>>> ctx = Context(Traffic(build_population()), seed=1, start_ms=0, end_ms=DAY_MS)
>>> CATALOGUE["single_city"](ctx, 4 * 3_600_000, "s-1").outages[0].must_detect
('IN/TG/Hyderabad', 'IN/TG')
"""

from __future__ import annotations

from collections.abc import Callable

from spikedetect.sim.context import Context
from spikedetect.sim.injection import Scenario
from spikedetect.sim.outage_kinds import (
    flapping,
    night,
    sharp_spike,
    single_city,
    slow_ramp,
    twin_cities,
    widespread,
)
from spikedetect.sim.signal_kinds import city_share_noise, composition_shift, share_drift, web_gap
from spikedetect.sim.trap_kinds import daily_peak, new_region, one_window_burst, producer_gap

__all__ = ["CATALOGUE"]

CATALOGUE: dict[str, Callable[[Context, int, str], Scenario]] = {
    f.__name__: f
    for f in (widespread, single_city, twin_cities, night, slow_ramp, flapping, sharp_spike,
              daily_peak, one_window_burst, new_region, producer_gap,
              composition_shift, web_gap, share_drift, city_share_noise)
}  # fmt: skip
