"""Stage 1 in child processes (``spikedetect worker --ingest-processes N``): start, watch, restart.

With ``ingest_processes`` > 0 the worker runs this service instead of the in-process
:class:`~spikedetect.stream.ingest.IngestService`: N children (``multiprocessing``, "spawn"
context: a fresh interpreter, none of the parent's event loop or Kafka clients), each an
ingest stage of its own (:mod:`spikedetect.stream.ingest_child`), in the app's ingest group.
Processes talk through Kafka only; the pipes between parent and child carry no data of the
stream, just the parent's liveness (parent → child) and the child's figures (child → parent,
read on a thread here so that a busy event loop never blocks a child's send, applied to the
worker's metrics by :class:`~spikedetect.stream.ingest_mirror.IngestMirror`).

A child that exits while the worker runs is restarted (after :func:`restart_delay_s`); its
partitions go to the other members of the group when its session times out, or back to it
when it rejoins, and re-reading from the committed offsets keeps the outputs exact, as for a
killed worker. On shutdown the parent closes the control pipes; each child commits and exits
(killed after ``stop_timeout_s``). If the parent dies the children see the same end of file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from mode import Service

from spikedetect import kafka_clients
from spikedetect.stream.ingest_child import child_main
from spikedetect.stream.ingest_mirror import IngestMirror
from spikedetect.stream.logs import log_every
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.settings import Settings
from spikedetect.stream.source_state import Totals

log = logging.getLogger("spikedetect.ingest")

REPORT_EVERY_S = 0.5


def restart_delay_s(quick_exits: int) -> float:
    """Seconds to wait before restarting a child, ``quick_exits``: how many times in a row it
    exited within a minute of its start (0: it had run longer): at once, then 1, 2, 4 ... 30 s.

    >>> [restart_delay_s(n) for n in (0, 1, 2, 3, 9)]
    [0.0, 1.0, 2.0, 4.0, 30.0]
    """
    return 0.0 if quick_exits <= 0 else min(30.0, 2.0 ** (quick_exits - 1))


@dataclass
class Child:
    """One ingest child process and the parent's ends of its pipes."""

    slot: int
    incarnation: int
    process: BaseProcess
    control: Connection  # parent → child: closed = stop
    report: Connection  # child → parent: snapshots
    started_at: float = field(default_factory=time.monotonic)


class IngestProcesses(Service):
    """Runs ``settings.ingest_processes`` ingest children and mirrors their figures."""

    def __init__(self, settings: Settings, metrics: Metrics, *,
                 open_incidents: Callable[[], int] | None = None, stop_timeout_s: float = 30.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics
        self.mirror = IngestMirror(metrics)
        self.open_incidents = open_incidents
        self.stop_timeout_s = stop_timeout_s
        self.children: dict[int, Child] = {}
        self.admin: AIOKafkaAdminClient | None = None  # the readiness probe asks the broker through it
        self._ctx = multiprocessing.get_context("spawn")
        self._incarnations = 0
        self._quick_exits: dict[int, int] = {}
        self._readers: dict[int, Connection] = {}  # incarnation → report pipe, shared with the thread
        self._readers_lock = threading.Lock()
        self._closing = threading.Event()
        self._reader_thread = threading.Thread(target=self._read_reports, daemon=True, name="ingest-reports")
        self._summarised = (time.monotonic(), Totals())

    async def on_start(self) -> None:
        self.admin = kafka_clients.admin(self.settings.connection())
        await self.admin.start()
        self._reader_thread.start()
        for slot in range(self.settings.ingest_processes):
            self._spawn(slot)

    async def on_stop(self) -> None:
        for child in list(self.children.values()):
            child.control.close()  # end of file: the child commits and exits
        deadline = time.monotonic() + self.stop_timeout_s
        while any(c.process.is_alive() for c in self.children.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for child in self.children.values():
            if child.process.is_alive():
                log.warning("ingest child %s did not stop within %.0fs; killing it", child.process.pid,
                            self.stop_timeout_s)
                child.process.kill()
            child.process.join(5)
        self._closing.set()
        self._reader_thread.join(5)
        if self.admin is not None:
            await self.admin.close()

    def _spawn(self, slot: int) -> None:
        """Start the child of ``slot`` (a new incarnation)."""
        control_r, control_w = self._ctx.Pipe(duplex=False)
        report_r, report_w = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=child_main, args=(self.settings, control_r, report_w, REPORT_EVERY_S),
                                 name=f"spikedetect-ingest-{slot}", daemon=True)
        proc.start()
        control_r.close()  # the child's ends: only the child holds them now
        report_w.close()
        self._incarnations += 1
        child = Child(slot, self._incarnations, proc, control_w, report_r)
        self.children[slot] = child
        with self._readers_lock:
            self._readers[child.incarnation] = report_r
        log.info("ingest child %s started (slot %s of %s)", proc.pid, slot, self.settings.ingest_processes)

    @Service.task
    async def _supervise(self) -> None:
        """Restart children that exited while the worker runs."""
        while not self.should_stop:
            await self.sleep(0.5)
            for slot, child in list(self.children.items()):
                if self.should_stop or child.process.is_alive():
                    continue
                ran_s = time.monotonic() - child.started_at
                quick = self._quick_exits[slot] = self._quick_exits.get(slot, 0) + 1 if ran_s < 60 else 0
                delay_s = restart_delay_s(quick)
                log.warning("ingest child %s exited with code %s after %.1fs; restarting it in %.0fs",
                            child.process.pid, child.process.exitcode, ran_s, delay_s)
                child.control.close()
                await self.sleep(delay_s)
                if not self.should_stop:
                    self._spawn(slot)
                    self.metrics.ingest_restarts.inc()

    def running(self) -> tuple[int, int]:
        """(children alive now, children wanted): the readiness check of ``/ready``."""
        alive = sum(1 for c in self.children.values() if c.process.is_alive())
        return alive, self.settings.ingest_processes

    @Service.task
    async def _summaries(self) -> None:
        await log_every(self, self.settings.summary_interval_s, self.summary, log)

    def _read_reports(self) -> None:
        """The children's snapshots, read on this thread; a pipe at its end: that child is done."""
        while not self._closing.is_set():
            with self._readers_lock:
                readers = dict(self._readers)
            if not readers:
                time.sleep(0.1)
                continue
            by_conn = {id(conn): inc for inc, conn in readers.items()}
            for conn in wait(list(readers.values()), timeout=0.2):
                assert isinstance(conn, Connection)
                inc = by_conn[id(conn)]
                try:
                    self.mirror.apply(inc, conn.recv_bytes())
                except (EOFError, OSError):
                    self.mirror.forget(inc)
                    with self._readers_lock:
                        self._readers.pop(inc, None)
                    conn.close()
                except Exception:  # figures only: never stop reading the other children
                    log.exception("unreadable figures from ingest child (incarnation %s)", inc)

    def summary(self) -> str:
        """The summary line of :class:`~spikedetect.stream.ingest.IngestService`, over every child."""
        now = time.monotonic()
        then, last = self._summarised
        open_incidents = "na"
        with contextlib.suppress(Exception):  # a summary must never stop the worker
            open_incidents = str(self.open_incidents()) if self.open_incidents is not None else "na"
        totals = self.mirror.totals()
        self._summarised = (now, totals)
        return totals.summary_since(last, now - then, lag=self.mirror.lag(), open_incidents=open_incidents,
                                    partitions=self.mirror.partitions())
