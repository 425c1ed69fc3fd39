"""Structured logging: one ``key=value`` line per record, UTC timestamps."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from mode import Service


def _utc(secs: float | None = None) -> time.struct_time:
    return time.gmtime(secs)


class _Formatter(logging.Formatter):
    converter = staticmethod(_utc)

    def format(self, record: logging.LogRecord) -> str:
        ts = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        line = f"ts={ts} level={record.levelname.lower()} logger={record.name} msg={record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if level.lower() != "warn" else "WARNING")
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


async def log_every(service: Service, interval_s: float, line: Callable[[], str], logger: logging.Logger) -> None:
    """Log ``line()`` every ``interval_s`` while ``service`` runs (0 or less: never); the ingest
    stage's ``summary`` lines, in process or over its child processes."""
    if interval_s <= 0:
        return
    while not service.should_stop:
        await service.sleep(interval_s)
        if not service.should_stop:
            logger.info("%s", line())
