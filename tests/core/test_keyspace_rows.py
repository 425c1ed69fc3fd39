"""Keyspace.all_rows: arange(size) through growth and removal, never writable (the scorer hands
it to the baseline every window; a writable shared arange could be corrupted by a caller)."""

from __future__ import annotations

import numpy as np
import pytest

from spikedetect.core.detectors import SeasonalBaseline
from spikedetect.core.keyspace import Keyspace


def test_all_rows_follows_size_through_growth_and_removal() -> None:
    ks = Keyspace(SeasonalBaseline(60_000))
    assert ks.all_rows().tolist() == []
    for i in range(40):
        ks.row("ig", f"US/C{i}")
        assert ks.all_rows().tolist() == list(range(ks.size))
    ks.remove([ks.index[("ig", "US/C3")], ks.index[("ig", "US/C7")]])
    assert ks.all_rows().tolist() == list(range(ks.size))
    assert ks.all_rows().dtype == np.intp


def test_all_rows_is_read_only() -> None:
    ks = Keyspace(SeasonalBaseline(60_000))
    ks.row("ig", "US/CA")
    with pytest.raises(ValueError):
        ks.all_rows()[0] = 5
    assert ks.all_rows().tolist() == [0, 1, 2]
