"""Normal report volume: services, daily and weekly cycles in local time, expected rates.

The expected rate of a (service, leaf) cell in a minute is the service's mean rate times
the leaf's share times a seasonal factor of the leaf's *local* time: low around 4am,
peak around 20-21h (peak/trough 5), weekends a little higher. The factor averages 1
over a week, so ``SERVICE_RATES`` are mean reports per minute.

>>> from spikedetect.sim.geo import build_population
>>> t = Traffic(build_population())
>>> 60 <= t.peak_global("instagram", DEFAULT_START_MS) <= 150
True
>>> daily_factor(np.array([4 * 60, 20 * 60 + 30])).round(2).tolist()
[0.32, 1.59]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from spikedetect.sim.geo import Population

MINUTE_MS = 60_000
DAY_MS = 86_400_000
DEFAULT_START_MS = 1_795_478_400_000  # 2026-11-24T00:00:00Z, a Tuesday

# Mean global reports per minute of each service at scale 1 (instagram is the largest).
SERVICE_RATES: dict[str, float] = {"instagram": 90.0, "whatsapp": 55.0, "facebook": 60.0, "threads": 14.0}

# Relative level at each local hour h:00 (linear in between): trough at 4am, peak 20-21h.
_HOURLY = np.array(
    [0.55, 0.40, 0.30, 0.23, 0.20, 0.22, 0.30, 0.42, 0.55, 0.63, 0.68, 0.72,
     0.76, 0.75, 0.73, 0.73, 0.76, 0.80, 0.86, 0.93, 1.00, 1.00, 0.90, 0.72]
)  # fmt: skip
_HOURLY = _HOURLY / _HOURLY.mean()
# Monday .. Sunday (local), mean 1: weekends a bit higher.
_WEEKLY = np.array([0.97, 0.96, 0.96, 0.97, 1.00, 1.07, 1.07])
_WEEKLY = _WEEKLY / _WEEKLY.mean()
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def daily_factor(local_minute_of_day: np.ndarray) -> np.ndarray:
    """The daily cycle at local minutes since midnight (mean 1 over a day)."""
    knots = np.arange(25) * 60
    return np.asarray(np.interp(np.asarray(local_minute_of_day) % 1440, knots, np.append(_HOURLY, _HOURLY[0])))


def seasonal_factor(utc_ms: np.ndarray, offsets_min: np.ndarray) -> np.ndarray:
    """Daily x weekly factor, shape ``(len(utc_ms), len(offsets_min))``, in each offset's local time."""
    local_min = np.asarray(utc_ms, dtype=np.int64)[:, None] // MINUTE_MS + np.asarray(offsets_min)[None, :]
    day = local_min // 1440
    return np.asarray(daily_factor(local_min % 1440) * _WEEKLY[(day + _EPOCH_WEEKDAY) % 7])


class Traffic:
    """Expected normal reports per minute for every (service, leaf) cell."""

    def __init__(
        self,
        population: Population,
        service_rates: Mapping[str, float] | None = None,
        scale: float = 1.0,
    ) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.population = population
        self.services: tuple[str, ...] = tuple(service_rates or SERVICE_RATES)
        rates = service_rates or SERVICE_RATES
        self.service_rates = dict(rates)
        self.scale = scale
        n_leaves = len(population.leaves)
        # cell c = service s * n_leaves + leaf l
        self.cell_service = np.repeat(np.arange(len(self.services)), n_leaves)
        self.cell_leaf = np.tile(np.arange(n_leaves), len(self.services))
        self.cell_mean = np.concatenate([population.shares(s) * rates[s] * scale for s in self.services])
        self._offsets = population.offsets_min()
        self._unique_offsets, self._offset_idx = np.unique(self._offsets, return_inverse=True)

    @property
    def n_cells(self) -> int:
        return len(self.cell_mean)

    def leaf_factor(self, minute_ms: np.ndarray) -> np.ndarray:
        """Seasonal factor per minute and leaf, shape ``(len(minute_ms), n_leaves)``."""
        per_offset = seasonal_factor(np.asarray(minute_ms) + MINUTE_MS // 2, self._unique_offsets)
        return per_offset[:, self._offset_idx]

    def expected(self, minute_ms: np.ndarray) -> np.ndarray:
        """Expected count per minute and cell, shape ``(len(minute_ms), n_cells)``."""
        factor = self.leaf_factor(minute_ms)
        return np.asarray(factor[:, self.cell_leaf] * self.cell_mean[None, :])

    def expected_leaves(self, service: str, leaves: list[int], minute_ms: np.ndarray) -> np.ndarray:
        """Expected count per minute of the given leaves of one service, ``(len(minute_ms), len(leaves))``."""
        s = self.services.index(service)
        n = len(self.population.leaves)
        mean = self.cell_mean[s * n + np.asarray(leaves, dtype=np.int64)]
        return np.asarray(self.leaf_factor(minute_ms)[:, leaves] * mean[None, :])

    def expected_key(self, service: str, key: str, minute_ms: np.ndarray | int) -> np.ndarray:
        """Expected count per minute of a region key (``"*"``, a country, state or city)."""
        minutes = np.atleast_1d(np.asarray(minute_ms, dtype=np.int64))
        leaves = self.population.leaves_under(key)
        if not leaves:
            return np.zeros(len(minutes))
        return np.asarray(self.expected_leaves(service, leaves, minutes).sum(axis=1))

    def peak_minute(self, service: str, key: str, day_start_ms: int) -> int:
        """The minute (epoch ms) of the day starting at ``day_start_ms`` where ``key`` peaks."""
        minutes = day_start_ms + np.arange(1440, dtype=np.int64) * MINUTE_MS
        return int(minutes[int(np.argmax(self.expected_key(service, key, minutes)))])

    def peak_global(self, service: str, day_start_ms: int) -> float:
        """The highest expected global count per minute of a service over one day."""
        minutes = day_start_ms + np.arange(1440, dtype=np.int64) * MINUTE_MS
        return float(self.expected_key(service, "*", minutes).max())
