"""The evidence record's SSE2 rows (spikedetect/kernel/_closing_record_rows.pxi): two rows at a
time, with their NaN check four rows at a time in AVX where the CPU has it, they leave the rings and running sums in the bits of the scalar loops and of numpy
(``evidence._record_numpy`` of the rows not done, with ``gather_evidence``'s sum means), for
any mix of done rows, odd row counts, learned and unlearned sources, and arrays wider than the
rows (a keyspace's capacity, more sum columns than horizons); and they decline, writing
nothing, exactly where the scalar check does (a NaN value or running sum of a row not done).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import switched

from spikedetect.core import evidence
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
pytestmark = pytest.mark.skipif(KERNEL is None or not KERNEL.RECORD_SSE2,
                                reason="no compiled closing loops, or no SSE2 (the scalar loops are all there is)")

LEARNED, FLOOR, RING = 1, 0.1, evidence.RING
values = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.0, -0.0, FLOOR, 3.0]))


MODES = ["sse2", *(["avx"] if KERNEL is not None and KERNEL.RECORD_AVX else [])]  # "avx": SSE2 rows, AVX check


@contextmanager
def rows_at_a_time(mode: str) -> Iterator[None]:
    """The record as ``mode`` says: "scalar" loops, "sse2" rows, or those with the "avx" check."""
    assert KERNEL is not None
    with switched(KERNEL.record_sse2, mode != "scalar"), switched(KERNEL.record_avx, mode == "avx"):
        yield


def state(rng: np.random.Generator, cap: int, width: int) -> list[np.ndarray]:
    """sum_x, ring_x, sum_m, ring_m, sum_v, ring_v of ``cap`` rows, the sums ``width`` wide."""
    out = []
    for _ in range(3):
        out.append(np.ascontiguousarray(rng.uniform(-50, 50, size=(cap, width))))
        out.append(np.asfortranarray(rng.uniform(0, 30, size=(cap, RING)).astype(np.float32)))
    return out


def recorded(mode: str | None, arrays: list[np.ndarray], rows: dict[str, np.ndarray], pos: int,
             leaving: np.ndarray) -> tuple[bool, list[bytes]]:
    """Whether it recorded, and the sums and rings after: the kernel as ``mode`` says (see
    :func:`rows_at_a_time`), or numpy (``mode`` None, rows not done, with the sums' means as
    gather_evidence takes them)."""
    arrays = [a.copy(order="K") for a in arrays]
    x, mean, own, source, phi, done = (rows[k] for k in ("x", "mean", "own", "source", "phi", "done"))
    if mode is None:
        m = np.where(source == LEARNED, np.maximum(own, FLOOR), mean)
        cols = dict(zip(("sum_x", "ring_x", "sum_m", "ring_m", "sum_v", "ring_v"), arrays, strict=True))
        h = len(leaving)
        wide = {k: cols[k] for k in ("sum_x", "sum_m", "sum_v")}
        for k in wide:
            cols[k] = wide[k][:, :h]  # the horizons' columns, a view: written through
        evidence._record_numpy(cols, np.flatnonzero(~done.astype(bool)), pos, leaving, x, m, m * phi)
        return True, [a.tobytes() for a in arrays]
    assert KERNEL is not None
    with rows_at_a_time(mode):
        got = KERNEL.evidence_record_window(*arrays, x, mean, own, source, phi, done, LEARNED, FLOOR, pos, leaving)
    return bool(got), [a.tobytes() for a in arrays]


def rows_of(n: int, draw_values: list[float], flags: list[tuple[bool, int]]) -> dict[str, np.ndarray]:
    v = np.array(draw_values, dtype=np.float64).reshape(4, n)
    return {"x": v[0].copy(), "mean": v[1].copy(), "own": v[2].copy(), "phi": np.abs(v[3]) + 1.0,
            "source": np.array([s for _, s in flags], dtype=np.int8),
            "done": np.array([d for d, _ in flags], dtype=np.uint8)}


@st.composite
def windows(draw: st.DrawFn, value: st.SearchStrategy[float]) -> tuple[dict[str, np.ndarray], int, int, int, int]:
    n = draw(st.integers(1, 23))
    vals = draw(st.lists(value, min_size=4 * n, max_size=4 * n))
    flags = draw(st.lists(st.tuples(st.sampled_from([False, False, False, True]), st.integers(0, 2)),
                          min_size=n, max_size=n))
    return rows_of(n, vals, flags), draw(st.integers(0, 5)), draw(st.integers(0, RING - 1)), draw(st.integers(0, 2)), n


@settings(max_examples=300, deadline=None)
@given(windows(values))
def test_the_sse2_rows_give_the_scalar_loops_and_numpys_bits(w: tuple[dict[str, np.ndarray], int, int, int, int]) -> None:
    rows, extra, pos, more, n = w
    leaving = np.ascontiguousarray((pos - np.array(evidence.HORIZONS[1:])) % RING, dtype=np.intp)
    arrays = state(np.random.default_rng(n * 31 + pos), n + extra, len(leaving) + more)
    want = recorded(None, arrays, rows, pos, leaving)
    for mode in ("scalar", *MODES):
        assert recorded(mode, arrays, rows, pos, leaving) == want, mode


@settings(max_examples=300, deadline=None)
@given(windows(values), st.sampled_from(["x", "mean", "own", "phi", "sum_x", "sum_m", "sum_v"]), st.integers(0, 22))
def test_a_nan_declines_both_ways_alike_and_writes_nothing(w: tuple[dict[str, np.ndarray], int, int, int, int],
                                                           where: str, row: int) -> None:
    """One NaN, in a row done (ignored, unless it is ``mean`` of a learned row: not read) or not."""
    rows, extra, pos, more, n = w
    leaving = np.ascontiguousarray((pos - np.array(evidence.HORIZONS[1:])) % RING, dtype=np.intp)
    arrays = state(np.random.default_rng(n), n + extra, len(leaving) + more)
    row %= n
    if where.startswith("sum_"):
        arrays[2 * ("xmv".index(where[-1]))][row, pos % len(leaving)] = np.nan
    else:
        rows[where][row] = np.nan
    before = [a.tobytes() for a in arrays]
    on, off = recorded(MODES[-1], arrays, rows, pos, leaving), recorded("scalar", arrays, rows, pos, leaving)
    assert on == off == recorded("sse2", arrays, rows, pos, leaving)
    if rows["done"][row]:
        assert on[0]
    if not on[0]:
        assert on[1] == before


@pytest.mark.parametrize("h", [0, 1, 2, 8, 9])
def test_any_number_of_horizons_and_the_longest_leaving_from_pos(h: int) -> None:
    """Horizons past 8 take the scalar loops; a horizon leaving from ``pos`` itself reads the
    value before it is overwritten, as the scalar loop does."""
    rng = np.random.default_rng(h)
    n, pos = 17, 4
    leaving = np.ascontiguousarray([pos, *rng.integers(0, RING, size=max(h - 1, 0))], dtype=np.intp)[:h]
    rows = rows_of(n, list(rng.uniform(0, 9, size=4 * n)), [(i % 5 == 3, i % 3) for i in range(n)])
    arrays = state(rng, n + 3, max(h, 1) + 1)
    want = recorded(None, arrays, rows, pos, leaving)
    for mode in ("scalar", *MODES):
        assert recorded(mode, arrays, rows, pos, leaving) == want, mode


@pytest.mark.parametrize("mode", MODES)
def test_a_nan_anywhere_in_a_run_of_rows_declines(mode: str) -> None:
    """Each running sum of eight rows (two runs of four), and each row's value and mean, made NaN
    in turn: the record declines and writes nothing, as the scalar check does."""
    rng = np.random.default_rng(11)
    n, pos = 8, 6
    leaving = np.ascontiguousarray((pos - np.array(evidence.HORIZONS[1:])) % RING, dtype=np.intp)
    arrays = state(rng, n, len(leaving))
    rows = rows_of(n, list(rng.uniform(0, 9, size=4 * n)), [(False, i % 3) for i in range(n)])
    assert recorded(mode, arrays, rows, pos, leaving)[0]
    for a in (0, 2, 4):
        for r in range(n):
            for k in range(len(leaving)):
                spoilt = [b.copy(order="K") for b in arrays]
                spoilt[a][r, k] = np.nan
                got, after = recorded(mode, spoilt, rows, pos, leaving)
                assert not got and after == [b.tobytes() for b in spoilt], (a, r, k)
    for name in ("x", "mean", "phi"):
        for r in range(n):
            spoilt_rows = {key: v.copy() for key, v in rows.items()}
            spoilt_rows["source"][r] = 0  # not learned: the mean is read
            spoilt_rows[name][r] = np.nan
            assert not recorded(mode, arrays, spoilt_rows, pos, leaving)[0], (name, r)
