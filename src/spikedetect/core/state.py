"""Serialising scorer state: whole snapshots and per-key records.

Everything is plain JSON (orjson) checked on the way in: model state never passes
through pickle, so state read back from a topic cannot execute anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import ClosedWindow
from spikedetect.core.errors import StateError
from spikedetect.core.incidents import Tracker
from spikedetect.core.keyspace import ServiceKey
from spikedetect.core.scorer import Scorer, ScorerStats

STATE_VERSION = 1


def export_key(scorer: Scorer, sk: ServiceKey) -> dict[str, Any]:
    """One key's baseline row, incident tracker and last-seen window."""
    ks = scorer.keyspace
    row = ks.index[sk]
    tracker = scorer.trackers.get(sk)
    out = {
        "b": ks.baseline.export_row(row),
        "t": tracker.to_dict() if tracker is not None else None,
        "seen": int(ks.last_seen[row]),
        "closed": int(ks.closed_ws[row]),
        "mute": int(ks.mute_until[row]),
    }
    shares = scorer.signals.composition.export_key(sk) if scorer.signals is not None else None
    if shares is not None:  # a busy key's category shares (composition shifts, issue 18)
        out["c"] = shares
    return out


def import_key(scorer: Scorer, sk: ServiceKey, record: dict[str, Any]) -> None:
    """Load a record from :func:`export_key` (creating the key and its ancestors)."""
    try:
        ks = scorer.keyspace
        row = ks.row(*sk)
        ks.baseline.import_row(row, record["b"])
        ks.last_seen[row] = int(record["seen"])
        ks.closed_ws[row] = int(record.get("closed", ks.closed_ws[row]))
        ks.mute_until[row] = int(record.get("mute", ks.mute_until[row]))
        if record.get("t") is not None:
            scorer.trackers[sk] = Tracker.from_dict(record["t"])
        else:
            scorer.trackers.pop(sk, None)
        if record.get("c") is not None and scorer.signals is not None:
            scorer.signals.composition.import_key(sk, record["c"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"bad key record for {sk}: {exc}") from exc


def snapshot_scorer(scorer: Scorer) -> dict[str, Any]:
    ks = scorer.keyspace
    return {
        "version": STATE_VERSION,
        "params_hash": scorer.config.params_hash,
        "keys": [[svc, key, export_key(scorer, (svc, key))] for svc, key in ks.keys],
        "watermarks": [[s, wm] for s, wm in scorer.watermarks.items()],
        "idle": sorted(scorer.idle_sources, key=repr),
        "pending": [
            [ws, [[src, part_id, {svc: [[*k, n] for k, n in c.items()] for svc, c in part.items()}]
                  for (src, part_id), part in pend.by_source.items()]]
            for ws, pend in sorted(scorer.pending.items())
        ],
        "next_ws": scorer.next_ws,
        "stats": dict(scorer.stats.__dict__),
        **({"signals": scorer.signals.to_dict()} if scorer.signals is not None else {}),
    }


def restore_scorer(config: DetectorConfig, snap: dict[str, Any]) -> Scorer:
    if snap.get("version") != STATE_VERSION:
        raise StateError(f"state version {snap.get('version')!r} is not {STATE_VERSION}")
    if snap.get("params_hash") != config.params_hash:
        raise StateError("state was written with another detector configuration")
    scorer = Scorer(config, sources=())
    for svc, key, record in snap["keys"]:
        import_key(scorer, (svc, key), record)
    for src, wm in snap["watermarks"]:
        scorer.watermarks[src] = wm
    scorer.idle_sources = set(snap["idle"])
    for ws, parts in snap["pending"]:
        for src, part_id, by_svc in parts:
            counts = {svc: {(r, c, s): n for r, c, s, n in rows} for svc, rows in by_svc.items()}
            scorer.add_partial(src, ClosedWindow(ws, counts), _hashable(part_id))
    scorer.next_ws = snap["next_ws"]
    scorer.stats = ScorerStats(**snap["stats"])
    if scorer.signals is not None and "signals" in snap:
        try:
            scorer.signals.load(snap["signals"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"bad signal state: {exc}") from exc
    return scorer


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def dumps(obj: Any) -> bytes:
    """orjson, copied into an exactly-sized bytes object.

    orjson's result keeps its over-allocated output buffer (about 4-8 KB however short the
    JSON); a store that keeps 100k key records would hold most of a gigabyte of slack.
    """
    return bytes(memoryview(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)))


def loads(blob: bytes) -> Any:
    try:
        return orjson.loads(blob)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"state is not valid JSON: {exc}") from exc


def key_record_bytes(scorer: Scorer, sk: ServiceKey) -> bytes:
    return dumps(export_key(scorer, sk))


def _finite(arr: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(arr, dtype=np.float64))))
