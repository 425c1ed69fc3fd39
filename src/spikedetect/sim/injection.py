"""What a scenario adds to normal traffic: injected reports, new regions and producer gaps.

A :class:`Scenario` holds them with the ground truth they make.

An :class:`Injection` is extra reports on some leaves of one service: per leaf, a peak
rate (reports per minute) times a piecewise-linear envelope over event time, with its
own category and source mix. A minute's expected extra count is the rate at the
minute's midpoint.

>>> inj = Injection.shaped("x", "instagram", ("US/CA/Los Angeles",), [100.0], [0, 60_000, 120_000], [0, 1, 1],
...                        OUTAGE_MIXES["widespread"])
>>> inj.rates(np.array([0, 60_000, 120_000])).ravel().tolist()
[50.0, 100.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from spikedetect.sim.geo import Leaf
from spikedetect.sim.traffic import MINUTE_MS, seasonal_factor
from spikedetect.sim.truth import OutageTruth, SignalTruth, TrapTruth

CATEGORIES = ("direct_messages", "feed", "login", "server_connection", "profile", "notifications", "other")
SOURCES = ("app", "web", "unknown")


@dataclass(frozen=True)
class Mix:
    """Probabilities of each category (in :data:`CATEGORIES` order) and source (:data:`SOURCES`)."""

    categories: tuple[float, ...]
    sources: tuple[float, ...]

    @classmethod
    def of(cls, categories: dict[str, float], sources: dict[str, float]) -> Mix:
        cat = np.array([categories.get(c, 0.0) for c in CATEGORIES])
        src = np.array([sources.get(s, 0.0) for s in SOURCES])
        return cls(tuple((cat / cat.sum()).tolist()), tuple((src / src.sum()).tolist()))


NORMAL_MIX = Mix.of(
    {"direct_messages": 20, "feed": 25, "login": 15, "server_connection": 4, "profile": 10,
     "notifications": 10, "other": 16},
    {"app": 60, "web": 35, "unknown": 5},
)  # fmt: skip

OUTAGE_MIXES: dict[str, Mix] = {
    # the seed write-up: DMs fail, ~18% server connection, ~75% from the app
    "widespread": Mix.of(
        {"direct_messages": 56, "server_connection": 18, "feed": 12, "profile": 6, "login": 3,
         "notifications": 3, "other": 2},
        {"app": 75, "web": 21, "unknown": 4},
    ),
    "single_city": Mix.of(  # a regional network problem
        {"server_connection": 40, "feed": 25, "direct_messages": 15, "login": 10, "other": 10},
        {"app": 65, "web": 30, "unknown": 5},
    ),
    "night": Mix.of(  # logins fail
        {"login": 55, "server_connection": 15, "feed": 10, "direct_messages": 10, "other": 10},
        {"app": 55, "web": 40, "unknown": 5},
    ),
    "slow_ramp": Mix.of(  # a degrading feed backend
        {"feed": 50, "profile": 15, "server_connection": 10, "direct_messages": 10, "other": 15},
        {"app": 60, "web": 35, "unknown": 5},
    ),
    "flapping": Mix.of(
        {"server_connection": 35, "direct_messages": 30, "feed": 15, "notifications": 10, "other": 10},
        {"app": 70, "web": 25, "unknown": 5},
    ),
    "sharp_spike": Mix.of(
        {"login": 30, "feed": 30, "direct_messages": 20, "server_connection": 10, "other": 10},
        {"app": 70, "web": 25, "unknown": 5},
    ),
}  # fmt: skip


@dataclass(frozen=True, eq=False)
class Injection:
    """Extra reports: ``rates[m, i] = peak_per_min[i] * envelope_i(minute m's midpoint)``.

    ``exact`` injections add exactly the rounded rate (no Poisson noise): used for the
    one-window burst, whose size must not be left to chance.
    """

    id: str
    service: str
    regions: tuple[str, ...]
    peak_per_min: np.ndarray  # (n,)
    knots_ms: np.ndarray  # (n, k), increasing along k
    levels: np.ndarray  # (n, k), envelope values in [0, 1]
    mix: Mix
    exact: bool = False

    @classmethod
    def shaped(
        cls,
        id: str,
        service: str,
        regions: Sequence[str],
        peak_per_min: Sequence[float] | np.ndarray,
        knots_ms: Sequence[int] | np.ndarray,
        levels: Sequence[float] | np.ndarray,
        mix: Mix,
        exact: bool = False,
    ) -> Injection:
        """Build one; 1-d ``knots_ms``/``levels`` are shared by every region."""
        n = len(regions)
        knots = np.broadcast_to(np.asarray(knots_ms, dtype=np.int64), (n, np.shape(knots_ms)[-1])).copy()
        lv = np.broadcast_to(np.asarray(levels, dtype=float), knots.shape).copy()
        if np.any(np.diff(knots, axis=1) <= 0):
            raise ValueError(f"{id}: envelope knots must increase")
        return cls(id, service, tuple(regions), np.asarray(peak_per_min, dtype=float), knots, lv, mix, exact)

    @property
    def start_ms(self) -> int:
        return int(self.knots_ms[:, 0].min())

    @property
    def end_ms(self) -> int:
        return int(self.knots_ms[:, -1].max())

    def rates(self, minute_ms: np.ndarray) -> np.ndarray:
        """Expected extra reports per minute, shape ``(len(minute_ms), n_regions)``."""
        mid = np.asarray(minute_ms, dtype=np.int64) + MINUTE_MS // 2
        out = np.zeros((len(mid), len(self.regions)))
        if len(mid) == 0 or mid[-1] < self.start_ms or mid[0] > self.end_ms:
            return out
        for i in range(len(self.regions)):
            out[:, i] = np.interp(mid, self.knots_ms[i], self.levels[i], left=0.0, right=0.0)
        return np.asarray(out * self.peak_per_min[None, :])


@dataclass(frozen=True, eq=False)
class NewRegion:
    """Leaves that start reporting at ``since_ms`` at the normal, seasonal level for their size."""

    id: str
    service: str
    leaves: tuple[Leaf, ...]
    mean_per_min: np.ndarray  # (n,) mean reports per minute of each leaf once active
    since_ms: int
    mix: Mix = NORMAL_MIX
    exact: bool = False

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(leaf.region for leaf in self.leaves)

    def rates(self, minute_ms: np.ndarray) -> np.ndarray:
        minutes = np.asarray(minute_ms, dtype=np.int64)
        offsets = np.array([leaf.utc_offset_min for leaf in self.leaves])
        out = seasonal_factor(minutes + MINUTE_MS // 2, offsets) * self.mean_per_min[None, :]
        out[minutes < self.since_ms] = 0.0
        return np.asarray(out)


@dataclass(frozen=True)
class Gap:
    """The producer of one service (or only its reports of one ``source``) sends nothing in
    ``[start_ms, end_ms)``."""

    service: str
    start_ms: int
    end_ms: int
    source: str | None = None


@dataclass(frozen=True, eq=False)
class Relabel:
    """The normal reports of ``service`` under region ``under`` (``"*"``: all) get category
    ``CATEGORIES[category]`` with probability ``prob(ts)`` (piecewise linear over ``knots_ms``),
    so the total stays exactly normal and only the mix moves. With ``category`` -1 each block of
    ``block_ms`` draws its own mix (Dirichlet around the normal one, ``concentration``) and a
    relabelled report takes a category from it: share noise."""

    id: str
    service: str
    under: str
    knots_ms: tuple[int, ...]
    probs: tuple[float, ...]
    category: int = -1
    block_ms: int = 600_000
    concentration: float = 4.0

    @property
    def start_ms(self) -> int:
        return self.knots_ms[0]

    @property
    def end_ms(self) -> int:
        return self.knots_ms[-1]


Component = Injection | NewRegion


@dataclass
class Scenario:
    """Components to generate, producer gaps, and the ground truth they make."""

    components: list[Component] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    outages: list[OutageTruth] = field(default_factory=list)
    traps: list[TrapTruth] = field(default_factory=list)
    relabels: list[Relabel] = field(default_factory=list)
    signals: list[SignalTruth] = field(default_factory=list)

    def extend(self, other: Scenario) -> None:
        self.components += other.components
        self.gaps += other.gaps
        self.outages += other.outages
        self.traps += other.traps
        self.relabels += other.relabels
        self.signals += other.signals
