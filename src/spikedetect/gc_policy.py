"""How often CPython's cyclic garbage collector runs in a spikedetect process.

Closing a window allocates a few thousand short-lived containers (tuples, dicts, views) and
frees them again, and creates almost no reference cycles. With CPython's default generation-0
threshold of 700 the collector runs ~470 times over a 3-day replay, walks the young objects
each time and frees nothing: 4-6 % of replay's CPU (benchmarks/RESULTS.md, "The garbage
collector"). Raising the generation-0 threshold to 10,000 keeps ~10 of those collections.
Generations 1 and 2 keep their thresholds, so cycles are still collected, just in batches of
10,000 allocations instead of 700, which costs no memory worth counting.

The command line sets this once per process (every ``spikedetect`` command, and each ingest
child); a library user who drives :class:`~spikedetect.replay.runner.Replay` in-process keeps
their own collector settings unless they call :func:`tune_collector` themselves.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000


def tune_collector() -> tuple[int, int, int]:
    """Raise the generation-0 threshold to :data:`GEN0_THRESHOLD`; return the previous thresholds.

    >>> import gc
    >>> old = tune_collector()
    >>> gc.get_threshold()[0]
    10000
    >>> gc.set_threshold(*old)
    """
    old = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, old[1], old[2])
    return old
