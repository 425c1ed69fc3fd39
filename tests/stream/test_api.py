"""The HTTP API of real workers on the real broker.

One module-scoped run: two workers (4 partials partitions) and two services, one with
an outage that closed and one with an outage still open when the stream ends, plus
malformed, duplicate and late reports. ``SPIKEDETECT_IDLE_RATE=1`` keeps event time
moving with the wall clock once the stream ends, so the open incident stays open.
"""

from __future__ import annotations

import heapq
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiokafka.partitioner import murmur2
from prometheus_client.parser import text_string_to_metric_families

from spikedetect.core.detectors import BASELINE_SOURCES
from spikedetect.core.timefmt import format_ts_ms, parse_ts_ms
from spikedetect.stream.live import LiveView
from spikedetect.stream.web import BrokerProbe, readiness
from tests.stream.harness import LiveRun, free_port
from tests.stream.streams import T0_MS, outage_stream

CLOSED_SVC, OPEN_SVC = "instagram", "spotify"  # partials partitions 2 and 1 of 4
PARTITIONS = 4
N_GARBAGE, N_LATE, DUP_EVERY = 6, 5, 997


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def http(port: int, path: str, method: str = "GET") -> Reply:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return Reply(resp.status, dict(resp.headers), resp.read().decode())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read().decode())


def owner_partition(service: str) -> int:
    return (murmur2(service.encode()) & 0x7FFFFFFF) % PARTITIONS


@dataclass
class Pair:
    run: LiveRun
    ports: list[int]
    partitions: list[list[int]]  # per worker, from /ready
    urls: list[str]  # per worker, the X-Spikedetect-Worker of its own answers
    produced: int
    ready_seen: list[Reply] = field(default_factory=list)

    def owner_of(self, service: str) -> int:
        q = owner_partition(service)
        return next(i for i, parts in enumerate(self.partitions) if q in parts)


def scenario(workdir: Path) -> list[bytes]:
    """Two services' streams merged by time, with garbage, repeated and late reports."""
    a, b = workdir / "closed.jsonl", workdir / "open.jsonl"
    outage_stream(a, seed=5, days=1.2, spike_start_min=1500, spike_minutes=30, services=(CLOSED_SVC,))
    outage_stream(b, seed=6, days=1.2, spike_start_min=1680, spike_minutes=100, services=(OPEN_SVC,))
    merged = heapq.merge(
        a.read_bytes().splitlines(),
        b.read_bytes().splitlines(),
        key=lambda line: orjson.loads(line)["ts"][:16],
    )
    lines: list[bytes] = []
    for i, line in enumerate(merged):
        lines.append(line)
        if i % DUP_EVERY == 0:
            lines.append(line)  # same event_id, same key: a duplicate
        if i % 10_000 == 0 and len([x for x in lines if not x.startswith(b'{"')]) < N_GARBAGE:
            lines.append(b"not json %d" % i)
    while sum(not x.startswith(b'{"') for x in lines) < N_GARBAGE:
        lines.append(b"[1, 2]")
    for k in range(N_LATE):  # a day behind the watermark of the partition they land on
        lines.append(
            orjson.dumps(
                {
                    "ts": format_ts_ms(T0_MS + 600_000 + k),
                    "service": CLOSED_SVC,
                    "region": "US/CA/Los Angeles",
                    "category": "feed",
                    "event_id": f"late-{k}",
                }
            )
        )
    return lines


def _key(value: bytes) -> bytes:
    try:
        return str(orjson.loads(value)["region"]).encode()
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return b"garbage"


def _wait(what: str, check: Any, run: LiveRun, timeout_s: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run.assert_alive()
        got = check()
        if got:
            return got
        time.sleep(1.5)
    raise AssertionError(f"timed out waiting for {what}\n{run.log_tail()}")


@pytest.fixture(scope="module")
def pair(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    workdir = tmp_path_factory.mktemp("api")
    run = LiveRun(
        kafka_bootstrap, workdir, partials_partitions=PARTITIONS, extra={"SPIKEDETECT_IDLE_RATE": "1"}
    )
    run.create_input()
    ports = [free_port(), free_port()]
    for port in ports:
        run.start_worker(port)
    try:
        ready_seen: list[Reply] = []

        def split() -> list[Reply] | None:
            replies = []
            for port in ports:
                try:
                    replies.append(http(port, "/ready"))
                except OSError:
                    return None  # not listening yet
            ready_seen.extend(replies)
            parts = [r.json["checks"]["recovery"]["partitions"] for r in replies]
            ok = all(r.status == 200 for r in replies) and all(parts)
            return (
                replies if ok and sorted(p for ps in parts for p in ps) == list(range(PARTITIONS)) else None
            )

        replies = _wait("both workers ready with the partitions split", split, run, timeout_s=120)
        time.sleep(3)  # let the assignment settle (another rebalance would only delay the data)
        replies = _wait("a stable split", split, run, timeout_s=60)
        lines = scenario(workdir)
        run.produce(lines, key=_key)
        pair = Pair(
            run,
            ports,
            [r.json["checks"]["recovery"]["partitions"] for r in replies],
            [r.headers["X-Spikedetect-Worker"] for r in replies],
            len(lines),
            ready_seen,
        )

        def settled() -> bool:
            for port in ports:
                closed = http(port, f"/incidents?state=closed&service={CLOSED_SVC}").json["incidents"]
                opened = http(port, f"/incidents?state=open&service={OPEN_SVC}").json["incidents"]
                # the open outage has reached the global key among its regions
                if not closed or not opened or not any(m["region"] == "*" for i in opened for m in i["regions"]):
                    return False
            series = http(ports[0], f"/series/{OPEN_SVC}/%2A").json
            return bool(series.get("windows")) and series["windows"][-1]["observed"] > 100

        _wait("a closed and an open incident on both workers", settled, run)
        time.sleep(3)
        yield pair
    finally:
        run.stop_all()


def _incidents_topic(run: LiveRun) -> dict[str, list[dict[str, Any]]]:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for raw in run.incidents():
        e = orjson.loads(raw)
        by_id.setdefault(e["incident_id"], []).append(e)
    return by_id


# -- readiness and liveness ---------------------------------------------------------------
@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_ready_after_recovery_and_health(pair: Pair) -> None:
    for i, port in enumerate(pair.ports):
        health = http(port, "/health")
        assert health.status == 200 and health.json == {"status": "ok"}
        ready = http(port, "/ready")
        assert ready.status == 200, ready.text
        checks = ready.json["checks"]
        assert {name: c["ok"] for name, c in checks.items()} == {
            "recovery": True,
            "broker": True,
            "incidents": True,
        }
        assert checks["recovery"]["partitions"] == pair.partitions[i]
    assert sorted(p for ps in pair.partitions for p in ps) == list(range(PARTITIONS))
    for reply in pair.ready_seen:  # whatever was seen while starting: 200, or 503 with reasons
        assert reply.status in (200, 503)
        assert (reply.status == 503) == ("reason" in reply.json), reply.text


async def test_ready_is_503_with_reasons_until_recovered() -> None:
    """The readiness checks themselves, on a worker that is still recovering its tables."""
    recovery = SimpleNamespace(
        completed=SimpleNamespace(is_set=lambda: False), active_remaining_total=lambda: 42
    )
    app = SimpleNamespace(
        tables=SimpleNamespace(recovery=recovery),
        in_recovery=True,
        rebalancing=False,
        assignor=SimpleNamespace(assigned_actives=lambda: set()),
    )
    rt = SimpleNamespace(
        settings=SimpleNamespace(partials_topic="p"), ingest=None, follower=None, live=LiveView(60_000)
    )
    ok, checks = await readiness(app, rt, BrokerProbe(rt))
    assert not ok
    assert not checks["recovery"]["ok"] and "42 changelog records" in checks["recovery"]["detail"]
    assert not checks["broker"]["ok"] and not checks["incidents"]["ok"]


# -- incidents ------------------------------------------------------------------------------------
@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_incident_list_and_filters(pair: Pair) -> None:
    topic = _incidents_topic(pair.run)
    port_a, port_b = pair.ports
    every = http(port_a, "/incidents").json
    assert http(port_b, "/incidents").json["incidents"] == every["incidents"], "both workers list the same"
    assert {i["incident_id"] for i in every["incidents"]} == set(topic)
    for item in every["incidents"]:
        events = topic[item["incident_id"]]
        assert item["seq"] == events[-1]["seq"] and item["events"] == len(events)
        assert item["state"] == ("closed" if events[-1]["type"] == "closed" else "open")
    until = [i["active_until"] for i in every["incidents"]]
    assert until == sorted(until, reverse=True), "most recently active first"

    opened = http(port_a, "/incidents?state=open").json["incidents"]
    closed = http(port_b, "/incidents?state=closed").json["incidents"]
    assert (
        opened and {i["state"] for i in opened} == {"open"} and {i["service"] for i in opened} == {OPEN_SVC}
    )
    assert (
        closed
        and {i["state"] for i in closed} == {"closed"}
        and {i["service"] for i in closed} == {CLOSED_SVC}
    )
    assert len(opened) + len(closed) == every["count"]
    assert all(i["duration_ms"] >= 30 * 60_000 for i in opened), "open since the outage began"

    by_service = http(port_a, f"/incidents?service={CLOSED_SVC}").json["incidents"]
    assert {i["incident_id"] for i in by_service} == {i["incident_id"] for i in closed}
    us = http(port_a, "/incidents?region=US").json["incidents"]
    assert {(i["service"], i["region"]) for i in us} == {(CLOSED_SVC, "US"), (OPEN_SVC, "US")}
    both = http(port_b, f"/incidents?region=US&service={OPEN_SVC}&state=open").json["incidents"]
    assert [(i["service"], i["region"]) for i in both] == [(OPEN_SVC, "US")]
    # an outage is found by any of its regions, and lists them
    city = http(port_a, f"/incidents?region={quote('US/CA/Los Angeles', safe='')}").json["incidents"]
    assert {i["incident_id"] for i in city} == {i["incident_id"] for i in us}
    assert all("US/CA/Los Angeles" in {m["region"] for m in i["regions"]} for i in city)
    assert http(port_a, "/incidents?limit=1").json["count"] == 1

    last_close = max(parse_ts_ms(i["closed_at"]) or 0 for i in closed)
    after = http(port_a, f"/incidents?since={last_close + 60_000}").json["incidents"]
    assert {i["incident_id"] for i in after} == {i["incident_id"] for i in opened}, "closed ones end before"
    iso = quote(format_ts_ms(last_close))
    at = http(port_b, f"/incidents?since={iso}&state=closed").json["incidents"]
    assert at and all(i["closed_at"] == format_ts_ms(last_close) for i in at)


@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_one_incident_with_its_history(pair: Pair) -> None:
    topic = _incidents_topic(pair.run)
    for port in pair.ports:
        for incident_id, events in topic.items():
            got = http(port, f"/incidents/{incident_id}")
            assert got.status == 200, got.text
            body = got.json
            assert body["history"] == events, "every event of the incident, oldest first"
            assert body["incident_id"] == incident_id and body["seq"] == events[-1]["seq"]
            assert body["history"][0]["type"] == "opened"
            assert body["state"] == ("closed" if events[-1]["type"] == "closed" else "open")
    assert any(e[-1]["type"] == "closed" for e in topic.values()) and any(len(e) > 1 for e in topic.values())


# -- series ---------------------------------------------------------------------------------------
def _check_rows(
    rows: list[dict[str, Any]], counts: dict[tuple[str, str, int], float], service: str, region: str
) -> None:
    for row in rows:
        assert row["window_start"] == format_ts_ms(row["ws_ms"])
        assert row["observed"] == counts.get((service, region, row["ws_ms"]), 0.0), row
        assert row["expected"] >= 0 and row["baseline"] in BASELINE_SOURCES
        b = row["breakdown"]
        assert b is not None, "the retained windows of this small keyspace keep their breakdown"
        if row["observed"]:
            assert sum(b["categories"].values()) == row["observed"]
            assert sum(b["sources"].values()) == row["observed"]
            if region.count("/") < 2:  # cities have no children
                assert sum(c["reports"] for c in b["children"]) == row["observed"]


@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_series_since_until_and_breakdown(pair: Pair) -> None:
    counts = pair.run.window_counts()
    port = pair.ports[pair.owner_of(OPEN_SVC)]
    full = http(port, f"/series/{OPEN_SVC}/%2A")
    assert full.status == 200, full.text
    rows = full.json["windows"]
    assert len(rows) >= 200 and full.json["window_ms"] == 60_000
    assert [r["ws_ms"] for r in rows] == list(range(rows[0]["ws_ms"], rows[-1]["ws_ms"] + 1, 60_000))
    _check_rows(rows, counts, OPEN_SVC, "*")
    spike = [r for r in rows if r["observed"] > 100]
    assert spike and {c["region"] for c in spike[-1]["breakdown"]["children"]} >= {"US"}

    since, until = rows[10]["ws_ms"], rows[40]["ws_ms"]
    part = http(port, f"/series/{OPEN_SVC}/%2A?since={since}&until={quote(format_ts_ms(until))}").json[
        "windows"
    ]
    assert part == rows[10:40], "since is inclusive, until exclusive"
    for region in ("US/CA", "US/CA/Los Angeles", "IN"):
        encoded = http(port, f"/series/{OPEN_SVC}/{quote(region, safe='')}?since={since}")
        raw = http(port, f"/series/{OPEN_SVC}/{quote(region)}?since={since}")  # slashes as they are
        assert encoded.status == raw.status == 200
        assert encoded.json == raw.json and encoded.json["region"] == region
        _check_rows(encoded.json["windows"], counts, OPEN_SVC, region)


@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_series_of_a_key_owned_by_the_other_worker(pair: Pair) -> None:
    counts = pair.run.window_counts()
    for service in (CLOSED_SVC, OPEN_SVC):
        owner = pair.owner_of(service)
        answers = [http(port, f"/series/{service}/US%2FNY") for port in pair.ports]
        for reply in answers:
            assert reply.status == 200, reply.text
            assert reply.headers["X-Spikedetect-Worker"] == pair.urls[owner], "answered by the owner"
            assert reply.json["partition"] == owner_partition(service)
        assert answers[0].json == answers[1].json
        _check_rows(answers[0].json["windows"], counts, service, "US/NY")
        missing = [http(port, f"/series/{service}/XX%2FNowhere") for port in pair.ports]
        assert [m.status for m in missing] == [404, 404]
        assert all(m.headers["X-Spikedetect-Worker"] == pair.urls[owner] for m in missing)


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_bad_parameters_unknown_ids_and_methods(pair: Pair) -> None:
    port = pair.ports[0]
    bad = {
        "/incidents?state=bogus": "state",
        "/incidents?since=yesterday": "since",
        "/incidents?since=2026-13-45T00:00:00Z": "since",
        "/incidents?limit=0": "limit",
        "/incidents?sevice=instagram": "unknown parameter",
        "/incidents?state=open&state=closed": "2 times",
        f"/series/{OPEN_SVC}/%2A?until=soon": "until",
        f"/series/{OPEN_SVC}/%2A?since=1795700000000&until=1795600000000": "since is after until",
        "/incidents/some-id?x=1": "unknown parameter",
    }
    for path, words in bad.items():
        reply = http(port, path)
        assert reply.status == 400, (path, reply.text)
        assert words in reply.json["error"] and reply.json["status"] == 400
    for path in ("/incidents/inc-doesnotexist", f"/series/{OPEN_SVC}/ZZ", "/series/no-such-service/%2A"):
        reply = http(port, path)
        assert reply.status == 404, (path, reply.text)
        assert reply.json["error"]
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/incidents", "/incidents/x", f"/series/{OPEN_SVC}/%2A", "/ready", "/"):
            reply = http(port, path, method=method)
            assert reply.status == 405, (method, path, reply.text)
            assert reply.headers["Allow"] == "GET, HEAD" and "read-only" in reply.json["error"]
    # Faust's own debugging views would dump the raw state table and the app's graph
    for path in ("/table/", "/table/state/", "/graph/"):
        assert http(port, path).status == 404, path


# -- metrics --------------------------------------------------------------------------------------
def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = http(port, "/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(reply.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_metrics_count_what_happened(pair: Pair) -> None:
    per_worker = [_metrics(port) for port in pair.ports]

    def total(name: str, **labels: str) -> float:
        return sum(
            v
            for m in per_worker
            for (n, ls), v in m.items()
            if n == name and all(dict(ls).get(k) == v2 for k, v2 in labels.items())
        )

    def present(name: str) -> bool:
        return all(any(n == name for n, _ in m) for m in per_worker)

    n_dups = len(range(0, pair.produced, DUP_EVERY))
    assert total("spikedetect_events_consumed_total") >= pair.produced
    assert total("spikedetect_events_rejected_total") >= N_GARBAGE
    assert total("spikedetect_events_late_total") >= N_LATE
    assert total("spikedetect_events_duplicate_total") >= n_dups * 0.9
    assert total("spikedetect_events_accepted_total") >= pair.produced - N_GARBAGE - N_LATE - n_dups
    assert total("spikedetect_windows_closed_total") > 1000
    assert total("spikedetect_scoring_seconds_count") > 0 and total("spikedetect_scoring_seconds_sum") > 0
    assert total("spikedetect_incident_events_total", type="opened") >= 2
    assert total("spikedetect_incident_events_total", type="closed") >= 1
    topic = _incidents_topic(pair.run)
    assert total("spikedetect_open_incidents") == sum(1 for e in topic.values() if e[-1]["type"] != "closed")
    assert total("spikedetect_watermark_delay_seconds") > 3600, "the stream is about a day old"
    assert present("spikedetect_consumer_lag") and present("spikedetect_keys")
    assert all(v >= 0 for m in per_worker for (n, _), v in m.items() if n == "spikedetect_consumer_lag")


# -- documentation ------------------------------------------------------------------------------
def test_openapi_documents_every_route() -> None:
    from spikedetect.stream.app import make_app
    from spikedetect.stream.settings import Settings

    app = make_app(Settings(app_id="openapi-check"))
    routes = {r.resource.canonical for r in app.web.web_app.router.routes() if r.resource is not None}
    doc = (Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text()
    section = doc.split("\npaths:\n", 1)[1].split("\ncomponents:\n", 1)[0]
    documented = set(re.findall(r"^  (/\S*):$", section, flags=re.MULTILINE))
    assert documented == routes - {"/static/{name}"}


def test_live_view_keeps_breakdowns_of_the_newest_windows_only() -> None:
    import numpy as np

    from spikedetect.core.scorer import ClosedKeys

    view = LiveView(60_000, history=5, breakdown_history=3, max_leaves=4)
    hook = view.hook(0)

    def window(ws_ms: int, n: float, leaves: int) -> ClosedKeys:
        leaf = {(f"US/R{i}", "feed", "app"): n for i in range(leaves)}
        keys = [("svc", "*"), ("svc", "US")]
        total = n * leaves
        return ClosedKeys(
            ws_ms,
            keys,
            np.array([total, total]),
            np.ones(2),
            np.zeros(2),
            np.zeros(2, np.int8),
            {"svc": leaf},
        )

    for k in range(6):
        hook(k * 60_000, window(k * 60_000, float(k), 1))
    rows = view.series("svc", "US")["windows"]
    assert [r["ws_ms"] // 60_000 for r in rows] == [1, 2, 3, 4, 5], "history keeps the last 5"
    assert [r["breakdown"] is not None for r in rows] == [False, False, True, True, True]
    assert rows[-1]["breakdown"]["children"] == [{"region": "US/R0", "reports": 5.0, "expected": None}]
    hook(6 * 60_000, window(6 * 60_000, 1.0, 3))  # 3 leaves: the 4-leaf budget keeps two windows
    assert [r["breakdown"] is not None for r in view.series("svc", "*")["windows"]] == [False] * 3 + [
        True
    ] * 2
    hook(6 * 60_000, window(6 * 60_000, 2.0, 3))  # the same window closed again replaces it
    rows = view.series("svc", "*", since_ms=6 * 60_000)["windows"]
    assert [(r["ws_ms"], r["observed"]) for r in rows] == [(360_000, 6.0)]
    view.drop_partition(0)
    assert view.series("svc", "*") is None
