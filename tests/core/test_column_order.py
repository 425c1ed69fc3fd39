"""Column-major storage of the per-key multi-slot state (issue 17).

A closed window reads and learns one or two profile slots and one ring position of every key, so
those columns are stored Fortran-ordered: ``col[row, slot]`` as before, one slot of all rows one
contiguous slice. These tests keep it that way through every row operation, check that the
exported state is the same bytes as from a C-ordered row, and that the compiled loops refuse a
C-ordered column instead of reading it with the wrong strides.
"""

from __future__ import annotations

import base64
import copy
from types import ModuleType

import numpy as np
import orjson
import pytest
from tests.core.columns import stored

from spikedetect.core import evidence
from spikedetect.core.config import DetectorSpec
from spikedetect.core.detectors import Baseline, make_baseline, seasonal
from spikedetect.core.detectors.seasonal import SeasonalBaseline
from spikedetect.core.detectors.weekly import WeeklyBaseline
from spikedetect.core.evidence import EVIDENCE_COLUMN_MAJOR
from spikedetect.kernel import load_compiled

W = 60_000
KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="compiled closing loops not built")
RINGS = ("ring_x", "ring_m", "ring_v")
SEASONAL = {"prof", "prof_w", "dow_num", "dow_den", "dow_w"}


def assert_ordered(bank: Baseline) -> None:
    for col, arr in bank.cols.items():
        if col in bank.column_major:
            assert arr.ndim == 2 and arr.flags.f_contiguous and not arr.flags.c_contiguous, col
        else:
            assert arr.flags.c_contiguous, col


def filled(name: str, rows: int) -> Baseline:
    """A bank of ``rows`` rows, every cell a different value (row * 1000 + flat index)."""
    bank = make_baseline(DetectorSpec(name), W)
    for _ in range(rows):
        bank.add_row()
    for arr in bank.cols.values():
        width = int(np.prod(arr.shape[1:]))
        arr[:] = (np.arange(len(arr))[:, None] * 1000 + np.arange(width)).reshape(arr.shape)
    return bank


def test_the_column_major_columns() -> None:
    """Which columns are slot-major: the profiles and weekday ratios, and the evidence rings (their
    running sums and the calibration quantiles are touched whole, per row, and stay row-major)."""
    assert SeasonalBaseline.COLUMN_MAJOR == SEASONAL
    assert {*SEASONAL, "wprof", "wprof_w"} == WeeklyBaseline.COLUMN_MAJOR
    assert set(RINGS) == EVIDENCE_COLUMN_MAJOR
    assert make_baseline(DetectorSpec("ewma"), W).column_major == EVIDENCE_COLUMN_MAJOR


@pytest.mark.parametrize("name", ["seasonal", "weekly", "ewma"])
def test_rows_keep_the_order_through_growth_move_pop_import_and_copies(name: str) -> None:
    bank = make_baseline(DetectorSpec(name), W)
    assert_ordered(bank)
    for _ in range(40):  # grows 16 -> 32 -> 64
        bank.add_row()
    assert len(bank.cols["ring_x"]) == 64
    assert_ordered(bank)
    bank.cols["ring_m"][7, 3] = 5.0
    bank.move_row(7, 2)
    bank.pop_row()
    assert bank.cols["ring_m"][2, 3] == 5.0
    assert_ordered(bank)
    bank.import_row(1, orjson.loads(orjson.dumps(bank.export_row(2))))
    assert bank.cols["ring_m"][1, 3] == 5.0
    assert_ordered(bank)
    assert_ordered(copy.deepcopy(bank))


@pytest.mark.parametrize("name", ["seasonal", "weekly"])
def test_the_exported_state_is_the_c_order_bytes_of_each_row(name: str) -> None:
    """The stored format does not change: each vector column is base64 of the row's values in
    slot order, whatever the column's memory order; and it imports back to the same values."""
    bank = filled(name, 20)
    c_bank = copy.deepcopy(bank)
    c_bank.cols = {col: np.ascontiguousarray(arr) for col, arr in bank.cols.items()}
    for row in (0, 5, 19):
        got = bank.export_row(row)
        assert got == c_bank.export_row(row)
        for col in bank.column_major:
            arr = bank.cols[col]
            assert not arr[row].flags.c_contiguous
            want = np.array([row * 1000 + k for k in range(arr.shape[1])], dtype=arr.dtype).astype(
                arr.dtype.newbyteorder("<")).tobytes()
            assert base64.b64decode(got[col]) == want, col
    other = filled(name, 3)
    other.import_row(2, orjson.loads(orjson.dumps(bank.export_row(19))))
    assert orjson.dumps(other.export_row(2)) == orjson.dumps(bank.export_row(19))
    assert_ordered(other)


@needs_kernel
def test_the_compiled_loops_refuse_a_row_major_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel handed a column in C order raises (the memoryviews are declared Fortran-contiguous);
    it never reads one with the wrong strides. Through the model as well as directly."""
    assert isinstance(KERNEL, ModuleType)
    monkeypatch.setattr(seasonal, "_kernel", KERNEL)  # built, even when SPIKEDETECT_PURE=1 turned it off
    bank = filled("seasonal", 20)
    rows = np.arange(20)
    before = bank.expect(rows, 7 * W)
    for col in sorted(SEASONAL):
        saved = bank.cols[col]
        bank.cols[col] = np.ascontiguousarray(saved)
        with pytest.raises(ValueError, match="Fortran"):
            bank.expect(rows, 7 * W)
        bank.cols[col] = saved
    again = bank.expect(rows, 7 * W)
    assert np.array_equal(before.mean, again.mean) and np.array_equal(before.phi, again.phi)
    saved = bank.cols["prof_w"]
    bank.cols["prof_w"] = np.ascontiguousarray(saved)
    with pytest.raises(ValueError, match="Fortran"):
        bank.learn_window(np.ones(20, dtype=bool), 7 * W, np.ones(20), again, np.full(20, -1, dtype=np.intp),
                          np.zeros(20, dtype=np.int8), np.zeros(20, dtype=bool), 0.25)
    bank.cols["prof_w"] = saved
    cols = {k: v for k, v in bank.cols.items() if k in evidence.EVIDENCE_COLUMNS}
    h, pos = np.array([3, 10, 30], dtype=np.intp), 4
    x = np.ones(20)
    for ring in RINGS:
        bad = {**cols, ring: np.ascontiguousarray(cols[ring])}
        with pytest.raises(ValueError, match="Fortran"):
            KERNEL.evidence_record(bad["sum_x"], bad["ring_x"], x, bad["sum_m"], bad["ring_m"], x, bad["sum_v"],
                                   bad["ring_v"], x, rows, pos, (pos - h) % 30)
        with pytest.raises(ValueError, match="Fortran"):
            KERNEL.evidence_resum(bad["ring_x"], bad["ring_m"], bad["ring_v"], bad["sum_x"], bad["sum_m"],
                                  bad["sum_v"], rows, h)
        with pytest.raises(ValueError, match="Fortran"):
            KERNEL.horizon_trimmed(bad["ring_x"], bad["ring_m"], bad["ring_v"], bad["sum_m"], rows[:2], pos, h,
                                   np.zeros((5, 3, 2)))


def test_stored_puts_hand_built_rings_in_column_order() -> None:
    cols = {name: np.zeros((3, *shape), dtype=dtype) for name, (shape, dtype, _) in evidence.EVIDENCE_COLUMNS.items()}
    got = stored(cols)
    assert all(got[k].flags.f_contiguous and not got[k].flags.c_contiguous for k in RINGS)
    assert all(got[k] is cols[k] for k in cols if k not in RINGS)
