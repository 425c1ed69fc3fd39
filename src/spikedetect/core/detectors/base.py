"""The contract every baseline model honours, and the row bank they share.

A baseline keeps one row of state per key in column arrays (numpy), so a closed
window is scored and learned for every key at once. A row can be exported to plain
JSON-able values and imported again, which is how the live pipeline keeps per-key
state in changelogged tables; nothing is ever unpickled.
"""

from __future__ import annotations

import base64
import binascii
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from spikedetect.core.errors import ConfigError, StateError
from spikedetect.core.evidence import EVIDENCE_COLUMN_MAJOR, EVIDENCE_COLUMNS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

# Where an expectation came from; reported in incident events.
BASELINE_SOURCES = ("learned", "warming", "parent_prior", "floor")
LEARNED, WARMING, PARENT_PRIOR, FLOOR = range(4)
_LITTLE = sys.byteorder == "little"  # native arrays already hold export_row's little-endian bytes


class Expectation:
    """Expected count, overdispersion and baseline source for a set of rows.

    ``aux`` carries per-row intermediate arrays a model wants back in :meth:`Baseline.learn`
    (so it does not compute them twice); :meth:`subset` keeps them aligned.
    """

    __slots__ = ("aux", "mean", "phi", "source")

    def __init__(self, mean: FloatArray, phi: FloatArray, source: npt.NDArray[np.int8],
                 aux: dict[str, npt.NDArray[Any]] | None = None) -> None:
        self.mean = mean
        self.phi = phi
        self.source = source
        self.aux = aux or {}

    def subset(self, mask: npt.NDArray[Any]) -> Expectation:
        return Expectation(self.mean[mask], self.phi[mask], self.source[mask],
                           {k: v[mask] for k, v in self.aux.items()})


class Baseline(ABC):
    """A bank of per-key baseline models stored as columns.

    Subclasses declare ``COLUMNS``: name -> (per-row shape, dtype, initial value), and
    ``PARAMS``: name -> default. Rows are added with :meth:`add_row` and removed by
    moving the last row into the hole (:meth:`move_row`), which the scorer manages.

    The columns named in ``COLUMN_MAJOR`` (and the evidence rings) are stored in Fortran order:
    still indexed ``col[row, slot]``, but one slot of every row is one contiguous slice, so a
    window that touches one or two slots per row reads a few dense slices instead of a cache
    line per row (the compiled loops take them as ``[::1, :]`` memoryviews and refuse others).
    """

    name: ClassVar[str]
    COLUMNS: ClassVar[dict[str, tuple[tuple[int, ...], str, float]]] = {}
    PARAMS: ClassVar[dict[str, float]] = {}
    COLUMN_MAJOR: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, window_ms: int, params: Mapping[str, Any] | None = None) -> None:
        self.window_ms = window_ms
        values = dict(self.PARAMS)
        for key, value in (params or {}).items():
            if key not in self.PARAMS:
                raise ConfigError(f"detector {self.name!r} has no parameter {key!r}; "
                                  f"it has {', '.join(sorted(self.PARAMS)) or 'none'}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise ConfigError(f"detector parameter {key} must be a number, got {value!r}")
            values[key] = float(value)
        self.params = values
        self.validate_params()
        self.size = 0
        # the model's own columns, then the evidence ring and calibration every model shares
        self.columns: dict[str, tuple[tuple[int, ...], str, float]] = {**self.COLUMNS, **EVIDENCE_COLUMNS}
        self.column_major = self.COLUMN_MAJOR | EVIDENCE_COLUMN_MAJOR
        self.cols: dict[str, npt.NDArray[Any]] = {col: self._column(col, 16) for col in self.columns}
        self._grow_extra(16)

    def validate_params(self) -> None:  # noqa: B027 - optional hook
        """Raise ConfigError for parameters out of range (subclasses extend)."""

    # -- rows -----------------------------------------------------------------
    def add_row(self) -> int:
        """Append a fresh row (cold model) and return its index."""
        cap = len(next(iter(self.cols.values()))) if self.cols else 0
        if self.size >= cap:
            for col in self.columns:
                grown = self._column(col, max(16, cap * 2))
                grown[:cap] = self.cols[col]
                self.cols[col] = grown
            self._grow_extra(max(16, cap * 2))
        row = self.size
        self.size += 1
        for col in self.columns:
            self.cols[col][row] = self.initial(col)
        self._reset_extra(row)
        return row

    def _column(self, col: str, capacity: int) -> npt.NDArray[Any]:
        """A fresh column of ``capacity`` rows, each the column's initial value, in its order."""
        shape, dtype, _ = self.columns[col]
        return np.full((capacity, *shape), self.initial(col), dtype=dtype,
                       order="F" if col in self.column_major else "C")

    def move_row(self, src: int, dst: int) -> None:
        """Copy row ``src`` over row ``dst`` (used to fill the hole of a removed row)."""
        for arr in self.cols.values():
            arr[dst] = arr[src]
        self._move_extra(src, dst)

    def pop_row(self) -> None:
        """Forget the last row."""
        self.size -= 1
        self._reset_extra(self.size)

    # Hooks for models that keep per-row Python objects next to the columns.
    def _grow_extra(self, capacity: int) -> None:  # noqa: B027 - optional hook
        pass

    def _reset_extra(self, row: int) -> None:  # noqa: B027 - optional hook
        pass

    def _move_extra(self, src: int, dst: int) -> None:  # noqa: B027 - optional hook
        pass

    def initial(self, col: str) -> float:
        """Initial value of a column for a fresh row (parameters may change it)."""
        return self.columns[col][2]

    def rows_index(self, rows: IntArray) -> IntArray | slice:
        """``rows`` as a slice when it is every row in order (numpy views instead of copies)."""
        n = len(rows)
        if n == self.size and (n == 0 or (rows[0] == 0 and rows[-1] == n - 1)):
            return slice(0, n)
        return rows

    # -- state ----------------------------------------------------------------
    def export_row(self, row: int) -> dict[str, Any]:
        """The row's state as JSON-able values: scalars as numbers, vector columns as base64 of
        their little-endian bytes (exact, and about half the size of a list of floats)."""
        out: dict[str, Any] = {}
        for col, arr in self.cols.items():
            if arr.ndim == 1:
                out[col] = arr.item(row)
                continue
            value = arr[row]
            if _LITTLE and value.dtype.isnative:
                # a row-major row is handed over as it lies in memory (no copy); a column-major
                # row is strided, and tobytes() gathers it in slot order: the same bytes
                data = value.data if value.flags.c_contiguous else value.tobytes()
            else:
                data = value.astype(value.dtype.newbyteorder("<")).tobytes()
            out[col] = binascii.b2a_base64(data, newline=False).decode("ascii")  # = b64encode(...).decode()
        return out

    def import_row(self, row: int, state: Mapping[str, Any]) -> None:
        """Load a row exported by :meth:`export_row`; validates shapes, never executes anything.

        All columns are checked before any is written: a rejected state changes nothing.
        """
        if not isinstance(state, Mapping):
            raise StateError(f"baseline state is a {type(state).__name__}, not a mapping")
        values: dict[str, npt.NDArray[Any]] = {}
        for col, (shape, dtype, _) in self.columns.items():
            if col not in state and col in EVIDENCE_COLUMNS:  # state written before they existed
                values[col] = np.full(shape, self.initial(col), dtype=dtype)
                continue
            if col not in state:
                raise StateError(f"baseline state lacks {col!r}")
            raw = state[col]
            try:
                if isinstance(raw, str):
                    blob = base64.b64decode(raw, validate=True)
                    want = int(np.prod(shape)) * np.dtype(dtype).itemsize
                    if len(blob) != want:
                        raise ValueError(f"{len(blob)} bytes, expected {want}")
                    value = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
                else:
                    value = np.asarray(raw, dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise StateError(f"baseline state {col!r} is not numeric of shape {shape}: {exc}") from exc
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise StateError(f"baseline state {col!r} has shape {value.shape}, expected {shape}")
            values[col] = value
        for col, value in values.items():
            self.cols[col][row] = value

    # -- the model -------------------------------------------------------------
    @abstractmethod
    def expect(self, rows: IntArray, ws_ms: int) -> Expectation:
        """Expected counts for window ``ws_ms`` of ``rows`` (no learning, no side effects)."""

    def shares(self, rows: IntArray) -> FloatArray:
        """Each row's learned share of its parent's reports (NaN: unknown). The scorer uses
        it to give a cold key its parent's expectation scaled by this share."""
        return np.full(len(rows), np.nan)

    @property
    def floor_mean(self) -> float:
        """The smallest expected count the model ever reports."""
        return float(self.params.get("floor_mean", 0.5))

    @abstractmethod
    def learn(self, rows: IntArray, ws_ms: int, observed: FloatArray, expected: Expectation,
              parent_observed: FloatArray, weight: FloatArray | None = None) -> None:
        """Learn window ``ws_ms`` for ``rows`` (only windows judged normal are passed).

        ``weight`` (0..1 per row, default 1) scales how much each window teaches; 1 means
        a calm window, which alone also teaches the noise level (overdispersion).
        """

    def learn_window(self, learn: BoolArray, ws_ms: int, observed: FloatArray, expected: Expectation,
                     parent: IntArray, signal: npt.NDArray[np.int8], muted: BoolArray, elevated_weight: float) -> bool:
        """The scorer's whole learn step for the rows where ``learn`` is set, in one call, when
        the model has one (the same bits as :meth:`learn` with the scorer's parents and weights);
        False when it has not and the scorer calls :meth:`learn` itself."""
        return False

    def rebase(self, rows: IntArray, ratio: FloatArray) -> None:  # noqa: B027 - optional hook
        """Adopt a permanent level shift: expectations of ``rows`` become ``ratio`` times higher
        (models without a slow profile need nothing: they follow the level anyway)."""

    def warm(self, rows: IntArray) -> BoolArray:
        """True where the model has learned enough to trust its own expectation."""
        return np.ones(len(rows), dtype=bool)


def half_life_alpha(half_life_updates: float) -> float:
    """EW learning rate whose weight halves after ``half_life_updates`` updates.

    >>> round(half_life_alpha(1.0), 3)
    0.5
    """
    return float(1.0 - 0.5 ** (1.0 / max(half_life_updates, 1e-9)))
