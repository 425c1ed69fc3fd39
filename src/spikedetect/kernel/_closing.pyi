"""Type stub of the compiled closing loops (_closing.pyx)."""

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

def tail_sum(xm: FloatArray, a: FloatArray, b: FloatArray, stepwise: bool, out: FloatArray) -> None: ...
