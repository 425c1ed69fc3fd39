"""Producer and consumer tools around the live pipeline: ``produce`` and ``tail``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from spikedetect import kafka_clients
from spikedetect.files.faults import Fault
from spikedetect.files.progress import Progress
from spikedetect.files.sources import BatchReader, count_bytes, open_binary
from spikedetect.stream.settings import Settings


async def produce_file(settings: Settings, source: str, topic: str, *, rate: float | None = None,
                       key_field: str = "region", progress: bool = False,
                       faults: list[Fault] | None = None) -> int:
    """Send every line of a JSONL file to ``topic``; returns the number of messages sent. A truncated or
    corrupt ``.gz`` ends the input early: what was read is sent and the fault added to ``faults``."""
    producer = kafka_clients.producer(settings.connection(), enable_idempotence=True, acks="all",
                                      linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    sent = 0
    started = time.monotonic()
    total = count_bytes(source)
    try:
        with Progress(progress, "produce", "msgs") as update, open_binary(source) as stream:
            reader = BatchReader(stream, "<stdin>" if source == "-" else source, 5000)
            for batch in reader:
                for line in batch:
                    key = _key(line, key_field)
                    await producer.send(topic, line, key=key)
                    sent += 1
                    if rate:
                        ahead = sent / rate - (time.monotonic() - started)
                        if ahead > 0.01:
                            await asyncio.sleep(ahead)
                update(reader.position(), total, sent)
            await producer.flush()
        if reader.fault is not None and faults is not None:
            faults.append(reader.fault)
    finally:
        await producer.stop()
    return sent


def _key(line: bytes, key_field: str) -> bytes | None:
    if key_field == "none":
        return None
    try:
        value = orjson.loads(line).get(key_field)
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return str(value).encode() if value is not None else None


def format_signal(event: dict[str, Any]) -> str:
    """One line for a composition shift or an ingest gap (issue 18)."""
    head = f"{event.get('updated_at')} {event['type'].upper():8} {event['service']} {event['region']} [{event['level']}]"
    span = f"since {event['opened_at']}" + (f" until {event['closed_at']}" if event.get("closed_at") else "")
    if event["kind"] == "ingest_gap":
        what = (f"INGEST GAP: no reports from {', '.join(event.get('sources') or [])} for "
                f"{event.get('missing_windows')} windows, {event.get('expected_reports', 0):g} expected")
    else:
        obs, exp = event.get("categories") or {}, event.get("expected_categories") or {}
        moved = ", ".join(f"{c} {obs.get(c, 0):.0%} (expected {exp.get(c, 0):.0%})" for c in event.get("rose") or [])
        what = f"COMPOSITION: rose {moved}; fell {', '.join(event.get('fell') or []) or '-'}"
        members = event.get("regions") or []
        if len(members) > 1:
            what += f"; on {', '.join(m['region'] for m in members[:6])}" + (" ..." if len(members) > 6 else "")
    return f"{head} {what} (score {event.get('score', 0):g}) {span}; id {event['incident_id']}#{event['seq']}"


def format_incident(event: dict[str, Any], regions: bool = False) -> str:
    """One readable line for an incident event; an outage (v2) adds its affected regions: a count
    and the first few, or (``regions``) one indented line per member region. Composition shifts
    and ingest gaps (``kind``) are one line each."""
    if event.get("kind") in ("composition", "ingest_gap"):
        return format_signal(event)
    cats = ", ".join(f"{k} {v:.0%}" for k, v in sorted(event.get("categories", {}).items(),
                                                           key=lambda kv: -kv[1])[:3])
    srcs = ", ".join(f"{k} {v:.0%}" for k, v in sorted(event.get("sources", {}).items(),
                                                           key=lambda kv: -kv[1])[:2])
    head = (f"{event.get('updated_at') or event['detected_at']} {event['type'].upper():8} {event['service']} {event['region']} "
            f"[{event['level']}] observed {event['observed']:g} vs expected {event['expected']:g} "
            f"(score {event['score']:g}) peak {event['peak_count']:g}")
    tail = f" since {event['opened_at']}"
    if event.get("closed_at"):
        tail += f" until {event['closed_at']}"
    line = f"{head}{tail}; {cats}; {srcs}; id {event['incident_id']}#{event['seq']}"
    members = event.get("regions")
    if not isinstance(members, list):
        return line
    countries = ",".join(event.get("countries") or [])
    line += f"\n    {len(members)} regions in {countries or 'global'}"
    if not regions:
        names = [m["region"] for m in members[:6]]
        return line + ": " + ", ".join(names) + (" ..." if len(members) > 6 else "")
    for m in members:
        state = f"closed {m['closed_at']}" if m.get("closed_at") else "affected"
        line += (f"\n    - {m['region']} [{m['level']}] opened {m['opened_at']} detected {m['detected_at']} "
                 f"{state}; observed {m['observed']:g} vs expected {m['expected']:g}, peak {m['peak_count']:g}")
    return line


async def tail_incidents(settings: Settings, topic: str, *, from_beginning: bool = False, as_json: bool = False,
                         max_events: int | None = None, timeout_s: float | None = None,
                         regions: bool = False) -> int:
    consumer = kafka_clients.consumer(settings.connection(), topic, group_id=None,
                                      auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    seen = 0
    last = time.monotonic()
    try:
        while max_events is None or seen < max_events:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and timeout_s is not None and time.monotonic() - last > timeout_s:
                break
            for records in batch.values():
                for rec in records:
                    last = time.monotonic()
                    seen += 1
                    if as_json:
                        print(rec.value.decode(), flush=True)
                    else:
                        try:
                            print(format_incident(orjson.loads(rec.value), regions), flush=True)
                        except (orjson.JSONDecodeError, KeyError, TypeError):
                            print(f"(unreadable event) {rec.value[:200]!r}", flush=True)
    finally:
        await consumer.stop()
    return seen
