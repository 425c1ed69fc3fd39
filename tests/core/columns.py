"""Columns built by hand for the tests, in the order the core keeps them."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from spikedetect.core.evidence import EVIDENCE_COLUMN_MAJOR


def stored(cols: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """``cols`` with the evidence columns in their storage order (the rings Fortran-ordered, a
    copy where they were not), as a :class:`~spikedetect.core.detectors.base.Baseline` keeps them
    and the compiled loops take them."""
    return {k: np.asfortranarray(v) if k in EVIDENCE_COLUMN_MAJOR else v for k, v in cols.items()}
