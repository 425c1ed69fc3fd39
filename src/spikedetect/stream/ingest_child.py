"""One ingest child process (``spikedetect worker --ingest-processes N``): stage 1 on its own core.

The child runs an :class:`~spikedetect.stream.ingest.IngestService` in its own event loop, in
the same consumer group ``<app>-ingest`` as every other ingest stage of the app, so Kafka
divides the input partitions among the children (and other workers). It talks to its parent
through two one-way pipes and nothing else:

* *control* (parent → child): the child never expects a message on it; end of file means the
  parent closed it (shutdown) or died. Either way the child stops: a final commit, then exit.
  If stopping takes longer than ``STOP_GRACE_S`` the child exits hard (a crash, which the
  committed offsets and their metadata make exact, as for a killed worker).
* *report* (child → parent): every ``report_every_s`` a snapshot of its stage-1 figures
  (:func:`~spikedetect.stream.ingest_mirror.snapshot`), JSON bytes.

The exit code is 1 when the ingest service crashed, 0 otherwise; the parent restarts a child
that exits while the worker runs (:mod:`spikedetect.stream.ingest_procs`). SIGINT is ignored:
Ctrl-C reaches the whole process group, and the parent decides when its children stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

from spikedetect.gc_policy import tune_collector
from spikedetect.stream.ingest import IngestService
from spikedetect.stream.ingest_mirror import snapshot
from spikedetect.stream.logs import setup_logging
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.settings import Settings

log = logging.getLogger("spikedetect.ingest")

STOP_GRACE_S = 20.0  # after the parent let go, at most this long for the final commit


def child_main(settings: Settings, control: Connection, report: Connection, report_every_s: float) -> None:
    """The child process's entry point (a ``multiprocessing`` "spawn" target)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_collector()  # a spawned child starts with CPython's defaults
    setup_logging(settings.log_level)
    code = asyncio.run(_run(settings, control, report, report_every_s))
    sys.exit(code)


async def _run(settings: Settings, control: Connection, report: Connection, report_every_s: float) -> int:
    loop = asyncio.get_running_loop()
    parent_gone = asyncio.Event()
    threading.Thread(target=_watch_parent, args=(control, loop, parent_gone), daemon=True,
                     name="watch-parent").start()
    metrics = Metrics()
    # the parent logs the summary line, from every child's totals
    svc = IngestService(settings.replace(summary_interval_s=0.0), metrics)
    try:
        await svc.start()
        while not svc.should_stop and not parent_gone.is_set():
            _report(svc, metrics, report, parent_gone)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(parent_gone.wait(), report_every_s)
    finally:
        await svc.stop()
        _report(svc, metrics, report, parent_gone)
    log.info("ingest child %s stopped%s", os.getpid(), " (crashed)" if svc.crashed else "")
    return 1 if svc.crashed else 0


def _report(svc: IngestService, metrics: Metrics, report: Connection, parent_gone: asyncio.Event) -> None:
    """Send one snapshot; a broken pipe means the parent is gone."""
    try:
        report.send_bytes(snapshot(metrics, svc.totals, partitions=len(svc.sources)))
    except OSError:
        parent_gone.set()


def _watch_parent(control: Connection, loop: asyncio.AbstractEventLoop, parent_gone: asyncio.Event) -> None:
    """Block on the control pipe; at its end, stop the child (and exit hard if that hangs)."""
    with contextlib.suppress(EOFError, OSError):
        while True:
            control.recv_bytes()
    with contextlib.suppress(RuntimeError):  # the loop has closed: the child is exiting anyway
        loop.call_soon_threadsafe(parent_gone.set)
    time.sleep(STOP_GRACE_S)
    os._exit(3)
