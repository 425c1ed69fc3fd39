"""Optional compiled kernels (Cython); :mod:`spikedetect.kernel.loader` picks them up."""

from spikedetect.kernel.loader import PURE_ENV, count

__all__ = ["PURE_ENV", "count"]
