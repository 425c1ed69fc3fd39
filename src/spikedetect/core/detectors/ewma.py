"""Exponentially weighted level baseline, built on River's ``stats.EWMean`` / ``stats.EWVar``.

No seasonality: the expectation is the recent level, which follows slow daily ramps
but also slowly absorbs slow-growing outages. Shipped as the simple alternative the
evaluation compares the seasonal profile against.

Each row holds a River ``EWMean`` and ``EWVar``. Their state is exported with River's
own ``__getstate__`` (a fixed-size bincode record of floats, checked for length on the
way back in) - never with pickle.

>>> import numpy as np
>>> b = EwmaBaseline(60_000)
>>> r = b.add_row()
>>> rows = np.array([r])
>>> for _ in range(50):
...     e = b.expect(rows, 0)
...     b.learn(rows, 0, np.array([8.0]), e, np.array([np.nan]))
>>> round(float(b.expect(rows, 0).mean[0]), 3)
8.0
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from river import stats

from spikedetect.core import river_compat
from spikedetect.core.detectors.base import (
    FLOOR,
    WARMING,
    Baseline,
    BoolArray,
    Expectation,
    FloatArray,
    IntArray,
)
from spikedetect.core.errors import ConfigError, StateError


class EwmaBaseline(Baseline):
    name = "ewma"
    COLUMNS: ClassVar[dict[str, tuple[tuple[int, ...], str, float]]] = {"n": ((), "float32", 0.0)}
    PARAMS: ClassVar[dict[str, float]] = {"fading_factor": 0.1, "warm_windows": 10.0, "floor_mean": 0.5, "phi_max": 50.0}

    def validate_params(self) -> None:
        if not 0.0 < self.params["fading_factor"] <= 1.0:
            raise ConfigError("ewma.fading_factor must be in (0, 1]")
        if self.params["floor_mean"] <= 0:
            raise ConfigError("ewma.floor_mean must be positive")
        self._means: list[Any] = []
        self._vars: list[Any] = []

    def _new_stats(self) -> tuple[Any, Any]:
        alpha = self.params["fading_factor"]
        return stats.EWMean(fading_factor=alpha), stats.EWVar(fading_factor=alpha)

    def _grow_extra(self, capacity: int) -> None:
        while len(self._means) < capacity:
            m, v = self._new_stats()
            self._means.append(m)
            self._vars.append(v)

    def _reset_extra(self, row: int) -> None:
        if row < len(self._means):
            self._means[row], self._vars[row] = self._new_stats()

    def _move_extra(self, src: int, dst: int) -> None:
        self._means[dst], self._vars[dst] = self._means[src], self._vars[src]
        self._means[src], self._vars[src] = self._new_stats()

    def expect(self, rows: IntArray, ws_ms: int) -> Expectation:
        floor = self.params["floor_mean"]
        mean = np.fromiter((self._means[r].get() for r in rows), dtype=np.float64, count=len(rows))
        var = np.fromiter((self._vars[r].get() for r in rows), dtype=np.float64, count=len(rows))
        warm = self.cols["n"][rows] >= self.params["warm_windows"]
        mean = np.maximum(mean, floor)
        phi = np.clip(var / mean, 1.0, self.params["phi_max"])
        phi = np.where(warm, phi, phi * 2.0)
        return Expectation(mean, phi, np.where(warm, WARMING, FLOOR).astype(np.int8))

    def learn(self, rows: IntArray, ws_ms: int, observed: FloatArray, expected: Expectation,
              parent_observed: FloatArray, weight: FloatArray | None = None) -> None:
        if weight is not None:  # River's EW statistics take no weights: partly-trusted windows are skipped
            keep = np.asarray(weight) >= 1.0
            rows, observed = rows[keep], observed[keep]
        for r, x in zip(rows.tolist(), observed.tolist(), strict=True):
            self._means[r].update(x)
            self._vars[r].update(x)
        self.cols["n"][rows] += 1.0

    def warm(self, rows: IntArray) -> BoolArray:
        return np.asarray(self.cols["n"][rows] >= self.params["warm_windows"])

    def export_row(self, row: int) -> dict[str, Any]:
        out = super().export_row(row)
        out["mean"] = base64.b64encode(river_compat.get_state(self._means[row])).decode()
        out["var"] = base64.b64encode(river_compat.get_state(self._vars[row])).decode()
        return out

    def import_row(self, row: int, state: Mapping[str, Any]) -> None:
        m, v = self._new_stats()  # checked before the columns are written: a rejected state changes nothing
        for obj, field in ((m, "mean"), (v, "var")):
            expected_len = river_compat.state_size(obj)
            try:
                blob = base64.b64decode(state[field], validate=True)
            except (KeyError, ValueError, TypeError) as exc:
                raise StateError(f"ewma state lacks a valid {field!r}") from exc
            if len(blob) != expected_len:
                raise StateError(f"ewma {field!r} state has {len(blob)} bytes, expected {expected_len}")
            river_compat.set_state(obj, blob)
            if not np.isfinite(obj.get()):
                raise StateError(f"ewma {field!r} state is not finite")
        super().import_row(row, state)
        self._means[row], self._vars[row] = m, v
