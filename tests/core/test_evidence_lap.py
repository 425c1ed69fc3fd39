"""The once-a-lap exact resum of the evidence sums touches only the rows written that window.

A restarted owner re-closes windows for the keys that had not applied them; a key restored
from a later record is "done" and skipped. When a re-closed window was the ring's position 0,
the resum used to recompute every row's sums, the done ones too, from ring positions that were
not their newest: their 3- and 10-window sums went wrong until the next lap (seen in CI's SIGKILL
soak as a region incident re-emitted with another score).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from tests.core.columns import stored

from spikedetect.core import evidence
from spikedetect.core.evidence import EVIDENCE_COLUMNS, RING
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")


def columns(n: int) -> dict[str, np.ndarray]:
    return stored({name: np.full((n, *shape), init, dtype=dtype)
                            for name, (shape, dtype, init) in EVIDENCE_COLUMNS.items()})


def exact_sums(cols: dict[str, np.ndarray], row: int, newest_pos: int) -> np.ndarray:
    """Row's sums over the 3, 10 and 30 windows ending at ring position ``newest_pos``."""
    ring = cols["ring_x"][row].astype(np.float64)
    return np.array([ring[(newest_pos - np.arange(h)) % RING].sum() for h in evidence.HORIZONS[1:]])


@pytest.mark.parametrize("kernel", [None, KERNEL], ids=["numpy", "compiled"])
def test_a_lap_start_resums_only_the_rows_written(kernel: ModuleType | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence, "_kernel", kernel)
    n = 2
    cols = columns(n)
    rng = np.random.default_rng(7)
    # both rows record windows at positions 20 .. 29, 0 .. 5 (row 1 is "ahead": it applied them)
    for pos in [*range(20, RING), *range(6)]:
        x = rng.integers(0, 9, n).astype(np.float64)
        evidence.record(cols, n, pos, x, np.full(n, 0.5), np.full(n, 0.5))
    ahead = {name: cols[name][1].copy() for name in ("sum_x", "sum_m", "sum_v", "ring_x")}
    assert np.array_equal(cols["sum_x"][1], exact_sums(cols, 1, 5))
    # row 0 closes position 0 again (a re-close after a restart); row 1 is done and skipped
    evidence.record(cols, n, 0, np.array([4.0, 99.0]), np.full(n, 0.5), np.full(n, 0.5),
                    np.array([True, False]))
    for name, value in ahead.items():
        assert np.array_equal(cols[name][1], value), f"the done row's {name} changed"
    assert np.array_equal(cols["sum_x"][0], exact_sums(cols, 0, 0)), "the written row is resummed at the lap"
