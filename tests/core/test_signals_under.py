"""The keys a composition shift is not judged on (``Signals._under``): those with an open count
incident, their ancestors, and for ``COOLDOWN_MS`` after. The compiled lift
(``lift_to_ancestors``, ``_closing_tree.pxi``) and the one-lookup cooling pass against the pure
steps, window after window: the same keys under and the same cooling state (in the same order),
over keyspaces that grow and lose keys (rows moving), and both against the steps spelled plainly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core import DetectorConfig, signals
from spikedetect.core.detectors import SeasonalBaseline
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.signals import COOLDOWN_MS, Signals
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")
W = 60_000
REGIONS = ["*", "US", "US/CA", "US/CA/LA", "US/CA/SF", "US/NY", "DE", "DE/BY", "DE/BY/München", "FR/IDF"]
step = st.tuples(st.lists(st.tuples(st.sampled_from(["ig", "fb"]), st.sampled_from(REGIONS)), max_size=6),  # new keys
                 st.lists(st.integers(0, 40), max_size=3),  # keys retired (leaves only)
                 st.lists(st.integers(0, 40), max_size=5),  # rows with an open count incident
                 st.sampled_from([1, 1, 5, 60, 89, 90, 200]))  # windows to the next one


def _plain_under(sig: Signals, ws: int, ks: Keyspace, incident: np.ndarray) -> np.ndarray:
    """The steps spelled plainly: lift level by level, cool every key under, forget the cooled
    down and the retired, put the cooling keys under."""
    under = incident.copy()
    for _ in range(int(ks.depth[: ks.size].max(initial=0))):
        under[[p for p in ks.parent[: ks.size][under].tolist() if p >= 0]] = True
    for r in np.flatnonzero(under).tolist():
        sig.cooling[ks.keys[r]] = ws
    sig.cooling = {sk: at for sk, at in sig.cooling.items() if ws - at < COOLDOWN_MS and sk in ks.index}
    under[[ks.index[sk] for sk in sig.cooling]] = True
    return under


def _windows(kernel: Any, steps: list[tuple[Any, ...]], plain: bool = False) -> list[str]:
    saved, signals._kernel = signals._kernel, kernel
    try:
        sig, ks, ws, out = Signals(DetectorConfig()), Keyspace(SeasonalBaseline(W)), 0, []
        for new, retire, incident_rows, gap in steps:
            for svc, region in new:
                ks.row(svc, region)
            parents = set(ks.parent[: ks.size].tolist())
            ks.remove(sorted({r for r in retire if r < ks.size and r not in parents}))
            incident = np.zeros(ks.size, dtype=bool)
            incident[[r for r in incident_rows if r < ks.size]] = True
            under = _plain_under(sig, ws, ks, incident) if plain else sig._under(ws, ks, incident)
            out.append(repr((under.tolist(), list(sig.cooling.items()))))
            ws += gap * W
        return out
    finally:
        signals._kernel = saved


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(step, min_size=1, max_size=25))
def test_the_compiled_lift_and_cooling_are_the_pure_steps(steps: list[tuple[Any, ...]]) -> None:
    assert _windows(KERNEL, steps) == _windows(None, steps) == _windows(None, steps, plain=True)


@needs_kernel
def test_a_city_outage_lifts_its_country_and_the_world_and_cools_down() -> None:
    new = [("ig", r) for r in ("*", "US", "US/CA", "US/CA/LA", "DE")]
    city = 3  # ig US/CA/LA (rows: *, US, US/CA, US/CA/LA, DE)
    steps = [(new, [], [city], 1), ([], [], [], COOLDOWN_MS // W - 1), ([], [], [], 1), ([], [], [], 1)]
    got = _windows(KERNEL, steps)
    assert got == _windows(None, steps) == _windows(None, steps, plain=True)
    under = [eval(g)[0] for g in got]  # (repr of plain lists and tuples)
    assert under[0] == [True, True, True, True, False]  # the city, its state, country and world; not DE
    assert under[1] == under[0]  # cooling
    assert under[2] == [False] * 5  # COOLDOWN_MS after the last window under an incident
