"""MultiSourceReplay: one counter per source, one scorer; lateness judged per source, as live."""

from __future__ import annotations

import zlib
from pathlib import Path

import orjson
import pytest
from tests.stream.streams import T0_MS, outage_stream

from spikedetect.core import DetectorConfig, IncidentEvent
from spikedetect.replay.multisource import MultiSourceReplay
from spikedetect.replay.runner import Replay


def _msg(ts_ms: int | None, region: str = "US/CA", **extra: object) -> bytes:
    obj = {"service": "ig", "region": region, "category": "feed", **extra}
    if ts_ms is not None:
        obj["ts"] = ts_ms
    return orjson.dumps(obj)


@pytest.fixture(scope="module")
def stream_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path: Path = tmp_path_factory.mktemp("ms") / "outage.jsonl"
    outage_stream(path, seed=5, days=1.5, spike_start_min=1500, spike_minutes=40)
    return path.read_bytes().splitlines()


def _single(lines: list[bytes], config: DetectorConfig) -> list[bytes]:
    events: list[IncidentEvent] = []
    r = Replay(config, on_incident=events.append)
    r.feed(lines)
    r.finish()
    return [e.to_json() for e in events]


def test_a_report_is_late_only_relative_to_its_own_source() -> None:
    cfg = DetectorConfig(watermark_quorum=1)  # lateness two windows; one report moves event time
    ahead = [_msg(T0_MS + 30 * 60_000)]
    behind = [_msg(T0_MS + 60_000)]  # 29 min older than the other source's newest report
    multi = MultiSourceReplay(cfg, sources=[0, 1])
    multi.feed(0, ahead)
    multi.feed(1, behind)
    multi.finish()
    assert (multi.summary.accepted, multi.summary.late) == (2, 0)
    single = Replay(cfg)
    single.feed(ahead + behind)
    single.finish()
    assert (single.summary.accepted, single.summary.late) == (1, 1)


def test_late_within_one_source_is_still_late_and_dead_lettered() -> None:
    dead: list[bytes] = []
    multi = MultiSourceReplay(DetectorConfig(watermark_quorum=1), sources=["p0"], on_dead_letter=dead.append)
    where = [{"partition": 0, "offset": 7}, {"partition": 0, "offset": 8}]
    multi.feed("p0", [_msg(T0_MS + 30 * 60_000), _msg(T0_MS)], where=where)
    multi.finish()
    assert multi.summary.late == 1
    letter = orjson.loads(dead[0])
    assert (letter["reason"], letter["offset"]) == ("late", 8)


def test_a_message_without_ts_takes_its_fallback_time() -> None:
    multi = MultiSourceReplay(DetectorConfig(), sources=[0])
    multi.feed(0, [_msg(None), _msg(None)], fallback_ts_ms=[T0_MS, None])
    multi.finish()
    assert multi.summary.accepted == 1
    assert multi.summary.rejected_by_reason == {"missing_ts": 1}


def test_one_source_gives_exactly_what_replay_gives(stream_lines: list[bytes]) -> None:
    cfg = DetectorConfig()
    events: list[IncidentEvent] = []
    multi = MultiSourceReplay(cfg, sources=[0], on_incident=events.append)
    for i in range(0, len(stream_lines), 5000):
        multi.feed(0, stream_lines[i : i + 5000])
    multi.finish()
    want = _single(stream_lines, cfg)
    assert [e.to_json() for e in events] == want
    assert any(orjson.loads(e)["type"] == "closed" for e in want)


def test_split_by_region_like_kafka_partitions_gives_the_same_incidents(stream_lines: list[bytes]) -> None:
    """Nothing is late in either judgement here, so per-source counting changes nothing."""
    cfg = DetectorConfig()
    parts: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    for line in stream_lines:
        parts[zlib.crc32(orjson.loads(line)["region"].encode()) % 3].append(line)
    events: list[IncidentEvent] = []
    multi = MultiSourceReplay(cfg, sources=[0, 1, 2, 3], on_incident=events.append)  # 3: an empty partition
    multi.end_source(3)
    pos = dict.fromkeys(parts, 0)
    while any(pos[p] < len(parts[p]) for p in parts):  # interleave unevenly, as fetches do
        for p, step in ((0, 3000), (1, 1700), (2, 900)):
            if pos[p] >= len(parts[p]):
                continue
            multi.feed(p, parts[p][pos[p] : pos[p] + step])
            pos[p] += step
            if pos[p] >= len(parts[p]):
                multi.end_source(p)
    multi.finish()
    got = sorted(e.to_json() for e in events)
    assert got == sorted(_single(stream_lines, cfg))
    assert multi.summary.accepted == len(stream_lines) - multi.summary.duplicates
    assert multi.scorer.stats.late_partials == 0


def test_an_unfinished_source_holds_windows_open_until_it_ends() -> None:
    multi = MultiSourceReplay(DetectorConfig(), sources=[0, 1])
    multi.feed(0, [_msg(T0_MS + m * 60_000) for m in range(30)])
    assert multi.scorer.stats.windows_closed == 0  # source 1 has said nothing yet
    multi.end_source(1)
    assert multi.scorer.stats.windows_closed > 0
    multi.finish()
    assert multi.summary.windows_closed == 30
