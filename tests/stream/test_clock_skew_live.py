"""Bad clocks and quiet input on the real broker, 4 input partitions (issue 13).

* 0.1 % of the bundled sample re-sent with ts up to an hour ahead, at random positions: no
  report is late, every window count is the clean replay's plus the skewed reports that were
  counted in the window their ts names, and the incidents are the clean run's.
* A burst then silence, with production idle settings (``idle_rate`` 1): one partition's
  producer runs 10 minutes fast and one partition stays empty. Every window summary equals
  the input's counts after event_id dedupe, nothing is late and no partial is late. Then the
  empty partition delivers old reports - a forced ``late_partial`` - and the late-partial
  metric equals what the dead-letter topic got.
"""

from __future__ import annotations

import gzip
import random
import time
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from spikedetect.core.timefmt import format_ts_ms, parse_ts_ms
from spikedetect.stream.scrape import scrape
from tests.stream.harness import LiveRun, Out, free_port, replay_lines
from tests.stream.streams import outage_stream

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]
HOUR = 3_600_000
MIN = 60_000


def keys_of(service: str, region: str) -> list[tuple[str, str]]:
    parts = region.split("/")
    return [(service, "*")] + [(service, "/".join(parts[:n])) for n in range(1, len(parts) + 1)]


def brute_counts(lines: list[bytes]) -> dict[tuple[str, str, int], float]:
    """Reports per (service, key, window) at every region level, after event_id dedupe per window."""
    seen: set[tuple[int, str]] = set()
    out: Counter[tuple[str, str, int]] = Counter()
    for line in lines:
        obj = orjson.loads(line)
        ts = parse_ts_ms(obj["ts"])
        assert ts is not None
        ws = ts - ts % MIN
        if "event_id" in obj:
            if (ws, obj["event_id"]) in seen:
                continue
            seen.add((ws, obj["event_id"]))
        for svc, key in keys_of(obj["service"], obj["region"]):
            out[(svc, key, ws)] += 1
    return {k: float(v) for k, v in out.items()}


def identity(events: list[bytes]) -> list[tuple[Any, ...]]:
    return sorted((o["incident_id"], o["type"], o["seq"], o["opened_at"], o["closed_at"])
                  for o in map(orjson.loads, events))


@pytest.fixture
def run(kafka_bootstrap: str, tmp_path: Path) -> Iterator[LiveRun]:
    r = LiveRun(kafka_bootstrap, tmp_path)
    r.create_input()
    yield r
    r.stop_all()
    r.delete_topics()


def test_skewed_clocks_live_leave_valid_reports_and_incidents_alone(run: LiveRun, tmp_path: Path) -> None:
    lines = gzip.decompress(resources.files("spikedetect.data").joinpath("sample-reports.jsonl.gz")
                            .read_bytes()).splitlines()
    want_events, want_counts = replay_lines(lines, tmp_path)
    rng = random.Random(13)
    values = list(lines)
    skewed: dict[str, bytes] = {}
    for pos in sorted(rng.sample(range(len(lines)), len(lines) // 1000), reverse=True):
        obj = orjson.loads(lines[pos])
        ts = parse_ts_ms(obj["ts"])
        assert ts is not None
        obj["ts"], obj["event_id"] = format_ts_ms(ts + rng.randint(1, HOUR)), f"skew-{pos}"
        skewed[obj["event_id"]] = orjson.dumps(obj)
        values.insert(pos, skewed[obj["event_id"]])
    run.produce(values, key=lambda v: str(orjson.loads(v)["region"]).encode())
    run.start_worker()
    got_events = run.wait_for_incidents(len(want_events), timeout_s=400)
    dead = run.read("dlq")
    reasons = Counter(d.headers["spikedetect.reason"].decode() for d in dead)
    assert set(reasons) <= {"ts_skewed", "ts_too_far_future"}, reasons  # nothing late, no late_partial
    dropped = {orjson.loads(d.value)["event_id"] for d in dead}
    assert dropped <= set(skewed)
    counted = [skewed[e] for e in skewed if e not in dropped]
    want = Counter(want_counts)
    want.update(brute_counts(counted))
    got = run.wait_for_windows(dict(want), timeout_s=300)
    assert got == dict(want)
    assert identity(got_events) == identity(want_events)


def test_burst_then_silence_loses_nothing_and_late_partials_are_counted(kafka_bootstrap: str, tmp_path: Path) -> None:
    run = LiveRun(kafka_bootstrap, tmp_path, extra={
        "SPIKEDETECT_IDLE_RATE": "1",  # production: an idle partition's watermark follows the wall clock
        "SPIKEDETECT_LATENESS_MS": "20000",  # (so the last windows close 20 s after the silence)
        "SPIKEDETECT_IDLE_EMPTY_MS": "3000",
    })
    run.create_input()
    web = free_port()
    try:
        path = tmp_path / "outage.jsonl"
        outage_stream(path, seed=3, days=1.0, spike_start_min=900, spike_minutes=30,
                      services=("instagram", "facebook", "whatsapp"))
        records: list[Out] = []
        sent: list[bytes] = []
        for i, line in enumerate(path.read_bytes().splitlines()):
            obj = orjson.loads(line)
            obj["event_id"] = f"e{i}"
            p = i % 3  # partitions 0-2; partition 3 gets nothing
            if p == 2:  # this producer's clock is 10 minutes fast
                ts = parse_ts_ms(obj["ts"])
                assert ts is not None
                obj["ts"] = format_ts_ms(ts + 10 * MIN)
            value = orjson.dumps(obj)
            sent.append(value)
            records.append(Out(value, partition=p))
            if i % 997 == 0:  # a re-send: counted once
                sent.append(value)
                records.append(Out(value, partition=p))
        want = brute_counts(sent)
        run.start_worker(web_port=web)
        run.wait_for_log("ingest assigned partitions")
        run.produce_records(records)  # the burst; then silence
        got = run.wait_for_windows(want, timeout_s=300)
        assert got == want
        dead = run.read("dlq")
        assert dead == [], Counter(d.headers.get("spikedetect.reason") for d in dead)

        # the empty partition now delivers reports of a window every owner closed long ago
        old = [orjson.dumps({"ts": format_ts_ms(1_795_651_200_000 + 5 * MIN + i), "service": "instagram",
                             "region": "US/CA/Los Angeles", "category": "login"}) for i in range(5)]
        run.produce_records([Out(v, partition=3) for v in old])
        deadline = time.monotonic() + 240  # idle, then a window of wall time at idle_rate 1
        late: list[dict[str, Any]] = []
        while not late and time.monotonic() < deadline:
            time.sleep(2)
            late = [orjson.loads(d.value) for d in run.read("dlq")
                    if d.headers.get("spikedetect.reason") == b"late_partial"]
        assert sum(d["reports"] for d in late) == 5
        assert scrape("spikedetect_late_partial_reports_total", web, timeout_s=10) == 5.0
    finally:
        run.stop_all()
        run.delete_topics()
