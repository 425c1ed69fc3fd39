"""What a catalogue entry (:mod:`~spikedetect.sim.scenarios`) needs to place itself: normal
traffic, the stream's span, the seed and knobs; and which keys an outage must be found on."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from spikedetect.core.regions import depth, region_keys
from spikedetect.sim.traffic import MINUTE_MS, Traffic

MIN_VISIBLE_PER_MIN = 10.0  # a key is "clearly visible" with this many extra reports/min ...
MIN_VISIBLE_RATIO = 2.0  # ... and at least this many times its expected count
MAX_EXTRA_KEYS = 4  # must_detect: the main key and at most this many more (the biggest excesses)


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
