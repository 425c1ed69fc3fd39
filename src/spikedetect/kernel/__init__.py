"""Optional compiled kernels (Cython); :mod:`spikedetect.kernel.loader` picks them up."""

from spikedetect.kernel.loader import PURE_ENV, closing, count, load_compiled, pure_forced

__all__ = ["PURE_ENV", "closing", "count", "load_compiled", "pure_forced"]
