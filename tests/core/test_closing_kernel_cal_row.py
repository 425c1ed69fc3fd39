"""The calibration step's SSE2 and AVX rows (spikedetect/kernel/_closing_cal_row.pxi): the four
horizons' q99 and q999 of a row in two registers (or one, AVX) give the bits of the scalar loop and of numpy
(``evidence.learn_calibration`` without the kernel), for any float32 quantile (NaN, infinities,
subnormals, out of the clip range) and any score, and read a strided score array where it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import switched, using_kernel

from spikedetect.core import evidence
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
pytestmark = pytest.mark.skipif(KERNEL is None or not KERNEL.CALIBRATION_SSE2,
                                reason="no compiled closing loops, or no SSE2 (the scalar loop is all there is)")

floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
scores = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.5, 300.0, 2.0, -0.0]))


AVX = KERNEL is not None and KERNEL.CALIBRATION_AVX


@contextmanager
def row(mode: str) -> Iterator[None]:
    """The kernel's row as ``mode`` says: "avx", "sse2" or "scalar"."""
    assert KERNEL is not None
    with switched(KERNEL.calibration_sse2, mode == "sse2"), switched(KERNEL.calibration_avx, mode == "avx"):
        yield


def learned(mode: str | None, q: np.ndarray, q3: np.ndarray, counts: np.ndarray, flags: np.ndarray,
            raw: np.ndarray) -> list[bytes]:
    """The quantiles and counts after one step: the kernel with its row as ``mode`` says (see
    :func:`row`), or numpy (``mode`` None)."""
    n = len(counts)
    cols = {name: np.full((n, *shape), init, dtype=dtype) for name, (shape, dtype, init) in evidence.EVIDENCE_COLUMNS.items()}
    cols["cal_q"][:], cols["cal_q3"][:], cols["cal_n"][:] = q, q3, counts
    with using_kernel((evidence,), None if mode is None else KERNEL), np.errstate(all="ignore"), row(mode or "scalar"):
        evidence.learn_calibration(cols, n, flags.astype(bool), raw)
    return [cols["cal_q"].tobytes(), cols["cal_q3"].tobytes(), cols["cal_n"].tobytes()]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 100), st.booleans(), st.lists(floats32, min_size=8, max_size=8),
                          st.lists(scores, min_size=4, max_size=4)), min_size=1, max_size=20))
def test_the_sse2_and_avx_rows_give_the_scalar_loops_bits(rows: list[tuple[int, bool, list[float], list[float]]]) -> None:
    counts = np.array([r[0] for r in rows], dtype=np.float32)
    flags = np.array([r[1] for r in rows], dtype=np.uint8)
    q = np.array([r[2][:4] for r in rows], dtype=np.float32)
    q3 = np.array([r[2][4:] for r in rows], dtype=np.float32)
    raw = np.array([r[3] for r in rows], dtype=np.float64).T.copy()
    want = learned(None, q, q3, counts, flags, raw)
    for mode in ("sse2", "scalar", *(("avx",) if AVX else ())):
        assert learned(mode, q, q3, counts, flags, raw) == want, mode


def test_a_strided_score_array_is_read_where_it_is() -> None:
    """Scores every other column of a wider array (a view, not a copy): each row steps by its own."""
    assert KERNEL is not None
    rng = np.random.default_rng(7)
    n = 9
    wide = rng.uniform(0.0, 6.0, size=(4, 2 * n))
    raw = wide[:, ::2]
    assert not raw.flags.c_contiguous
    q, counts, flags = np.full((n, 4), 2.0, dtype=np.float32), np.full(n, 30.0, dtype=np.float32), np.ones(n, dtype=np.uint8)
    for mode in ("sse2", *(("avx",) if AVX else ())):
        got = []
        for scores in (raw, raw.copy()):
            qq, q3, nn = q.copy(), q.copy(), counts.copy()
            with row(mode):
                assert KERNEL.calibration_learn(qq, q3, nn, flags, scores, evidence._rate_factors())
            got.append(qq)
        assert got[0].tobytes() == got[1].tobytes()
        assert ((got[0] > 2.0) == (raw.T > 2.0)).all()  # stepped up where its own score was above
