"""Hostile input on the real broker: garbage is dead-lettered with its reason, valid reports
are counted exactly once, the worker keeps running and its memory stays bounded.

The mix is drawn by Hypothesis - one message *spec* per example, collected from a
seeded, generate-only run (``collect_specs``) - and then produced as one fixed-size
stream to a single, module-scoped worker: running a worker per example would be far too
slow. Each spec carries its own expected outcome, computed here from what was generated
(not by the code under test): a reason for every invalid message, and for every valid
one its event time, service and normalised region, from which the test counts the
reports per window by brute force (``expected_counts``), deduplicating on
(input partition, window, event_id) as the pipeline promises.

The stream runs on a clock: message ``i`` is stamped ``T0_MS + i * STEP_MS`` (Kafka
record time, the event time of reports without ``ts``); valid reports carry that time
give or take 20 s, far inside the allowed lateness, so none of them is late. Far-past
reports are late (or out of range), far-future ones too far ahead of the record time.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from spikedetect.core.regions import region_keys
from spikedetect.core.timefmt import MAX_TS_MS, MIN_TS_MS, format_ts_ms
from tests.stream.harness import LiveRun, Out, Record, RssSampler, count_diff

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]

SEED = 7_020_611
N_SPECS = 2500
N_MEGABYTE = 320  # 1 MB messages (the broker allows 2 MB), mixed in at seeded positions
PARTITIONS = 4
T0_MS = 1_795_654_800_000  # 2026-11-26T01:00:00Z, inside one key generation (7 days from a Thursday)
STEP_MS = 1_000
MAX_VALUE_BYTES = 8192  # the default max_value_bytes
RSS_GROWTH_BOUND_MB = 150.0  # see test_memory_stays_bounded

SERVICES = ["instagram", "whatsapp", "café", "svc with inner spaces", "サービス"]
REGIONS = [
    "US",
    "US/CA",
    "US/CA/Los Angeles",
    "us/ny/New York",
    "FR/IDF/Île-de-France",
    "JP/13/東京",
    "BR/SP/São Paulo/Centro",
    "IN/MH/Mumbai",
    "GB/ENG/London",
    "DE/😀",
    "US/a|b",
]
CATEGORIES = ["feed", " Login ", "DIRECT_MESSAGES", "server_connection", "ü"]
CONTROL = [
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\U000e0001",
    "\u00a0",
]
NOT_RFC3339 = [
    "yesterday",
    "",
    "2026-13-45T99:99:99Z",
    "2026-11-26T00:00:00",
    "1795651200000",
    "２０２６-11-26T00:00:00Z",
    "2026-11-26T00:00:60Z",
    "26/11/2026 00:00",
]


# -- specs: what to send and what must happen to it ------------------------------------------
Spec = tuple[str, dict[str, Any]]

names = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=12)
region_gen = st.builds(
    lambda c, parts: "/".join([c, *parts]),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=2, max_size=3),
    st.lists(names, max_size=3),
)
fields_st = st.fixed_dictionaries(
    {
        "service": st.sampled_from(SERVICES),
        "region": st.one_of(st.sampled_from(REGIONS), region_gen),
        "category": st.sampled_from(CATEGORIES),
    },
    optional={
        "source": st.sampled_from(["app", "WEB", " web "]),
        "event_id": st.one_of(
            st.text(st.characters(categories=("L", "N", "P")), min_size=1, max_size=40),
            st.integers(0, 2**40),
            st.none(),
        ),
    },
)
jitter = st.integers(-20_000, 20_000)
ts_styles = st.sampled_from(
    ["iso_ms", "iso_s", "iso_offset", "iso_space", "epoch", "epoch_float", "missing", "null"]
)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=("Cs",))),
)
json_any = st.recursive(
    json_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=5), kids, max_size=4)
    ),
    max_leaves=10,
)
wrong_type = st.one_of(
    st.integers(-5, 5),
    st.lists(st.integers(-9, 9), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(-9, 9), max_size=2),
    st.booleans(),
    st.floats(0.5, 9.5).filter(lambda f: not f.is_integer()),
)


def spec(kind: str, **params: st.SearchStrategy[Any]) -> st.SearchStrategy[Spec]:
    return st.fixed_dictionaries(params).map(lambda p: (kind, p))


BRANCHES: dict[str, st.SearchStrategy[Spec]] = dict(
    valid=spec(
        "valid",
        f=fields_st,
        jitter=jitter,
        ts=ts_styles,
        nest=st.one_of(st.none(), st.none(), st.none(), st.integers(1, 1000)),
    ),
    dup=spec("dup", pick=st.integers(0, 10**6), same=st.booleans()),
    not_utf8=spec(
        "not_utf8",
        f=fields_st,
        at=st.integers(0, 10**6),
        bad=st.sampled_from(
            [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]
        ),
    ),
    not_json=spec(
        "not_json",
        f=fields_st,
        how=st.sampled_from(
            [
                "truncate",
                "angle",
                "quotes",
                "trailing",
                "nan",
                "inf",
                "huge_exp",
                "empty",
                "tombstone",
                "surrogate",
                "deep",
                "bom",
                "comma",
            ]
        ),
        at=st.integers(0, 10**6),
        text=st.text(max_size=30),
        depth=st.integers(1100, 1250),
    ),
    not_object=spec("not_object", value=st.one_of(st.lists(json_any, max_size=5), json_leaf)),
    missing=spec(
        "missing", f=fields_st, drop=st.sampled_from(["service", "region", "category"]), null=st.booleans()
    ),
    mistyped=spec(
        "mistyped",
        f=fields_st,
        field=st.sampled_from(["ts", "service", "region", "category", "source", "event_id"]),
        value=wrong_type,
    ),
    bad_ts=spec("bad_ts", f=fields_st, text=st.sampled_from(NOT_RFC3339)),
    bad_string=spec(
        "bad_string",
        f=fields_st,
        field=st.sampled_from(["service", "region", "category", "source", "event_id"]),
        how=st.sampled_from(["control", "empty", "long", "huge", "edge_space", "pipe", "region_shape"]),
        ctl=st.sampled_from(CONTROL),
        huge=st.integers(300, 7000),
        at=st.integers(0, 10**6),
    ),
    too_deep=spec("too_deep", f=fields_st, extra=st.lists(names, min_size=4, max_size=6)),
    too_large=spec("too_large", f=fields_st, size=st.integers(MAX_VALUE_BYTES + 1, 200_000)),
    far_time=spec(
        "far_time",
        f=fields_st,
        when=st.sampled_from(["future", "beyond_2100", "past", "before_2000"]),
        offset=st.integers(0, 10**9),
        iso=st.booleans(),
    ),
)
# about 45% valid reports, 8% re-sent ones, the rest garbage of every kind
KINDS = ["valid"] * 11 + ["dup"] * 2 + [k for k in BRANCHES if k not in ("valid", "dup")]
SPECS = st.sampled_from(KINDS).flatmap(BRANCHES.__getitem__)


def collect_specs(n: int, seed_value: int) -> list[Spec]:
    """``n`` specs from a seeded, generate-only Hypothesis run (no shrinking, no database)."""
    out: list[Spec] = []

    @seed(seed_value)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(SPECS)
    def draw(s: Spec) -> None:
        out.append(s)

    draw()
    return out


# -- building messages ------------------------------------------------------------------------
@dataclass
class Sent:
    value: bytes | None
    partition: int
    timestamp_ms: int
    reason: str | None = None  # None: a valid report (possibly a duplicate)
    key: bytes | None = None
    event: tuple[int, str, str, str | None] | None = None  # (ts_ms, service, region, event_id)


def norm_region(region: str) -> str:
    country, *rest = region.split("/")
    return "/".join([country.upper(), *rest])


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


@dataclass
class Builder:
    rng: random.Random
    sent: list[Sent] = field(default_factory=list)
    seen_partitions: list[int] = field(default_factory=list)
    recent: dict[int, list[Sent]] = field(default_factory=dict)  # partition -> recent valid reports

    @property
    def clock(self) -> int:
        return T0_MS + len(self.sent) * STEP_MS

    def partition_for(self, f: dict[str, Any]) -> int:
        return zlib.crc32(str(f.get("region")).encode()) % PARTITIONS

    def garbage_partition(self, salt: int) -> int:
        return self.seen_partitions[salt % len(self.seen_partitions)]

    def add(self, value: bytes | None, reason: str, salt: int = 0, key: bytes | None = None) -> None:
        if len(value or b"") > MAX_VALUE_BYTES and reason not in ("value_too_large",):
            reason = "value_too_large"  # size is checked first, whatever else is wrong
        self.sent.append(Sent(value, self.garbage_partition(salt), self.clock, reason, key=key))

    def valid(self, f: dict[str, Any], jitter_ms: int, style: str, nest: int | None = None) -> None:
        clock = self.clock
        obj = dict(f)
        ts = clock + jitter_ms
        if style == "iso_ms":
            obj["ts"] = format_ts_ms(ts)
        elif style == "iso_s":
            ts -= ts % 1000
            obj["ts"] = format_ts_ms(ts)[:19] + "Z"
        elif style == "iso_offset":  # the same instant, written at +05:30
            obj["ts"] = format_ts_ms(ts + 19_800_000)[:23] + "+05:30"
        elif style == "iso_space":
            obj["ts"] = format_ts_ms(ts).replace("T", " ")
        elif style == "epoch":
            obj["ts"] = ts
        elif style == "epoch_float":
            obj["ts"] = float(ts)
        elif style == "null":
            obj["ts"], ts = None, clock
        else:
            ts = clock  # no ts: the record time is the event time
        value = dumps(obj)
        if nest is not None:  # an ignored extra field, nested ``nest`` levels deep (orjson allows 1024)
            value = value[:-1] + b',"extra":' + b'{"n":' * nest + b"1" + b"}" * nest + b"}"
        eid = f.get("event_id")
        event = (ts, f["service"], norm_region(f["region"]), None if eid is None else str(eid))
        p = self.partition_for(f)
        s = Sent(value, p, clock, None, event=event)
        self.sent.append(s)
        if p not in self.seen_partitions:
            self.seen_partitions.append(p)
        self.recent.setdefault(p, []).append(s)
        del self.recent[p][:-30]

    def build(self, sp: Spec) -> None:
        kind, p = sp
        f = dict(p.get("f") or {})
        salt = p.get("at", 0) + len(self.sent)
        if kind == "valid":
            self.valid(f, p["jitter"], p["ts"], p["nest"])
        elif kind == "dup":
            # a re-send of a recent report, to its partition, while its window is still open
            fresh = [
                s
                for lst in self.recent.values()
                for s in lst
                if s.event is not None and s.event[0] >= self.clock - 60_000
            ]
            if not fresh:
                return
            orig = fresh[p["pick"] % len(fresh)]
            value = orig.value
            assert value is not None and orig.event is not None
            if not p["same"] and orig.event[3] is not None and b'"extra"' not in value:
                value = orjson.dumps({**orjson.loads(value), "category": "something_else"})  # same id, time
            # a re-send keeps its record time (the event time of a report without ts)
            self.sent.append(Sent(value, orig.partition, orig.timestamp_ms, None, event=orig.event))
        elif kind == "not_utf8":
            raw = dumps({**f, "ts": format_ts_ms(self.clock)})
            at = 1 + p["at"] % (len(raw) - 1)
            self.add(raw[:at] + p["bad"] + raw[at:], "not_utf8", salt)
        elif kind == "not_json":
            self.not_json(f, p, salt)
        elif kind == "not_object":
            self.add(dumps(p["value"]), "not_object", salt)
        elif kind == "missing":
            obj = {**f, "ts": format_ts_ms(self.clock)}
            if p["null"]:
                obj[p["drop"]] = None
            else:
                obj.pop(p["drop"])
            self.add(dumps(obj), f"missing_{p['drop']}", salt)
        elif kind == "mistyped":
            name, value = p["field"], p["value"]
            if name == "ts":
                reason = "ts_out_of_range" if type(value) is int else "bad_ts_type"
            else:
                reason = f"bad_{name}"
                if name == "event_id" and type(value) is int:
                    return  # an integer event_id is valid (its decimal string)
            self.add(dumps({**f, "ts": format_ts_ms(self.clock), name: value}), reason, salt)
        elif kind == "bad_ts":
            self.add(dumps({**f, "ts": p["text"]}), "bad_ts_format", salt)
        elif kind == "bad_string":
            self.bad_string(f, p, salt)
        elif kind == "too_deep":
            region = "/".join(["US", *p["extra"]])
            reason = "region_too_deep" if len(region) <= 256 else "bad_region"
            self.add(dumps({**f, "ts": format_ts_ms(self.clock), "region": region}), reason, salt)
        elif kind == "too_large":
            obj = {**f, "ts": format_ts_ms(self.clock), "pad": "x" * p["size"]}
            self.add(dumps(obj), "value_too_large", salt)
        elif kind == "far_time":
            self.far_time(f, p, salt)
        else:  # pragma: no cover
            raise AssertionError(kind)

    def not_json(self, f: dict[str, Any], p: dict[str, Any], salt: int) -> None:
        how = p["how"]
        raw = dumps({**f, "ts": format_ts_ms(self.clock)})
        value: bytes | None
        if how == "truncate":
            # cut at a character boundary: a cut inside a multi-byte character is not_utf8
            value = raw[: 1 + p["at"] % (len(raw) - 1)].decode("utf-8", "ignore").encode()
        elif how == "angle":
            value = b"<" + p["text"].encode("utf-8", "replace")
        elif how == "quotes":
            value = repr({**f}).encode()
        elif how == "trailing":
            value = raw + b" x"
        elif how in ("nan", "inf", "huge_exp"):
            value = (
                raw[:-1]
                + b',"score":'
                + {"nan": b"NaN", "inf": b"-Infinity", "huge_exp": b"1e400"}[how]
                + b"}"
            )
        elif how == "empty":
            value = b""
        elif how == "tombstone":  # a null value, with or without a key
            self.add(None, "not_json", salt, key=b"tombstone" if p["at"] % 2 else None)
            return
        elif how == "surrogate":
            value = raw[:-1] + b',"x":"\\ud800"}'
        elif how == "deep":
            value = raw[:-1] + b',"extra":' + b'{"n":' * p["depth"] + b"1" + b"}" * p["depth"] + b"}"
        elif how == "bom":
            value = b"\xef\xbb\xbf" + raw
        else:
            value = raw[:-1] + b",}"
        try:  # a guard on the generator itself: it must never produce valid JSON here
            orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            pass
        else:  # pragma: no cover
            raise AssertionError(f"the not_json generator produced valid JSON: {value!r}")
        self.add(value, "not_json", salt)

    def bad_string(self, f: dict[str, Any], p: dict[str, Any], salt: int) -> None:
        name, how, ctl = p["field"], p["how"], p["ctl"]
        limit = {"service": 64, "region": 256, "category": 32, "source": 32, "event_id": 128}[name]
        good = {
            "service": "instagram",
            "region": "US/CA/Los Angeles",
            "category": "feed",
            "source": "app",
            "event_id": "abc",
        }[name]
        # labels (category, source) are stripped first, and Python counts some control characters
        # (NEL, LS, NBSP) as white space: in a label they go inside, where they stay
        inside = 1 + p["at"] % (len(good) - 1)
        if how == "control":
            at = inside if name in ("category", "source") else p["at"] % (len(good) + 1)
            value = good[:at] + ctl + good[at:]
        elif how == "empty":
            value = "" if name != "category" else "   "
        elif how == "long":
            value = "x" * (limit + 1) if name != "region" else "US/" + "x" * 65
        elif how == "huge":
            value = "y" * p["huge"]
            if name == "region":
                value = "US/" + value
        elif how == "edge_space":
            if name in ("category", "source"):
                value = "\t" + "x" * (limit + 1) + " "  # stripped, and still too long
            elif name == "event_id":
                value = good + "\n"
            else:
                value = " " + good
        elif how == "pipe" and name == "service":
            value = "insta|gram"
        elif how == "region_shape" and name == "region":
            value = ["U", "USA1/CA", "12/CA", "US//CA", "US/", "US/*", "/US", "U$/CA"][p["at"] % 8]
        else:
            value = good[:inside] + ctl + good[inside:]
        self.add(dumps({**f, "ts": format_ts_ms(self.clock), name: value}), f"bad_{name}", salt)

    def far_time(self, f: dict[str, Any], p: dict[str, Any], salt: int) -> None:
        when, offset = p["when"], p["offset"]
        if when == "future":  # years ahead of the record time, before 2100
            ts, reason = 1_924_992_000_000 + offset * 1000, "ts_too_far_future"  # from 2031
        elif when == "beyond_2100":
            ts, reason = MAX_TS_MS + offset * 1000, "ts_out_of_range"
        elif when == "past":  # long closed windows, between 2000 and 2026
            ts, reason = MIN_TS_MS + offset % 800_000_000 * 1000, "late"
        else:
            ts, reason = MIN_TS_MS - 1 - offset * 1000, "ts_out_of_range"
        value: Any = ts
        if p["iso"] and 0 <= ts < 253_402_300_800_000:  # years 1970..9999 have an RFC 3339 form
            value = format_ts_ms(ts)
        self.add(dumps({**f, "ts": value}), reason, salt)


def build_stream(specs: list[Spec], rng: random.Random) -> list[Sent]:
    b = Builder(rng)
    # a valid report first in every partition: a watermark exists before any garbage arrives
    for p in range(PARTITIONS):
        region = next(r for r in REGIONS if zlib.crc32(r.encode()) % PARTITIONS == p)
        b.valid(
            {"service": "instagram", "region": region, "category": "feed", "event_id": f"first-{p}"},
            0,
            "iso_ms",
        )
    megabyte_at = set(rng.sample(range(len(specs)), N_MEGABYTE))
    for i, sp in enumerate(specs):
        b.build(sp)
        if i in megabyte_at:
            size = rng.randint(1_000_000, 1_040_000)
            b.add(b'{"service":"instagram","pad":"' + b"z" * size + b'"}', "value_too_large", i)
    # Hypothesis draws these rarely, and its draws inside a full pytest session differ from a
    # standalone run: the cases the assertions below name are always in the mix
    b.add(None, "not_json", 1)  # a record with neither key nor value
    b.add(None, "not_json", 2, key=b"tombstone")
    return b.sent


def expected_counts(
    sent: list[Sent], window_ms: int = 60_000
) -> tuple[dict[tuple[str, str, int], float], int, int]:
    """Reports per (service, region key, window) by brute force; also (counted, duplicates)."""
    seen: set[tuple[int, int, str]] = set()
    counts: dict[tuple[str, str, int], float] = {}
    counted = dups = 0
    for s in sent:
        if s.reason is not None or s.event is None:
            continue
        ts, service, region, eid = s.event
        ws = ts - ts % window_ms
        if eid is not None:
            if (s.partition, ws, eid) in seen:
                dups += 1
                continue
            seen.add((s.partition, ws, eid))
        counted += 1
        for key in region_keys(region):
            counts[(service, key, ws)] = counts.get((service, key, ws), 0) + 1
    return counts, counted, dups


# -- the run ---------------------------------------------------------------------------------
@dataclass
class HostileRun:
    run: LiveRun
    sent: list[Sent]
    where: list[tuple[int, int]]  # (partition, offset) of each sent message
    want_counts: dict[tuple[str, str, int], float]
    counted: int
    duplicates: int
    dead: list[Record]
    counts: dict[tuple[str, str, int], float]
    rss: RssSampler
    baseline_mb: float
    summaries: list[dict[str, str]]
    alive: bool
    log: str

    def diagnosis(self) -> str:
        """The worker's summary lines and memory over time, and its log's end (for failures)."""
        t0 = self.rss.samples[0][0] if self.rss.samples else 0.0
        rss = " ".join(f"{t - t0:.0f}s:{b / 1e6:.0f}" for t, b in self.rss.samples[::8])
        lines = "\n".join(" ".join(f"{k}={v}" for k, v in line.items()) for line in self.summaries[-15:])
        return f"RSS MB over time: {rss}\nsummaries:\n{lines}\n{self.run.log_tail(25)}"


@pytest.fixture(scope="module")
def hostile(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRun]:
    specs = collect_specs(N_SPECS, SEED)
    assert len(specs) >= 0.9 * N_SPECS, f"hypothesis drew only {len(specs)} specs"
    sent = build_stream(specs, random.Random(SEED))
    want_counts, counted, dups = expected_counts(sent)
    run = LiveRun(
        kafka_bootstrap,
        tmp_path_factory.mktemp("hostile"),
        # A partition that gets no record for idle_ms - before the producer's first send on a
        # loaded CI machine, or while it pushes 320 MB of 1 MB messages elsewhere - is declared
        # idle, and its next reports become late_partial dead letters (docs/operations.md):
        # a producer stall, not garbage. CI saw both at 1.5 s and at 8 s; 30 s leaves margin.
        extra={"SPIKEDETECT_SUMMARY_INTERVAL_S": "2", "SPIKEDETECT_IDLE_MS": "30000"},
    )
    run.create_input()
    worker = run.start_worker()
    try:
        run.wait_for_log("ingest assigned partitions")
        time.sleep(3.0)
        rss = RssSampler(worker.pid)
        time.sleep(1.0)
        baseline_mb = rss.mb_at(0)
        where = run.produce_records([Out(s.value, s.key, s.partition, s.timestamp_ms) for s in sent])
        n_dead = sum(s.reason is not None for s in sent)
        counts = run.wait_for_windows(want_counts, timeout_s=240)
        deadline = time.monotonic() + 120
        dead = run.read("dlq")
        while len(dead) < n_dead and time.monotonic() < deadline:
            time.sleep(2)
            dead = run.read("dlq")
        time.sleep(5.0)  # two more summary lines, after everything was processed
        rss.stop()
        alive = worker.poll() is None
        summaries = run.summaries()
        log = run.logs[0].read_text(errors="replace")
        yield HostileRun(
            run,
            sent,
            where,
            want_counts,
            counted,
            dups,
            dead,
            counts,
            rss,
            baseline_mb,
            summaries,
            alive,
            log,
        )
    finally:
        run.stop_all()
        run.delete_topics()


def test_every_invalid_message_is_dead_lettered_with_its_reason(hostile: HostileRun) -> None:
    want = {w: s for w, s in zip(hostile.where, hostile.sent, strict=True) if s.reason is not None}
    got: dict[tuple[int, int], Record] = {}
    for d in hostile.dead:
        at = (int(d.headers["spikedetect.partition"]), int(d.headers["spikedetect.offset"]))
        assert at not in got, f"dead-lettered twice without a restart: {at}"
        got[at] = d
    assert got.keys() == want.keys(), (
        f"{len(want.keys() - got.keys())} invalid messages not dead-lettered, "
        f"{len(got.keys() - want.keys())} valid ones dead-lettered: "
        f"{sorted(got.keys() - want.keys())[:5]}\n{hostile.diagnosis()}"
    )
    wrong = [
        (at, want[at].reason, got[at].headers["spikedetect.reason"].decode(), (want[at].value or b"")[:120])
        for at in sorted(want)
        if got[at].headers["spikedetect.reason"].decode() != want[at].reason
    ]
    assert not wrong, f"{len(wrong)} messages dead-lettered with the wrong reason, e.g. {wrong[:8]}"
    for at, s in want.items():
        d = got[at]
        assert d.value == s.value, f"the dead letter of {at} is not the original bytes"
        # the key too, except that a record without key and value gets an empty key (see ingest)
        assert d.key == (s.key if s.key is not None or s.value is not None else b"")
        assert d.headers["spikedetect.topic"].decode() == hostile.run.topics["input"]
        assert int(d.headers["spikedetect.timestamp"]) == s.timestamp_ms
    assert any(s.value is None and s.key is None for s in want.values()), "the mix lacks a keyless tombstone"
    reasons = {s.reason for s in want.values()}
    assert {
        "not_utf8",
        "not_json",
        "not_object",
        "value_too_large",
        "missing_service",
        "bad_ts_type",
        "bad_ts_format",
        "bad_region",
        "region_too_deep",
        "ts_too_far_future",
        "ts_out_of_range",
        "late",
        "bad_event_id",
    } <= reasons, f"the mix lacks some kinds of garbage: {sorted(reasons)}"


def test_every_valid_report_is_counted_exactly_once(hostile: HostileRun) -> None:
    assert hostile.duplicates > 20, "the mix must repeat event ids"
    assert hostile.counted > 1000
    assert hostile.counts == hostile.want_counts, (
        f"{count_diff(hostile.counts, hostile.want_counts)}\n{hostile.diagnosis()}"
    )


def test_the_worker_never_stops(hostile: HostileRun) -> None:
    assert hostile.alive, hostile.run.log_tail()
    assert not hostile.run.crashes(), "\n".join(hostile.run.crashes()[:10])
    assert "Traceback" not in hostile.log, hostile.log[hostile.log.index("Traceback") - 2000 :][:6000]


def test_memory_stays_bounded(hostile: HostileRun) -> None:
    """320 messages of 1 MB (and others of up to 200 kB) pass through the worker, and each
    is copied to the dead-letter topic: some 700 MB of traffic. What the worker holds at
    once is bounded by its clients' settings, not by the traffic: aiokafka prefetches at most
    max_partition_fetch_bytes (4 MB) per input partition, 16 MB for 4, and getmany hands
    over at most that; dead letters are sent as they are found and flushed at every commit
    (commit_interval_ms, 1 s), so unacknowledged ones are at most what one second of
    reading brings in. Two copies of a fetch (raw response and record values, 32 MB), one
    second of dead letters in producer batches (tens of MB here) and the allocator's slack
    (freed arenas are not returned at once) fit in RSS_GROWTH_BOUND_MB; the garbage itself
    is more than twice that, so holding on to it - or buffering the topic - would fail."""
    rss = hostile.rss
    assert len(rss.samples) > 20, "too few RSS samples to judge"
    growth = rss.peak_mb - hostile.baseline_mb
    print(
        f"worker RSS: {hostile.baseline_mb:.0f} MB before the stream, peak {rss.peak_mb:.0f} MB, "
        f"growth {growth:.0f} MB (bound {RSS_GROWTH_BOUND_MB:.0f} MB), {len(rss.samples)} samples"
    )
    megabytes = sum(len(s.value or b"") for s in hostile.sent if s.reason is not None) / 1e6
    assert megabytes > 2 * RSS_GROWTH_BOUND_MB, (
        "the garbage must outweigh the bound for the test to mean much"
    )
    assert growth < RSS_GROWTH_BOUND_MB, hostile.diagnosis()


def test_summary_lines_account_for_every_message(hostile: HostileRun) -> None:
    lines = hostile.summaries
    assert len(lines) >= 3, "SPIKEDETECT_SUMMARY_INTERVAL_S=2 must log a summary every 2 s"
    want_keys = {"events_per_s", "lag", "late", "rejected", "duplicates", "open_incidents"}
    assert all(want_keys <= line.keys() for line in lines), lines[0]

    def total(name: str) -> int:
        return sum(int(line[name]) for line in lines)

    n_late = sum(s.reason == "late" for s in hostile.sent)
    assert total("consumed") == len(hostile.sent)
    assert total("late") == n_late
    assert total("rejected") == sum(s.reason is not None for s in hostile.sent) - n_late
    assert total("duplicates") == hostile.duplicates
    assert total("accepted") == hostile.counted
    assert lines[-1]["lag"] == "0" and lines[-1]["consumed"] == "0"
    assert max(float(line["events_per_s"]) for line in lines) > 0
