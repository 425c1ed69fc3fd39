"""The usual composition window in one compiled call (``composition_close``,
spikedetect/kernel/_closing_comp_close.pxi, through ``CompositionDetector._close_compiled``)
against the same windows step by step (``_track``, ``LeafWindow.share_counts`` over the frame,
``blocked[key_rows]``, ``FusedWindow.run``) and against pure Python (the dict walks, numpy): the
same events (``repr``) and the same bank (rows, columns, shares, sums, reports learned, hits) by
bytes, window after window, while cities come and go (rows added when keys become busy, the leaf
table's paths found again), keys are blocked, retire, and mixes shift until members open, step
and close. The one call must also have run most windows, and have left some to the steps
(a busy key without a row, a path or column not known yet).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from tests.core.kernels import using_kernel

from spikedetect.core import expand, leaf_window, leaves, negbin, window_scores
from spikedetect.core.composition import detector, fused, leaf_paths, shares
from spikedetect.core.composition.detector import CompositionDetector
from spikedetect.core.detectors import SeasonalBaseline
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.leaves import LeafTable
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")
MODULES = (window_scores, shares, leaves, leaf_paths, expand, leaf_window, detector, fused, negbin)
W = 60_000
DET = {"name": "seasonal", "params_hash": "x"}
CATS = ("feed", "login", "server_connection", "other", "media")
CITIES = ["US/CA/LA", "US/NY/NYC", "DE/BY/München", "IN/MH/Mumbai", "BR/SP/SaoPaulo", "FR/IDF/Paris"]


class World:
    """A keyspace, a leaf table and a composition detector, closed one way: ``mode`` "one call",
    "steps" (compiled, the one call never tried) or "pure"."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.ks = Keyspace(SeasonalBaseline(W))
        self.table = LeafTable()
        self.det = CompositionDetector(W, DET)
        self.calls: Counter[Any] = Counter()
        if mode == "steps":
            self.det._close_compiled = lambda *a: None  # type: ignore[method-assign]
        elif mode == "one call":
            close = self.det._fused.close

            def counted(*a: Any) -> int:
                got = close(*a)
                self.calls[min(got, 1)] += 1
                return got
            self.det._fused.close = counted  # type: ignore[method-assign]

    def close(self, ws: int, per_service: dict[str, Any], expected: np.ndarray, blocked: np.ndarray) -> list[Any]:
        kernel = None if self.mode == "pure" else KERNEL
        with using_kernel(MODULES, kernel), np.errstate(all="ignore"):
            window = LeafWindow(per_service) if kernel is None else LeafWindow.of(self.table, self.ks, per_service)
            window_scores.observe(self.ks, window, ws)
            n = self.ks.size
            events = self.det.close_window(ws, window, self.ks.keys, self.ks.index, expected[:n], blocked[:n],
                                           keys_moves=self.ks.moves)
        d = self.det
        self.calls["members"] = max(self.calls["members"], len(d.members))
        return [repr(events), list(d.row_keys), list(d.cats.items()), d.shares.tobytes(), d.acc.tobytes(),
                d.learned.tobytes(), d.hits.tobytes(), repr(sorted(d.members.items()))]


def _window(rng: np.random.Generator, i: int, shift: bool) -> dict[str, Any]:
    leaf: dict[tuple[str, str, str], int] = {}
    for c, city in enumerate(CITIES):
        if (i // 60 + c) % 4 == 0:  # each city comes and goes
            continue
        mix = [0.4, 0.3, 0.1, 0.2, 0.0]
        if shift and c % 2 == 0:  # a shifted mix: a category rises (members open, step, close)
            mix = [0.15, 0.15, 0.5, 0.1, 0.1]
        for cat, k in zip(CATS, rng.multinomial(rng.poisson(40.0 + 15 * c), mix), strict=True):
            if k:
                leaf[(city, cat, "app" if k % 3 else "web")] = int(k)
    return {"ig": leaf, "fb": {k: v for k, v in leaf.items() if k[0].startswith("US")}}


def _run(seed: int) -> World:
    rng = np.random.default_rng(seed)
    worlds = [World("one call"), World("steps"), World("pure")]
    for i in range(700):
        if i % 90 == 89:  # a city retires (its state and country when left alone)
            ks = worlds[0].ks
            city = ("ig", CITIES[(i // 90) % len(CITIES)])
            if city in ks.index:
                for w in worlds:
                    w.ks.remove([w.ks.index[city]])
        per_service = _window(rng, i, shift=(i // 100) % 3 == 2)
        expected = rng.choice([0.5, 4.0, 20.0, 80.0], size=200)
        blocked = rng.random(200) < (0.3 if i % 50 < 5 else 0.02)
        got = [w.close(i * W, per_service, expected, blocked) for w in worlds]
        assert got[0] == got[2], (i, "one call vs pure Python")
        assert got[1] == got[2], (i, "steps vs pure Python")
    return worlds[0]


@needs_kernel
def test_one_call_closes_windows_as_the_steps_and_pure_python() -> None:
    calls: Counter[Any] = Counter()
    for seed in (1, 2, 3):
        calls += _run(seed).calls
    assert calls[0] > 1000 and calls[1] > 0, calls  # the one call closed most windows, some opening members
    assert calls[-4] > 0 and calls[-3] > 0 and calls["members"] > 2, calls  # and left some to the steps
