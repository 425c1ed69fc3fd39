"""Seeded, deterministic streams of user problem reports, with ground truth.

Normal traffic (:mod:`~spikedetect.sim.traffic`) is drawn per minute and per
(service, leaf) cell as gamma-Poisson counts: a shared per-service factor and a per-cell
factor make the counts overdispersed. A scenario (:mod:`~spikedetect.sim.suite`)
adds outages and traps. Each report gets a uniform time inside its minute, an arrival
delay (exponential, mean 1.5 s, capped at ``max_lateness_ms``) and, for about 1%, an
exact re-send (same ``event_id``, ``ts`` and fields) a few seconds later. Lines come out
in arrival order, so event times are slightly out of order: no line's ``ts`` is more
than ``max_lateness_ms`` older than one printed before it.

Every component (normal traffic, each injection) draws from its own random stream, so
the normal reports of a scenario are exactly those of ``scenario="none"``.

>>> cfg = SimulationConfig(days=1 / 24, scale=0.05, scenario="none")
>>> lines = list(generate(cfg))
>>> lines == list(generate(cfg)) and len(lines) > 100
True
>>> sorted(orjson.loads(lines[0]))
['category', 'event_id', 'region', 'service', 'source', 'ts']
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np
import orjson

from spikedetect.sim.config import Batch, SimulationConfig, SimulationStats
from spikedetect.sim.context import Context
from spikedetect.sim.geo import build_population
from spikedetect.sim.injection import CATEGORIES, NORMAL_MIX, SOURCES, Injection, Mix, Relabel, Scenario
from spikedetect.sim.suite import build_scenario
from spikedetect.sim.traffic import MINUTE_MS, Traffic
from spikedetect.sim.truth import GroundTruth

LEAF_NOISE_SHAPE = 8.0  # gamma shape of each cell's per-minute rate factor (cv ~35%)
SERVICE_NOISE_SHAPE = 150.0  # gamma shape of a service's shared per-minute factor (cv ~8%)
OUTAGE_NOISE_SHAPE = 20.0  # gamma shape of an injection's per-minute, per-leaf factor
LATENESS_MEAN_MS = 1_500
DUPLICATE_DELAY_MS = (200, 8_000)
_LINE = b'{"ts":"%b","service":%b,"region":%b,"category":%b,"source":%b,"event_id":"%b"}'

_EVENT = np.dtype(
    [("ts", "i8"), ("arrival", "i8"), ("eid", "u8"), ("region", "i4"), ("service", "i2"),
     ("category", "i1"), ("source", "i1"), ("dup", "?")]
)  # fmt: skip


class Simulation:
    """One simulated stream: its :attr:`truth`, then its lines via :meth:`lines` or :meth:`batches`."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = cfg = config or SimulationConfig()
        self.traffic = Traffic(build_population(), scale=cfg.scale)
        ctx = Context(self.traffic, cfg.seed, cfg.start_ms, cfg.end_ms, cfg.peak_scale)
        self.scenario: Scenario = build_scenario(cfg.scenario, ctx)
        self.services = self.traffic.services
        self.regions: list[str] = [leaf.region for leaf in self.traffic.population.leaves]
        for comp in self.scenario.components:
            self.regions += [r for r in comp.regions if r not in self.regions]
        self._region_idx = {r: i for i, r in enumerate(self.regions)}
        self._region_json = [orjson.dumps(r) for r in self.regions]
        self._service_json = [orjson.dumps(x) for x in self.services]
        self._category_json = [orjson.dumps(x) for x in CATEGORIES]
        self._source_json = [orjson.dumps(x) for x in SOURCES]
        tags = [zlib.crc32(c.id.encode()) | 1 for c in self.scenario.components]  # 0 is normal traffic
        if len(set(tags)) != len(tags):
            raise ValueError("component ids collide; rename one")
        self._tags = tags
        self._seed_key = int(_splitmix64(np.array([cfg.seed], dtype=np.uint64))[0])
        self.truth = GroundTruth(
            seed=cfg.seed,
            start_ms=cfg.start_ms,
            end_ms=cfg.end_ms,
            window_ms=MINUTE_MS,
            scenario=cfg.scenario,
            scale=cfg.scale,
            peak_scale=cfg.peak_scale,
            services=self.services,
            outages=tuple(self.scenario.outages),
            traps=tuple(self.scenario.traps),
            signals=tuple(self.scenario.signals),
        )
        self.stats = SimulationStats()

    def lines(self) -> Iterator[bytes]:
        """Every report line (JSON, no newline) in emission order."""
        for batch in self.batches():
            yield from batch.lines

    def batches(self) -> Iterator[Batch]:
        """The stream in blocks of ``chunk_minutes``; restarts from scratch on each call."""
        cfg = self.config
        self.stats = SimulationStats(by_service=dict.fromkeys(self.services, 0))
        rngs = [np.random.default_rng([cfg.seed, tag, 2]) for tag in (0, *self._tags)]
        counters = [0] * len(rngs)
        carry = np.empty(0, dtype=_EVENT)
        for c0 in range(0, cfg.minutes, cfg.chunk_minutes):
            c1 = min(c0 + cfg.chunk_minutes, cfg.minutes)
            minute_ms = cfg.start_ms + np.arange(c0, c1, dtype=np.int64) * MINUTE_MS
            parts = [carry]
            for k in range(len(rngs)):
                events, drawn = self._component_events(k, rngs[k], minute_ms, counters[k])
                counters[k] += drawn
                if k == 0:
                    for rel in self.scenario.relabels:
                        self._relabel(events, rel, minute_ms)
                parts.append(self._drop_gaps(events))
            events = np.concatenate(parts)
            events = events[np.argsort(events["arrival"], kind="stable")]
            until = cfg.start_ms + c1 * MINUTE_MS
            cut = len(events) if c1 == cfg.minutes else int(np.searchsorted(events["arrival"], until))
            carry = events[cut:]
            yield self._serialise(events[:cut], until)
        for k, comp in enumerate(self.scenario.components, start=1):
            self.stats.injected[comp.id] = counters[k]

    def _component_events(
        self, k: int, rng: np.random.Generator, minute_ms: np.ndarray, counter: int
    ) -> tuple[np.ndarray, int]:
        """Events of component k (0: normal traffic) for these minutes, re-sends included, and how
        many reports were drawn. What a component draws never depends on the other components."""
        n_svc = len(self.services)
        if k == 0:
            expected = self.traffic.expected(minute_ms)
            svc_factor = rng.gamma(SERVICE_NOISE_SHAPE, 1 / SERVICE_NOISE_SHAPE, (len(minute_ms), n_svc))
            cell_factor = rng.gamma(LEAF_NOISE_SHAPE, 1 / LEAF_NOISE_SHAPE, expected.shape)
            counts = rng.poisson(expected * svc_factor[:, self.traffic.cell_service] * cell_factor)
            svc_col, region_col, mix = self.traffic.cell_service, self.traffic.cell_leaf, NORMAL_MIX
        else:
            comp = self.scenario.components[k - 1]
            rates = comp.rates(minute_ms)
            if not rates.any():
                return np.empty(0, dtype=_EVENT), 0
            if comp.exact:
                counts = np.rint(rates).astype(np.int64)
            else:
                shape = OUTAGE_NOISE_SHAPE if isinstance(comp, Injection) else LEAF_NOISE_SHAPE
                counts = rng.poisson(rates * rng.gamma(shape, 1 / shape, rates.shape))
            svc_col = np.full(len(comp.regions), self.services.index(comp.service))
            region_col = np.array([self._region_idx[r] for r in comp.regions])
            mix = comp.mix
        events = self._expand(rng, counts, minute_ms, svc_col, region_col, mix, k, counter)
        return events, int(counts.sum())

    def _drop_gaps(self, events: np.ndarray) -> np.ndarray:
        """Remove what the producer did not send (after drawing, so the random streams stay aligned)."""
        for gap in self.scenario.gaps:
            svc = self.services.index(gap.service)
            sent = (events["service"] != svc) | (events["ts"] < gap.start_ms) | (events["ts"] >= gap.end_ms)
            if gap.source is not None:
                sent |= events["source"] != SOURCES.index(gap.source)
            events = events[sent]
        return events

    def _relabel(self, events: np.ndarray, rel: Relabel, minute_ms: np.ndarray) -> None:
        """Change the category of some normal reports in place (the totals stay as drawn). Each
        report's chance comes from a hash of its event id, so a re-send keeps its original's."""
        n = len(events)
        salt = np.uint64(zlib.crc32(rel.id.encode()))
        u = (_splitmix64(events["eid"] ^ salt) >> np.uint64(11)).astype(np.float64) / float(2**53)
        blocks = np.arange(int(minute_ms[0]) // rel.block_ms, int(minute_ms[-1]) // rel.block_ms + 1)
        mixes = {int(b): np.random.default_rng([self.config.seed, zlib.crc32(rel.id.encode()), 4, int(b)]).dirichlet(
            np.asarray(NORMAL_MIX.categories) * rel.concentration) for b in blocks} if rel.category < 0 else {}
        if n == 0:
            return
        svc = self.services.index(rel.service)
        if rel.under == "*":
            where = np.ones(len(self.regions), dtype=bool)
        else:
            where = np.array([r == rel.under or r.startswith(rel.under + "/") for r in self.regions])
        prob = np.interp(events["ts"], np.asarray(rel.knots_ms, dtype=np.int64), np.asarray(rel.probs), left=0.0, right=0.0)
        hit = (events["service"] == svc) & where[events["region"]] & (u < prob)
        if rel.category >= 0:
            events["category"][hit] = rel.category
            return
        for i in np.flatnonzero(hit).tolist():
            mix = mixes[int(events["ts"][i]) // rel.block_ms]
            pick = int(np.searchsorted(np.cumsum(mix), u[i] / max(prob[i], 1e-12) * mix.sum()))
            events["category"][i] = min(pick, len(CATEGORIES) - 1)

    def _expand(
        self, rng: np.random.Generator, counts: np.ndarray, minute_ms: np.ndarray, svc_col: np.ndarray,
        region_col: np.ndarray, mix: Mix, k: int, counter: int,
    ) -> np.ndarray:  # fmt: skip
        cfg = self.config
        flat = np.repeat(np.arange(counts.size), counts.ravel())
        n = len(flat)
        ev = np.empty(n, dtype=_EVENT)
        row, col = np.divmod(flat, counts.shape[1])
        ev["ts"] = minute_ms[row] + rng.integers(0, MINUTE_MS, n)
        ev["service"] = svc_col[col]
        ev["region"] = region_col[col]
        ev["category"] = rng.choice(len(CATEGORIES), n, p=mix.categories)
        ev["source"] = rng.choice(len(SOURCES), n, p=mix.sources)
        late = np.minimum(rng.exponential(LATENESS_MEAN_MS, n), cfg.max_lateness_ms)
        ev["arrival"] = ev["ts"] + late.astype(np.int64)
        tag = 0 if k == 0 else self._tags[k - 1]
        raw = (np.uint64(tag) << np.uint64(32)) | (np.uint64(counter) + np.arange(n, dtype=np.uint64))
        ev["eid"] = _splitmix64(raw ^ np.uint64(self._seed_key))
        ev["dup"] = False
        dups = ev[rng.random(n) < cfg.duplicate_rate]
        delay = rng.integers(*DUPLICATE_DELAY_MS, len(dups))
        dups["arrival"] = np.minimum(dups["arrival"] + delay, dups["ts"] + cfg.max_lateness_ms)
        dups["dup"] = True
        return np.concatenate([ev, dups])

    def _serialise(self, ev: np.ndarray, until_ms: int) -> Batch:
        """JSON lines, byte for byte what ``orjson.dumps`` gives for the event dict, built from
        orjson-encoded field values (whole-dict dumps would keep a 4 KiB buffer per line)."""
        ts = np.datetime_as_string(ev["ts"].astype("datetime64[ms]"), unit="ms", timezone="UTC")
        hexed = ev["eid"].astype(">u8").tobytes().hex().encode()
        ids = [hexed[i : i + 16] for i in range(0, len(hexed), 16)]
        svc_json, region_json = self._service_json, self._region_json
        cat_json, src_json = self._category_json, self._source_json
        region_idx = ev["region"].tolist()
        lines = [
            _LINE % (t, svc_json[s], region_json[r], cat_json[c], src_json[o], i)
            for t, s, r, c, o, i in zip(
                ts.astype("S24").tolist(), ev["service"].tolist(), region_idx, ev["category"].tolist(),
                ev["source"].tolist(), ids, strict=True,
            )
        ]  # fmt: skip
        regions = [self.regions[r] for r in region_idx]
        svc_names = self.services
        self.stats.events += len(lines)
        self.stats.duplicates += int(np.count_nonzero(ev["dup"]))
        for s, count in zip(*np.unique(ev["service"], return_counts=True), strict=True):
            self.stats.by_service[svc_names[s]] += int(count)
        return Batch(lines, regions, until_ms)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A bijection of uint64 that looks random: distinct inputs give distinct event ids."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def generate(config: SimulationConfig | None = None) -> Iterator[bytes]:
    """The report lines (JSON bytes, no newline) of a simulated stream, in emission order."""
    return Simulation(config).lines()


def ground_truth(config: SimulationConfig | None = None) -> GroundTruth:
    """The ground truth of the stream ``config`` generates (without generating it)."""
    return Simulation(config).truth


__all__ = ["Batch", "Simulation", "SimulationConfig", "SimulationStats", "generate", "ground_truth"]
