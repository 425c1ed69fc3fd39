"""Type stub of the compiled closing loops (_closing.pyx)."""

from collections.abc import Callable, Container, Mapping
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_B = TypeVar("_B")
IntArray = npt.NDArray[np.intp]

def tail_sum(xm: FloatArray, a: FloatArray, b: FloatArray, stepwise: bool, out: FloatArray) -> None: ...
def seasonal_expect(cols: dict[str, npt.NDArray[Any]], rows: IntArray, lo: int, hi: int, w_hi: float, d: int,
                    params: tuple[float, ...], mean: FloatArray, phi_out: FloatArray, source: npt.NDArray[np.int8],
                    tod: FloatArray, warm: npt.NDArray[np.uint8], factor: FloatArray, own: FloatArray) -> None: ...
def seasonal_learn(cols: dict[str, npt.NDArray[Any]], rows: IntArray, x: FloatArray, mean: FloatArray,
                   source: npt.NDArray[np.int8], tod: FloatArray, warm: npt.NDArray[np.uint8], factor: FloatArray,
                   parent_observed: FloatArray, wt: FloatArray, lo: int, hi: int, w_hi: float, d: int,
                   params: tuple[float, ...]) -> None: ...
def logsf_gather(observed: FloatArray, mean: FloatArray, phi: FloatArray, idx: IntArray, xm: FloatArray,
                 mm: FloatArray, pm: FloatArray) -> tuple[int, bool]: ...
def logsf_log_args(xm: FloatArray, mm: FloatArray, pm: FloatArray, all_poisson: bool, r: FloatArray, q: FloatArray,
                   args: FloatArray) -> None: ...
def logsf_log_pmf(xm: FloatArray, mm: FloatArray, pm: FloatArray, all_poisson: bool, r: FloatArray, q: FloatArray,
                  logs: FloatArray, log1p_q: FloatArray, consts: tuple[float, ...], log_pmf: FloatArray,
                  a: FloatArray, b: FloatArray) -> None: ...
def share_counts(bank: Any, per_service: Mapping[str, Mapping[tuple[str, str, str], float]], m: int,
                 keys_of: Callable[[str], tuple[str, ...]], x: FloatArray) -> None: ...
def own_reports(per_service: Mapping[str, Mapping[tuple[str, str, str], float]], index: dict[tuple[str, str], int],
                new_row: Callable[[str, str], int], rows: IntArray, values: FloatArray) -> int: ...
def tree_sums(observed: FloatArray, depth: npt.NDArray[np.int8], parent: IntArray, max_depth: int,
              level_sums: FloatArray) -> None: ...
def sums_by_part(leaf: Mapping[tuple[str, str, str], float], part: int, start: float) -> dict[str, float]: ...
def breakdown_sums(leaf: Mapping[tuple[str, str, str], float], wanted: Container[str],
                   keys_of: Callable[[str], tuple[str, ...]], make: Callable[[dict[str, float], dict[str, float],
                                                                              dict[str, float]], _B]) -> dict[str, _B]: ...
def evidence_record(sum_x: FloatArray, ring_x: npt.NDArray[np.float32], x: FloatArray, sum_m: FloatArray,
                    ring_m: npt.NDArray[np.float32], m: FloatArray, sum_v: FloatArray, ring_v: npt.NDArray[np.float32],
                    v: FloatArray, rows: IntArray, pos: int, leaving: IntArray) -> bool: ...
