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


def test_the_one_call_is_tried_only_while_the_rows_are_kept_for_every_key() -> None:
    """``_close_compiled`` leaves a window to the steps (None, before looking at the frame) unless
    the key rows were kept (:meth:`_rows_kept`: the same index and moves, given, no row changed
    since) for every key; ``_key_rows`` marks keys added since rowless instead of looking up again."""
    ks = Keyspace(SeasonalBaseline(W))
    det = CompositionDetector(W, DET)
    ks.row("ig", "US/CA/LA")
    det.close_window(0, LeafWindow({"ig": {("US/CA/LA", "feed", "app"): 9.0}}), ks.keys, ks.index,
                     np.full(ks.size, 10.0), np.zeros(ks.size, dtype=bool), keys_moves=ks.moves)
    n, moves = ks.size, ks.moves
    tried: list[object] = []
    det.leaf_paths.fresh = lambda frame: bool(tried.append(frame))  # type: ignore[method-assign]

    def tries(n_keys: int, index: object = ks.index, keys_moves: int | None = moves) -> bool:
        before = len(tried)
        assert det._close_compiled(0, "frame", n_keys, index, np.full(n_keys, 10.0),  # type: ignore[arg-type]
                                   np.zeros(n_keys, dtype=bool), keys_moves) is None
        return len(tried) > before

    assert det._rows_kept(ks.index, moves) and tries(n)
    assert not det._rows_kept(ks.index, None) and not tries(n, keys_moves=None)
    assert not det._rows_kept(dict(ks.index), moves) and not tries(n, index=dict(ks.index))
    assert not det._rows_kept(ks.index, moves + 1) and not tries(n, keys_moves=moves + 1)
    ks.row("ig", "US/NY/NYC")  # a key added: the rows are kept, but not for it yet
    assert ks.moves == moves and det._rows_kept(ks.index, moves) and not tries(ks.size)
    key_rows, no_row = det._key_rows(ks.index, ks.size, moves)
    assert key_rows.tolist() == [ks.index[k] for k in det.row_keys]
    assert no_row.tolist() == [k not in det.rows for k in ks.keys] and no_row[n:].all() and not no_row[:n].all()
    assert det._key_rows_cache[1] is no_row and tries(ks.size)  # marked rowless, the one call tried
    det._rows_changed(None)
    assert not det._rows_kept(ks.index, moves) and not tries(ks.size)
