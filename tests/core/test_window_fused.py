"""The fused seasonal closing path (spikedetect/core/window_fused.py, kernel/_closing_fused.pxi)
against the per-step path it replaces, by bytes: every array of each scored window and every
column, ``closed_ws`` included, after each window learned - on random states with NaN, inf and
non-whole calibration counts (so each step that declines hands over to numpy), open and closed
incidents, rows already done, muted rows, ring laps, and tables that grow, lose rows or have a
column replaced between windows (the kept views must follow: a stale one would write into the
old arrays and differ here).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core import evidence, negbin, window_fused, window_scores
from spikedetect.core.config import DetectorConfig
from spikedetect.core.detectors import seasonal
from spikedetect.core.keyspace import NEVER
from spikedetect.core.scorer import Scorer
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")

KEYS = ["*", "US", "US/CA", "US/CA/LA", "US/NY", "DE", "DE/BY", "DE/BY/Munich", "FR", "FR/IDF", "FR/IDF/Paris",
        "US/TX", "US/TX/Austin", "US/NY/NYC", "IT", "IT/LAZ"]
MORE = [f"BR/S{i}" for i in range(12 * 11)]  # enough for every op a "grow" (ops has at most 12, each up to 11 keys)
EDGE = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300]
MIN = 60_000


def _fill(rng: np.random.Generator, a: np.ndarray, name: str, edge: float) -> None:
    """Random values for column ``name`` (in place), a share ``edge`` of them from :data:`EDGE`."""
    if name in ("prof_w", "dow_w", "level_n", "share_w"):
        v = rng.choice([0.0, 0.5, 1.0, 5.0, 10.0, 20.0, 40.0, 720.0, 1e6], size=a.shape)
    elif name == "cal_n":
        v = rng.choice([0.0, 1.0, 7.0, 79.0, 80.0, 500.0], size=a.shape)
    elif name in ("cal_q", "cal_q3"):
        v = 0.5 + rng.random(a.shape) * 5.0
    elif name in ("phi",):
        v = 1.0 + rng.random(a.shape) * 4.0
    elif name in ("alpha", "share"):
        v = rng.random(a.shape) * 0.5
    else:
        v = rng.random(a.shape) * rng.choice([1.0, 10.0, 1000.0])
    pick = rng.random(a.shape) < edge
    v[pick] = rng.choice(EDGE, size=int(pick.sum()))
    if name == "cal_n" and rng.random() < 0.3:  # a count calibration's one pass declines
        v[rng.random(a.shape) < 0.05] = 0.3
    a[...] = v


def _scorer(seed: int, keys: int, edge: float) -> tuple[Scorer, np.random.Generator]:
    s = Scorer(DetectorConfig(elevated_learn_weight=0.25), signals=False)
    ks = s.keyspace
    for k in KEYS[:keys]:
        ks.row("ig", k)
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        for name, col in ks.baseline.cols.items():
            _fill(rng, col, name, edge)
    return s, rng


def _window(s: Scorer, rng: np.random.Generator, ws: int) -> None:
    """Per-row state drawn for this window, then ``score_window`` and ``Scorer._learn``."""
    ks = s.keyspace
    n = ks.size
    ks.closed_ws[:n] = rng.choice([NEVER, ws - MIN, ws, ws + MIN], size=n, p=[0.7, 0.1, 0.1, 0.1])
    ks.mute_until[:n] = rng.choice([NEVER, ws, ws + MIN], size=n, p=[0.8, 0.1, 0.1])
    s.trackers = {ks.keys[r]: SimpleNamespace(state=rng.choice(["open", "closing", None]), total=rng.random() * 100,
                                              expected_total=rng.random() * 20, first_ws=ws - MIN * rng.integers(0, 40))
                  for r in rng.choice(n, size=min(n, int(rng.integers(0, 4))), replace=False)}  # type: ignore[misc]
    observed = rng.choice([0.0, 1.0, 3.0, 50.0, 5000.0, 1e9], size=n) * (rng.random(n) < 0.7)
    w = window_fused.score_window(ks, s.config, s.policy, s.trackers, ws, observed)  # type: ignore[arg-type]
    not_quiet = rng.random(n) < 0.2
    ended = sorted(int(r) for r in rng.choice(n, size=min(n, int(rng.integers(0, 3))), replace=False))
    s._learn(ws, w, ended, not_quiet)
    s.got.append(_bytes(w.observed, w.exp.mean, w.exp.phi, w.exp.source, *w.exp.aux.values(), w.done, w.raw,
                        w.score1, w.score, w.signal, w.muted, w.tracked))
    s.got.append(_bytes(*(c[:n] for c in ks.baseline.cols.values()), ks.closed_ws[:n]))


def _bytes(*arrays: np.ndarray) -> list[bytes]:
    return [np.ascontiguousarray(a).tobytes() + repr(a.shape).encode() + a.dtype.str.encode() for a in arrays]


STEPS = (evidence, negbin, seasonal, window_scores)  # the per-step path's modules of the closing loops


@contextmanager
def _fused(on: bool) -> Iterator[None]:
    """The fused path on or off, the per-step path in the compiled loops either way (also under
    SPIKEDETECT_PURE=1: their own tests compare them with numpy, which may keep another NaN's
    sign where NaN meets NaN or inf, e.g. in ``expect``'s phi)."""
    saved = window_fused._kernel, [m._kernel for m in STEPS]
    window_fused._kernel = KERNEL if on else None
    for m in STEPS:
        m._kernel = KERNEL
    try:
        yield
    finally:
        window_fused._kernel = saved[0]
        for m, k in zip(STEPS, saved[1], strict=True):
            m._kernel = k


def _play(fused: bool, seed: int, keys: int, edge: float, ops: list[str], start: int) -> tuple[list[Any], int]:
    """``ops`` on a scorer with the fused path on or off: its outputs, and how often it built views."""
    with _fused(fused):
        s, rng = _scorer(seed, keys, edge)
        s.got = []  # type: ignore[attr-defined]
        ws, more = start * MIN, iter(MORE)
        with np.errstate(all="ignore"):
            for op in ops:
                if op == "window":
                    _window(s, rng, ws)
                    ws += MIN
                elif op == "grow":  # new keys: past 16 or 32 rows every column is reallocated
                    first = s.keyspace.size
                    for _ in range(int(rng.integers(1, 12))):
                        s.keyspace.row("ig", next(more))
                    for name, col in s.keyspace.baseline.cols.items():
                        _fill(rng, col[first:], name, edge)
                elif op == "remove":  # the last row(s) that are nobody's parent
                    ks = s.keyspace
                    leaves = sorted(set(range(ks.size)) - set(ks.parent[:ks.size].tolist()))[-2:]
                    ks.remove(leaves if ks.size > 2 else [])
                else:  # another array for a column, other values
                    cols = s.keyspace.baseline.cols
                    cols[op] = cols[op].copy(order="K")
                    _fill(rng, cols[op][: s.keyspace.size], op, edge)
    views = s.keyspace.views
    return s.got, (views.builds if views is not None else 0)  # type: ignore[attr-defined]


ops = st.lists(st.sampled_from(["window"] * 6 + ["grow", "remove", "phi", "prof", "ring_x", "cal_n"]),
               min_size=1, max_size=12)


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, len(KEYS)), st.sampled_from([0.0, 0.0, 0.02, 0.2]), ops,
       st.integers(0, 10**6))
def test_fused_path_is_bit_identical_to_the_steps(seed: int, keys: int, edge: float, ops: list[str],
                                                  start: int) -> None:
    fused, built = _play(True, seed, keys, edge, ops, start)
    steps, _ = _play(False, seed, keys, edge, ops, start)
    assert fused == steps
    assert built >= 1 or "window" not in ops


@needs_kernel
def test_views_are_rebuilt_exactly_when_an_array_is_replaced() -> None:
    """Windows alone keep the views; a table that grows past its capacity, or a column replaced,
    rebuilds them; removing rows (moved in place) does not - and every window stays identical."""
    plan = [(["window", "window"], 1), (["grow"] * 3 + ["window"], 2), (["remove", "window"], 2),
            (["phi", "window"], 3), (["window"], 3)]
    done: list[str] = []
    for more, builds in plan:
        done += more
        fused, built = _play(True, 7, len(KEYS) - 1, 0.0, done, 28)  # 15 rows of 16; a ring lap at window 2
        assert built == builds
        assert fused == _play(False, 7, len(KEYS) - 1, 0.0, done, 28)[0]


@needs_kernel
def test_learn_needs_the_window_it_scored() -> None:
    """``window_fused.learn`` learns only from the arrays the fused scoring just gave (else the
    caller's per-step path): a copied array, or a second learn of the same window, is refused."""
    s, _ = _scorer(3, len(KEYS), 0.0)
    ks = s.keyspace
    ks.baseline.cols["cal_n"][:] = 5.0  # whole counts: calibration's one pass applies
    observed = np.arange(ks.size, dtype=np.float64)
    quiet = np.zeros(ks.size, dtype=bool)
    with _fused(True):
        w = window_fused.score_window(ks, s.config, s.policy, {}, 0, observed)
        w.signal = w.signal.copy()
        assert not window_fused.learn(ks, s.config, 0, w, [], quiet)
        w = window_fused.score_window(ks, s.config, s.policy, {}, MIN, observed)
        assert window_fused.learn(ks, s.config, MIN, w, [], quiet)
        assert not window_fused.learn(ks, s.config, MIN, w, [], quiet)


@needs_kernel
def test_learn_refuses_a_keyspace_changed_since_scoring() -> None:
    """The kernel refuses only arrays other than the window's; ``learn``'s own check refuses a
    keyspace that changed since the window was scored: a row added, the fused path switched off."""
    s, _ = _scorer(3, len(KEYS) - 1, 0.0)
    ks = s.keyspace
    ks.baseline.cols["cal_n"][:] = 5.0
    with _fused(True):
        w = window_fused.score_window(ks, s.config, s.policy, {}, 0, np.arange(ks.size, dtype=np.float64))
        ks.row("ig", KEYS[-1])
        assert not window_fused.learn(ks, s.config, 0, w, [], np.zeros(ks.size, dtype=bool))
        w = window_fused.score_window(ks, s.config, s.policy, {}, MIN, np.arange(ks.size, dtype=np.float64))
    with _fused(False):
        assert not window_fused.learn(ks, s.config, MIN, w, [], np.zeros(ks.size, dtype=bool))
    with _fused(True):  # the window is still the one scored: learned now
        assert window_fused.learn(ks, s.config, MIN, w, [], np.zeros(ks.size, dtype=bool))


@needs_kernel
def test_a_copied_scorer_gets_views_of_its_own() -> None:
    """``copy.deepcopy`` of a scorer whose keyspace has views: the copy starts without, builds its
    own on its next window, and both score and learn that window alike."""
    with _fused(True):
        s, rng = _scorer(5, len(KEYS), 0.0)
        s.got = []  # type: ignore[attr-defined]
        _window(s, rng, 0)
        twin = copy.deepcopy(s)
        twin.got = []  # type: ignore[attr-defined]
        assert s.keyspace.views is not None and twin.keyspace.views is not s.keyspace.views
        assert twin.keyspace.views.builds == 0  # type: ignore[attr-defined]
        _window(s, np.random.default_rng(9), MIN)
        _window(twin, np.random.default_rng(9), MIN)
        assert twin.keyspace.views.builds == 1  # type: ignore[attr-defined]
    assert s.got[-2:] == twin.got
