"""Loading the optional compiled kernels (Cython), and the switch that turns them off.

``count`` is the compiled counting kernel (``_count.pyx``) or None: when the extension was
not built (no C compiler at install time) or ``SPIKEDETECT_PURE=1`` is set, the pure-Python
counter in :mod:`spikedetect.core.counter` runs instead - it is the reference the kernel is
tested against (tests/core/test_counter_kernel.py). ``closing`` is likewise the compiled
closing loops (``_closing.pyx``: the negative-binomial tail sums of :mod:`spikedetect.core.negbin`
and the seasonal detector's per-key steps) or None, their numpy code being the reference
(tests/core/test_closing_kernel.py). ``records`` is the reader of raw Kafka record batches that
stage 1 uses (``_records.pyx``) or None, aiokafka's own reader being its reference
(tests/stream/test_raw_records.py) and fallback. The kernels do no I/O; reading this one environment
variable at import is the only thing this package does besides loading them.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

PURE_ENV = "SPIKEDETECT_PURE"


def pure_forced() -> bool:
    """``SPIKEDETECT_PURE`` set to anything but ``0``: count in pure Python."""
    return os.environ.get(PURE_ENV, "") not in ("", "0")


_WHAT = {"_count": ("counting kernel", "counting"), "_closing": ("closing loops", "closing windows"),
         "_records": ("record-batch reader", "reading input batches")}


def load_compiled(name: str = "_count") -> ModuleType | None:
    """A compiled kernel (``_count``, ``_closing`` or ``_records``) whatever ``SPIKEDETECT_PURE`` says, or None
    if it was not built."""
    try:
        return importlib.import_module(f"spikedetect.kernel.{name}")
    except ImportError as exc:
        what, doing = _WHAT[name]
        warnings.warn(f"spikedetect: compiled {what} not available ({exc}); {doing} in pure Python "
                      "(reinstall with a C compiler, or set SPIKEDETECT_PURE=1 to silence this)",
                      RuntimeWarning, stacklevel=2)
        return None


count: ModuleType | None = None if pure_forced() else load_compiled("_count")
closing: ModuleType | None = None if pure_forced() else load_compiled("_closing")
records: ModuleType | None = None if pure_forced() else load_compiled("_records")
