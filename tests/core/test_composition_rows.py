"""The composition detector's rows follow the scorer's keys: with the keyspace's version given
(``Keyspace.moves``: rows kept between windows) exactly as without it (looked up every window) - through keys
added, busy keys getting rows, and retired keys whose rows are refilled by moved ones."""

from __future__ import annotations

import numpy as np

from spikedetect.core.composition.detector import CompositionDetector
from spikedetect.core.detectors import SeasonalBaseline
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaf_window import LeafWindow

W = 60_000
DET = {"name": "seasonal", "params_hash": "x"}
CATS = ("feed", "login", "server_connection", "other")
CITIES = ["US/CA/LA", "US/NY/NYC", "DE/BY/München", "IN/MH/Mumbai", "BR/SP/SaoPaulo", "FR/IDF/Paris"]


def _window(rng: np.random.Generator, ks: Keyspace, i: int) -> tuple[dict, np.ndarray]:
    """A window's leaf counts over the cities alive at ``i``, rows made for them; every key's expectation."""
    leaf = {}
    for c, city in enumerate(CITIES):
        if (i // 40 + c) % 3 == 0:  # each city comes and goes
            continue
        ks.row("ig", city)
        for cat, n in zip(CATS, rng.multinomial(rng.poisson(12.0 + 5 * c), [0.4, 0.3, 0.1, 0.2]), strict=True):
            if n:
                leaf[(city, cat, "app")] = float(n)
    expected = rng.choice([0.5, 4.0, 20.0], size=ks.size)  # some keys busy, some not, changing
    return {"ig": leaf}, expected


def _retire(ks: Keyspace, i: int) -> None:
    """Every 25th window the keyspace forgets one city (and its state / country when left alone)."""
    if i % 25 == 24:
        city = CITIES[(i // 25) % len(CITIES)]
        if ("ig", city) in ks.index:
            ks.remove([ks.index[("ig", city)]])


def test_rows_kept_between_windows_match_rows_looked_up_every_window() -> None:
    rng = np.random.default_rng(3)
    ks = Keyspace(SeasonalBaseline(W))
    kept, looked_up = CompositionDetector(W, DET), CompositionDetector(W, DET)
    retired_rows = added_rows = 0
    for i in range(400):
        _retire(ks, i)
        per_service, expected = _window(rng, ks, i)
        blocked = rng.random(ks.size) < 0.05
        before = set(kept.row_keys)
        got = kept.close_window(i * W, LeafWindow(per_service), ks.keys, ks.index, expected, blocked, keys_moves=ks.moves)
        want = looked_up.close_window(i * W, LeafWindow(per_service), ks.keys, ks.index, expected, blocked)
        assert repr(got) == repr(want), i
        assert kept.row_keys == looked_up.row_keys, i
        assert set(kept.row_keys) <= set(ks.index), i  # a retired key never keeps a row
        for a, b in ((kept.shares, looked_up.shares), (kept.acc, looked_up.acc), (kept.learned, looked_up.learned)):
            assert a.tobytes() == b.tobytes(), i
        retired_rows += len(before - set(kept.row_keys))
        added_rows += len(set(kept.row_keys) - before)
    assert retired_rows > 0 and added_rows > len(CITIES)  # the case exercised both


def test_a_retired_key_loses_its_row_at_the_next_window() -> None:
    ks = Keyspace(SeasonalBaseline(W))
    det = CompositionDetector(W, DET)
    ks.row("ig", "US/CA/LA")
    leaf = {"ig": {("US/CA/LA", "feed", "app"): 9.0}}
    det.close_window(0, LeafWindow(leaf), ks.keys, ks.index, np.full(ks.size, 10.0), np.zeros(ks.size, dtype=bool),
                     keys_moves=ks.moves)
    assert ("ig", "US/CA/LA") in det.rows
    ks.remove([ks.index[("ig", "US/CA/LA")]])
    det.close_window(W, LeafWindow({}), ks.keys, ks.index, np.full(ks.size, 10.0), np.zeros(ks.size, dtype=bool),
                     keys_moves=ks.moves)
    assert ("ig", "US/CA/LA") not in det.rows and set(det.row_keys) == set(ks.keys)
