"""One composition window in the compiled closing loops (``_closing_tails.pxi``,
``_closing_comp_window.pxi``), with its scratch.

:class:`FusedWindow` runs :meth:`CompositionDetector.close_window
<spikedetect.core.composition.detector.CompositionDetector.close_window>`'s steps after the
counts - :func:`~spikedetect.core.composition.tails.score_tails`, ``_opening``,
:func:`~spikedetect.core.composition.tails.forget_evidence` and
:meth:`~spikedetect.core.composition.shares.ShareBank.learn` - in one kernel call
(``composition_window``: two compiled passes around the tails' one
:func:`~spikedetect.core.negbin.log_sf` and the learning's exp, their logs and exp taken by
numpy's own float64 loops, :data:`_LOOPS`), the same bits. When some count is not whole, numpy
sums the rows and the passes run one call at a time with numpy's calls between them
(:func:`~spikedetect.core.negbin.nb_tails`, ``np.exp``). A window where no member steps ends
there; otherwise the detector steps the members and then forgets and learns as the numpy code
does. The scratch arrays are kept from one window to the next (grown by doubling).
"""
from __future__ import annotations

import math
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from spikedetect.core.composition.shares import LEARN_REPORTS, MAX_RATE, MIN_EXPECTED, WARM_REPORTS
from spikedetect.core.composition.tails import (
    CLOSE_RATIO,
    CLOSE_SCORE,
    CUSUM_RATIO,
    DECAY,
    MIN_EXCESS,
    MIN_RATIO,
    MIN_SHARE_RISE,
    OPEN_SCORE,
    P_FLOOR,
    Tails,
)
from spikedetect.core.leaves import CATEGORY, REGION
from spikedetect.core.negbin import _CONSTS, _LN10, MAX_SCORE, UFUNC_LOOPS, nb_tails
from spikedetect.kernel import closing as _kernel

if TYPE_CHECKING:
    from spikedetect.core.composition.shares import ShareBank
    from spikedetect.core.leaves import LeafFrame

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_FRONT = (P_FLOOR, DECAY[0], DECAY[1], math.log(CUSUM_RATIO), CUSUM_RATIO - 1.0, LEARN_REPORTS)
_BACK = (P_FLOOR, math.log(10.0), OPEN_SCORE, CLOSE_SCORE, MIN_EXCESS, MIN_RATIO, CLOSE_RATIO, MIN_SHARE_RISE,
         MIN_EXCESS / 2, WARM_REPORTS, 2 * OPEN_SCORE, MAX_RATE)
_NO_SUMS = np.zeros((5, 0, 0))  # log_sf of the candidates alone
_NO_ROWS = np.zeros(0, dtype=np.intp)
# numpy's float64 loops of the logs and the exp (the kernel calls them: the same bits), negbin's constants
_LOOPS = UFUNC_LOOPS
_NB = (_CONSTS, _LN10, MAX_SCORE)


class Steps(NamedTuple):
    """A window whose members step in Python: the rows, their totals ``n``, tails and learning
    weights (views of the scratch, valid until the next window)."""

    rows: list[int]
    n: FloatArray
    tails: Tails
    weight: FloatArray


class FusedWindow:
    """The compiled window's scratch: floats, flags, positions, ones and the candidates' tails,
    and the kernel's hold on them and on the bank's arrays (``_arrays``, which views them again
    when one of them was replaced)."""

    def __init__(self) -> None:
        self.f = np.zeros(0)
        self.b = np.zeros(0, dtype=np.uint8)
        self.idx = np.zeros(0, dtype=np.intp)
        self.ones = np.zeros(0)
        self.tail = np.zeros((1, 0))
        self.x = np.zeros((0, 0))  # :meth:`close`'s counts (m, k) and held flags
        self.hs = np.zeros(0, dtype=np.uint8)
        self._arrays: Any = None
        self._close: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the kernel's holds behind (made again at the next window)."""
        return {**self.__dict__, "_arrays": None, "_close": None}

    def _fit(self, m: int, k: int) -> None:
        cells = 3 * m * k
        if cells + m <= len(self.idx):
            return
        size = max(cells + m, 2 * len(self.idx), 1024)  # (cells + m <= size: every layout below fits)
        self.f = np.empty(4 * size)
        self.b = np.empty(size, dtype=np.uint8)
        self.idx = np.empty(size, dtype=np.intp)
        self.ones = np.ones(size)
        self.tail = np.empty((1, size))

    def _hold(self, kernel: ModuleType, bank: ShareBank) -> Any:
        """The kernel's hold on ``bank``'s arrays and the scratch (their views taken again only
        when one of them was replaced)."""
        if self._arrays is None:
            self._arrays = kernel.CompositionWindow(_FRONT, _BACK, _LOOPS, _NB)
        self._arrays.take((bank.shares, bank.acc, bank.learned, bank.hits, self.f, self.b, self.idx, self.tail))
        return self._arrays

    def run(self, bank: ShareBank, x: FloatArray, held: npt.NDArray[np.uint8]) -> Steps | None:
        """Score, open and - when no row steps (None) - forget and learn one window of ``bank``'s
        ``m`` rows: ``x`` its counts (m, k), ``held`` per row 1 blocked, 2 with a member (or both)."""
        kernel = _kernel
        assert kernel is not None
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        m, k = x.shape
        if 3 * m * k + m > len(self.idx):
            self._fit(m, k)
        arrays, f = self._hold(kernel, bank), self.f
        steps = kernel.composition_window(arrays, x, held)  # (the usual window: one call)
        if steps < 0:  # some count is not whole: numpy's own sums, and the passes one by one
            np.sum(x, axis=1, out=f[:m])
            got = kernel.composition_front(arrays, x, True)
            if got:
                cells = 3 * m * k
                at = 4 * m
                nb_tails(kernel, f[at:at + got], f[at + cells:at + cells + got], self.ones[:got], _NO_SUMS,
                         _NO_ROWS, False, self.tail[:, :got])
            np.exp(f[m:2 * m], out=f[2 * m:3 * m])
            steps = kernel.composition_back(arrays, x, held, got)
        return self.steps(m, k, steps) if steps else None

    def close(self, bank: ShareBank, frame: LeafFrame, n_keys: int, expected: FloatArray,
              blocked: npt.NDArray[np.bool_], key_rows: IntArray, no_row: npt.NDArray[np.bool_]) -> int:
        """The usual window of ``bank``'s rows (``key_rows``: each one's key row) over ``frame`` in
        one call (``composition_close``): the check that none of the ``n_keys`` keys without a row
        (``no_row``) became busy, the counts into :attr:`x`, ``blocked[key_rows]`` and :meth:`run`'s
        call. -4, -3, -1: nothing of the bank moved (a row to add, a path or column to find, a count
        not whole: the steps one by one then); else the rows that step (:meth:`steps`)."""
        kernel = _kernel
        assert kernel is not None
        m, k = len(key_rows), max(len(bank.cats), 1)
        if self.x.shape != (m, k):
            self.x = np.zeros((m, k))
        if len(self.hs) < m:
            self.hs = np.zeros(max(m, 2 * len(self.hs), 64), dtype=np.uint8)
        if 3 * m * k + m > len(self.idx):
            self._fit(m, k)
        if self._close is None:
            self._close = kernel.CompositionClose(_FRONT, _BACK, _LOOPS, _NB)
        paths = bank.leaf_paths
        self._close.take((bank.shares, bank.acc, bank.learned, bank.hits, self.f, self.b, self.idx, self.tail, self.x,
                          self.hs, key_rows, no_row, paths.start, paths.length, paths.col, paths.flat))
        steps: int = kernel.composition_close(self._close, frame.parts[REGION], frame.parts[CATEGORY], frame.counts,
                                              expected, n_keys, blocked, MIN_EXPECTED)
        return steps

    def steps(self, m: int, k: int, steps: int) -> Steps:
        """The ``steps`` rows that step in the window just run (``m`` rows, ``k`` columns)."""
        f, cells, mk = self.f, 3 * m * k, m * k
        flags = [self.b[i * mk:(i + 1) * mk].view(np.bool_).reshape(m, k) for i in range(3)]
        score = f[4 * m + 3 * cells:4 * m + 3 * cells + mk].reshape(m, k)
        return Steps(self.idx[cells:cells + steps].tolist(), f[:m], Tails(flags[0], score, flags[1], flags[2]),
                     f[3 * m:4 * m])
