"""Loading the optional compiled kernels (Cython), and the switch that turns them off.

``count`` is the compiled counting kernel (``_count.pyx``) or None: when the extension was
not built (no C compiler at install time) or ``SPIKEDETECT_PURE=1`` is set, the pure-Python
counter in :mod:`spikedetect.core.counter` runs instead - it is the reference the kernel is
tested against (tests/core/test_counter_kernel.py). The kernel does no I/O; reading this one
environment variable at import is the only thing this package does besides loading it.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType

PURE_ENV = "SPIKEDETECT_PURE"


def pure_forced() -> bool:
    """``SPIKEDETECT_PURE`` set to anything but ``0``: count in pure Python."""
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def load_compiled() -> ModuleType | None:
    """The compiled counting kernel whatever ``SPIKEDETECT_PURE`` says, or None if not built."""
    try:
        from spikedetect.kernel import _count
    except ImportError as exc:
        warnings.warn(f"spikedetect: the compiled counting kernel is not available ({exc}); counting in pure Python "
                      "(reinstall with a C compiler, or set SPIKEDETECT_PURE=1 to silence this)",
                      RuntimeWarning, stacklevel=2)
        return None
    return _count


count: ModuleType | None = None if pure_forced() else load_compiled()
