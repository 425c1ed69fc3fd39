"""Messages between the two stages of the live pipeline (``spikedetect.partial/v1``).

Stage 1 (one counter per input partition, the *source*) sends, per closed window and
service, the leaf counts it saw - split into chunks so no message grows past Kafka's
size limit - keyed by service, so every window of a service meets at one owner.
After the partials of a window it sends a *mark* with its watermark - and the oldest window
it still holds, so no owner closes that window before its partials arrive - to every
partition of the partials topic. Both are idempotent at the owner: a partial
replaces the same (source, window, service, chunk), a mark only moves forward.

The messages are the core's own :class:`~spikedetect.core.messages.Partial` (its ``part`` is
``(service, chunk)``) and :class:`~spikedetect.core.messages.Mark`; this module only encodes them.

>>> m = decode(encode_mark(source=3, wm_ms=120_000, n_sources=4))
>>> m.kind, m.source, m.wm_ms, m.n_sources
('mark', 3, 120000, 4)
>>> p = decode(next(encode_partials(1, ClosedWindow(60_000, {"ig": {("US", "feed", "app"): 2}})))[1])
>>> p.kind, p.source, p.ws_ms, p.part, p.window.counts
('partial', 1, 60000, ('ig', 0), {'ig': {('US', 'feed', 'app'): 2}})
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from spikedetect.core.counter import ClosedWindow, LeafKey
from spikedetect.core.messages import Mark, Message, Partial

CHUNK_ROWS = 4000


def encode_partials(source: int, window: ClosedWindow) -> Iterator[tuple[str, bytes]]:
    """(service, message) pairs for one source's closed window, chunked deterministically."""
    for service in sorted(window.counts):
        rows = sorted([r, c, s, n] for (r, c, s), n in window.counts[service].items())
        chunks = [rows[i:i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)] or [[]]
        for i, chunk in enumerate(chunks):
            yield service, orjson.dumps({"t": "p", "src": source, "ws": window.ws_ms, "svc": service,
                                         "c": i, "rows": chunk})


def encode_mark(source: int, wm_ms: int | None, n_sources: int, *, idle: bool = False,
                open_ws: int | None = None) -> bytes:
    return orjson.dumps({"t": "m", "src": source, "wm": wm_ms, "idle": idle, "n_src": n_sources, "open": open_ws})


def encode(mark: Mark) -> bytes:
    """A core :class:`Mark` as a message (partials: :func:`encode_partials`, chunked)."""
    return encode_mark(mark.source, mark.wm_ms, mark.n_sources, idle=mark.idle, open_ws=mark.open_ws)


class WireError(ValueError):
    """A message on the partials topic is not one of ours."""


def decode(blob: bytes) -> Message:
    try:
        obj: Any = orjson.loads(blob)
        if obj["t"] == "p":
            svc = str(obj["svc"])
            counts: dict[LeafKey, int] = {(str(r), str(c), str(s)): int(n) for r, c, s, n in obj["rows"]}
            return Partial(int(obj["src"]), ClosedWindow(int(obj["ws"]), {svc: counts}), (svc, int(obj["c"])))
        if obj["t"] == "m":
            wm = obj["wm"]
            open_ws = obj.get("open")
            return Mark(int(obj["src"]), None if wm is None else int(wm), idle=bool(obj["idle"]),
                        n_sources=int(obj["n_src"]), open_ws=None if open_ws is None else int(open_ws))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise WireError(f"not a spikedetect.partial/v1 message: {exc}") from exc
    raise WireError(f"unknown message type {obj.get('t')!r}")
