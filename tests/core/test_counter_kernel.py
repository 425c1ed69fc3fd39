"""The compiled counting kernel (spikedetect/kernel/_count.pyx) against the pure-Python counter,
its reference: the same lines - valid, hostile, duplicated, late, skewed - give identical
counts, rejects with identical reasons, dead letters, statistics and state.

The kernel is loaded whatever SPIKEDETECT_PURE says, so these tests compare both paths in
every run; they skip only where the extension was not built (no C compiler at install time),
and test_kernel_is_built_where_a_compiler_is fails if a build that should have worked did not.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter
from spikedetect.kernel import load_compiled

KERNEL = load_compiled()
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled kernel is not built (no C compiler)")

BASE = 1_795_651_200_000  # 2026-11-26T00:00:00Z
MIN = 60_000


def test_kernel_is_built_where_a_compiler_is() -> None:
    has_compiler = shutil.which(sysconfig.get_config_var("CC").split()[0] or "cc") is not None
    has_headers = (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()
    if has_compiler and has_headers:
        assert KERNEL is not None, "a C compiler and Python.h are here, but the kernel was not built"


def iso(ts_ms: int, *, millis: bool = True) -> str:
    from spikedetect.core.timefmt import format_ts_ms

    text = format_ts_ms(ts_ms)
    return text if millis else text[:19] + "Z"


# -- hostile lines, built as text so escapes, duplicates and whitespace survive -------------------

SERVICES = ["ig", "fb", "wa", "b|ad", " ig", "", "svc\\u0041"]
REGIONS = ["US/CA", "DE/BY/München", "us/CA", "JP/13/東京", "GB", "US//x", "US/*", "X1/a", "US/CA/LA/a/b",
           "FR/IDF/Paris\\u00e9"]
CATEGORIES = ["login", "Feed", " feed ", "x" * 33, "direct_messages"]
SOURCES = ["app", "web", "APP", ""]
EIDS = ["e1", "e2", "e3", "", "e\\u0001", "ü1", "x" * 129]


def _q(text: str) -> str:
    return '"' + text + '"'


@st.composite
def ts_value(draw: st.DrawFn, ref_ms: int) -> str:
    off = draw(st.sampled_from([0, 1, 999, -MIN, -3 * MIN, -10 * MIN, MIN, 2 * MIN, 30 * MIN,
                                2 * 3_600_000, 90 * MIN]))
    off += draw(st.integers(0, MIN))
    ts = ref_ms + off
    kind = draw(st.sampled_from(["iso", "iso", "iso", "int", "int", "iso20", "float", "offset", "lower",
                                 "bad", "feb30", "leap", "neg", "big", "null", "early"]))
    if kind == "iso":
        return _q(iso(ts))
    if kind == "iso20":
        return _q(iso(ts, millis=False))
    if kind == "int":
        return str(ts)
    if kind == "float":
        return f"{ts}.0"
    if kind == "offset":
        return _q(iso(ts)[:-1] + "+00:00")
    if kind == "lower":
        return _q(iso(ts).replace("T", "t"))
    if kind == "bad":
        return _q(iso(ts)[:-1])
    if kind == "feb30":
        return _q("2028-02-30T10:00:00.000Z")
    if kind == "leap":
        return _q(iso(ts)[:17] + "60.000Z")
    if kind == "neg":
        return "-" + str(ts)
    if kind == "big":
        return "1" * 25
    if kind == "early":
        return _q("1999-12-31T23:59:59.999Z")
    return "null"


@st.composite
def line(draw: st.DrawFn, ref_ms: int) -> bytes:
    kind = draw(st.sampled_from(["ok"] * 8 + ["near"] * 6 + ["hostile"] * 5 + ["raw"]))
    # "near": a line of cached keys with exactly one hostile field, so the scanner meets it
    near = draw(st.sampled_from(["ts", "eid", "service", "region", "category", "source"])) if kind == "near" else ""
    plain = kind in ("ok", "near")

    def pick(name: str, values: list[str], common: int) -> str:
        if near == name:
            return _q(draw(st.sampled_from(values[common:])))
        # hostile lines mostly reuse cached keys too
        pool = values[:common] if plain or draw(st.integers(0, 4)) else values
        return _q(draw(st.sampled_from(pool)))

    good_ts = _q(iso(ref_ms + draw(st.integers(-5 * MIN, 3 * MIN))))
    fields: list[tuple[str, str]] = [
        ("ts", good_ts if plain and near != "ts" else draw(ts_value(ref_ms))),
        ("service", pick("service", SERVICES, 2)),
        ("region", pick("region", REGIONS, 3)),
        ("category", pick("category", CATEGORIES, 2)),
        ("source", pick("source", SOURCES, 2)),
    ]
    if near == "eid":
        fields.append(("event_id", _q(draw(st.sampled_from(EIDS[3:])))))
    elif draw(st.booleans()):
        fields.append(("event_id", _q(draw(st.sampled_from(EIDS[:3] if plain else EIDS)))))
    if draw(st.integers(0, 3)) == 0:
        fields.insert(draw(st.integers(0, len(fields))), ("extra", draw(st.sampled_from(['"v"', "12", "-3"]))))
    if kind == "raw":
        return draw(st.sampled_from([b"", b"nope", b"[1,2]", b'"x"', b"{", b'{"ts":1}', b"\xef\xbb\xbf{}",
                                     b'{"service":"\xff"}', b"NaN", b"{}", b'{"a":1}' + b" " * 9000]))
    if kind == "hostile":
        for _ in range(draw(st.integers(0, 2))):
            op = draw(st.sampled_from(["drop", "dup", "extra", "escape_key", "int_value", "eid_int", "null"]))
            if op == "drop" and fields:
                fields.pop(draw(st.integers(0, len(fields) - 1)))
            elif op == "dup" and fields:
                name, _ = fields[draw(st.integers(0, len(fields) - 1))]
                fields.append((name, _q(draw(st.sampled_from(SERVICES + REGIONS)))))
            elif op == "extra":
                fields.insert(draw(st.integers(0, len(fields))), (draw(st.sampled_from(["x", "ü", "t\\u0073"])),
                              draw(st.sampled_from(['"v"', "12", "1.5", "[1]", '{"a":1}', "true", "null",
                                                    '"\\n"', '"ö"', "012", "-"]))))
            elif op == "escape_key" and fields:
                j = draw(st.integers(0, len(fields) - 1))
                fields[j] = (fields[j][0][:-1] + f"\\u{ord(fields[j][0][-1]):04x}", fields[j][1])
            elif op == "int_value" and fields:
                j = draw(st.integers(0, len(fields) - 1))
                fields[j] = (fields[j][0], "7")
            elif op == "eid_int":
                fields.append(("event_id", str(draw(st.integers(-5, 5)))))
            elif op == "null" and fields:
                j = draw(st.integers(0, len(fields) - 1))
                fields[j] = (fields[j][0], "null")
    sep = draw(st.sampled_from([",", ", ", " ,\t", ",\n"]))
    colon = draw(st.sampled_from([":", ": ", " : "]))
    text = "{" + sep.join(_q(k) + colon + v for k, v in fields) + "}"
    text = draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " ", "\r", " x"]))
    if kind == "hostile" and draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


CONFIGS = [
    DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=0),
    DetectorConfig(watermark_quorum=4, window_ms=MIN, lateness_ms=MIN, max_keys_per_service=3),
    DetectorConfig(window_ms=MIN, max_future_skew_ms=30 * MIN, retire_after_ms=5 * MIN),
    # key generations turning over with the region budget reached: cached combos re-count their region
    DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=MIN, max_keys_per_service=2, retire_after_ms=3 * MIN),
]


def run(counter: WindowCounter, batches: list[tuple[list[bytes], list[int | None] | None]],
        named: bool = False, restore_after: int | None = None) -> list[Any]:
    """Everything observable, batch by batch: results, closed windows (by repr: the order of every
    dict too), dead letters, state. ``restore_after``: after that batch, go on in a fresh counter
    restored from a snapshot (same path, same config)."""
    out: list[Any] = []
    for i, (values, fallbacks) in enumerate(batches):
        origin = (lambda j, i=i: ("batch", i, j)) if named else None
        res = counter.feed_batch(values, fallbacks, position=100 * i, replaying=i == 3, origin=origin)
        out.append((res.accepted, res.duplicates, res.rejects, counter.watermark_ms, counter.resume_position()))
        out.append(repr([(w.ws_ms, w.counts) for w in counter.take_closed()]))
        out.append(counter.take_dead())
        if i == restore_after:
            fresh = WindowCounter(counter.config, pure=True)
            fresh.use_kernel(counter.kernel)
            fresh.restore(orjson.loads(orjson.dumps(counter.snapshot())))
            counter = fresh
    counter.finish()
    out.append(repr([(w.ws_ms, w.counts) for w in counter.take_closed()]))
    out.append(counter.take_dead())
    snap = counter.snapshot()
    out.append(snap)
    return out


@needs_kernel
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from(range(len(CONFIGS))), st.booleans(), st.booleans())
def test_compiled_and_pure_counters_agree(data: st.DataObject, config_index: int, with_fallbacks: bool,
                                          named: bool) -> None:
    batches = _batches(data, with_fallbacks)
    pure = WindowCounter(CONFIGS[config_index], pure=True)
    compiled = WindowCounter(CONFIGS[config_index], pure=True)
    compiled.use_kernel(KERNEL)
    assert run(compiled, batches, named) == run(pure, batches, named)


@needs_kernel
def test_compiled_counter_takes_its_fast_path_on_simple_lines() -> None:
    """The scanner reads a simulator-like line (so the differential test compares the fast path,
    not two copies of the fallback), and leaves unusual ones to the Python validator."""
    assert KERNEL is not None
    ts = BASE + 12_345
    simple = orjson.dumps({"ts": iso(ts), "service": "ig", "region": "DE/BY/München", "category": "feed",
                           "source": "app", "event_id": "abc"})
    assert KERNEL.scan_ts(simple) == ts
    assert KERNEL.scan_ts(simple.replace(b'"' + iso(ts).encode() + b'"', str(ts).encode())) == ts
    assert KERNEL.cache_key(simple) == "ig\0DE/BY/München\0feed\0app".encode()
    for unusual in [simple.replace(b"abc", b"a\\u0062c"), simple.replace(b"abc", b"\xc3\xbc"),
                    simple.replace(b"}", b',"ts":1}'), simple.replace(b"}", b',"x":1.5}'),
                    simple.replace(b"}", b',"x":{}}'), simple.replace(b'"app"', b"7"), simple[:-1],
                    simple.replace(b".345Z", b".345z"), simple.replace(b"}", b"} x"),
                    # an other string field and no ts (its span once overwrote the ts's "seen" flag)
                    b'{"extra":"v"' + simple[simple.index(b',"service"'):]]:
        assert KERNEL.scan_ts(unusual) is None, unusual
    c = WindowCounter(DetectorConfig(watermark_quorum=1, window_ms=MIN), pure=True)
    c.use_kernel(KERNEL)
    c.feed_batch([simple])  # admitted by the validator, cached by raw bytes; then opens the key generation
    c.feed_batch([simple.replace(b"abc", b"abd")])  # a raw hit from the last generation: its region again
    assert c._raw_combos.as_dict() == {"ig\0DE/BY/München\0feed\0app".encode(): (("ig", "DE/BY/München", "feed", "app"),
                                                                      ("DE/BY/München", "feed", "app"), 1)}
    assert c._generation == 1 and c._regions == {"ig": {"DE/BY/München"}}
    c.feed_batch([simple.replace(b"abc", b"abe"), simple])  # the cached fast path: a count and a duplicate
    assert (c.stats.accepted, c.stats.duplicates) == (3, 1)


@needs_kernel
def test_a_new_generation_counts_cached_combos_against_the_region_budget() -> None:
    """A combination cached in one key generation is not admitted blindly in the next: its region
    counts again, first come first served, and one beyond ``max_keys_per_service`` is rejected
    as ``too_many_keys`` - on the compiled path as on the pure one."""
    config = DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=10 * MIN, max_keys_per_service=2,
                            retire_after_ms=5 * MIN)

    def report(ts_ms: int, region: str, eid: str) -> bytes:
        return orjson.dumps({"ts": iso(ts_ms), "service": "ig", "region": region, "category": "feed",
                             "source": "app", "event_id": eid})

    gen2 = BASE + 5 * MIN  # BASE starts a generation: the next starts 5 minutes later
    batches: list[tuple[list[bytes], list[int | None] | None]] = [
        ([report(BASE + 1, "US/CA", "a"), report(BASE + 2, "DE", "b"), report(BASE + 3, "FR", "c")], None),
        ([report(gen2, "DE", "d"), report(gen2 + 1, "JP", "e"), report(gen2 + 2, "US/CA", "f"),
          report(gen2 + 3, "DE", "g")], None),
    ]
    pure = run(WindowCounter(config, pure=True), batches)
    compiled_counter = WindowCounter(config, pure=True)
    compiled_counter.use_kernel(KERNEL)
    assert run(compiled_counter, batches) == pure
    assert pure[0][2] == [(2, "too_many_keys")]  # FR: the budget of the first generation is full
    # DE opens the second generation; US/CA, cached in the first, finds its budget taken by DE and JP
    assert pure[3][2] == [(2, "too_many_keys")]
    assert compiled_counter._regions == {"ig": {"JP", "DE"}} and compiled_counter._generation == 2


def _batches(data: st.DataObject, with_fallbacks: bool) -> list[tuple[list[bytes], list[int | None] | None]]:
    batches: list[tuple[list[bytes], list[int | None] | None]] = []
    ref = BASE
    for _ in range(data.draw(st.integers(1, 5))):
        values = data.draw(st.lists(line(ref), min_size=5, max_size=60))
        fallbacks = None
        if with_fallbacks:
            fallbacks = [data.draw(st.one_of(st.none(), st.integers(ref - 10 * MIN, ref + 10 * MIN)))
                         for _ in values]
        batches.append((values, fallbacks))
        ref += data.draw(st.sampled_from([0, MIN, 4 * MIN, 20 * MIN]))
    return batches


@needs_kernel
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from(range(len(CONFIGS))), st.booleans(), st.sampled_from([1, 2, 3, 5, 500_000]),
       st.one_of(st.none(), st.integers(0, 3)))
def test_compiled_and_pure_agree_with_a_small_combo_cache_and_a_restore(
        data: st.DataObject, config_index: int, with_fallbacks: bool, cache_size: int,
        restore_after: int | None) -> None:
    """The kernel's combination cache filled and cleared mid-batch (its pending window counts
    flushed first), and a snapshot restored mid-stream (the cache emptied): same results, same
    dict order, as the pure path."""
    batches = _batches(data, with_fallbacks)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("spikedetect.core.counter._COMBO_CACHE_SIZE", cache_size)
        pure = run(WindowCounter(CONFIGS[config_index], pure=True), batches, restore_after=restore_after)
        compiled = WindowCounter(CONFIGS[config_index], pure=True)
        compiled.use_kernel(KERNEL)
        assert run(compiled, batches, restore_after=restore_after) == pure
    WindowCounter(CONFIGS[0])  # the kernel's cache size back to the default (configure)


def _report(ts_ms: int, region: str, category: str = "feed", eid: str | None = None) -> bytes:
    obj = {"ts": iso(ts_ms), "service": "ig" if region < "M" else "fb", "region": region, "category": category,
           "source": "app"}
    if eid is not None:
        obj["event_id"] = eid
    return orjson.dumps(obj)


@needs_kernel
def test_window_counts_keep_first_touch_order_across_window_switches_and_releases() -> None:
    """Lines alternating between two windows, reports held ahead of the frontier, a cache too
    small for the batch, and an unscannable line of an open window: every closed window's dicts
    (services, then leaves) come out in the order counting line by line gives."""
    config = DetectorConfig(watermark_quorum=2, window_ms=MIN, lateness_ms=2 * MIN)
    regions = ["US/CA", "DE", "FR", "JP", "US/NY", "GB", "BR", "IN"]
    values = [_report(BASE + MIN + 5, "GB"), _report(BASE + 10 * MIN, "JP")]  # the second is held
    for i in range(40):
        ts = BASE + (i % 2) * MIN + 1000 * i
        values.append(_report(ts, regions[(7 * i) % len(regions)], ["feed", "login"][i % 3 == 0], f"e{i}"))
        if i == 20:
            values.append(_report(BASE + 2 * MIN + 1, "FR"))  # held, released at the end
        if i == 30:
            values.append(b' {"ts":"' + iso(BASE + 1).encode() + b'","service":"ig","region":"BR","category":"feed"}')
    for cache_size in (500_000, 3):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("spikedetect.core.counter._COMBO_CACHE_SIZE", cache_size)
            pure = run(WindowCounter(config, pure=True), [(values, None)])
            compiled = WindowCounter(config, pure=True)
            compiled.use_kernel(KERNEL)
            assert run(compiled, [(values, None)]) == pure
    WindowCounter(config)
    closed = eval(pure[1]) + eval(pure[-3])  # dicts in first-touch order, not sorted: the order is tested
    assert [ws for ws, _ in closed] == [BASE, BASE + MIN, BASE + 2 * MIN] and list(closed[0][1]) == ["fb", "ig"]
    assert any(list(leaves) != sorted(leaves) for _, counts in closed for leaves in counts.values())


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["e1", "e2", "", "ü1", "e\ud800", "x" * 9, "x" * 8,
                                                           "x" * 17, "a\0b", "東京"])), max_size=60),
       st.sampled_from([None, 0, 1, 7, 40, 300]))
def test_the_kernels_event_id_set_answers_like_a_set_of_str(ops: list[tuple[bool, str]], like: int | None) -> None:
    """EidSet (raw UTF-8 in C): ``in``, ``add``, ``len`` and the ids it iterates, as a set of str,
    growth included - also made with room for as many ids as another set holds (``like``: the
    window before), whether it then grows past that room or not."""
    assert KERNEL is not None
    before = None
    if like is not None:
        before = KERNEL.EidSet()
        for i in range(like):
            before.add(f"b{i}" * (i % 5))
    ids, ref = KERNEL.EidSet(before), set()
    for i, (add, eid) in enumerate(ops):
        assert (eid in ids) == (eid in ref)
        if add:
            ids.add(eid)
            ref.add(eid)
        ids.add(f"n{i}")
        ref.add(f"n{i}")
        assert len(ids) == len(ref)
    assert sorted(ids) == sorted(ref) and len(list(ids)) == len(ref)


@needs_kernel
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from(range(len(CONFIGS))))
def test_switching_paths_between_batches_counts_as_the_pure_path(data: st.DataObject, config_index: int) -> None:
    """The two paths share a counter's windows (a pure path's set of ids, the kernel's EidSet):
    switching between batches changes nothing."""
    batches = _batches(data, False)
    switching = WindowCounter(CONFIGS[config_index], pure=True)
    out: list[Any] = []
    for i, (values, _) in enumerate(batches):
        switching.use_kernel(KERNEL if i % 2 == 0 else None)
        res = switching.feed_batch(values)
        out.append((res.accepted, res.duplicates, res.rejects, repr([(w.ws_ms, w.counts) for w in switching.take_closed()])))
    pure = WindowCounter(CONFIGS[config_index], pure=True)
    ref = []
    for values, _ in batches:
        res = pure.feed_batch(values)
        ref.append((res.accepted, res.duplicates, res.rejects, repr([(w.ws_ms, w.counts) for w in pure.take_closed()])))
    assert out == ref and switching.snapshot() == pure.snapshot()


@needs_kernel
@pytest.mark.parametrize("field", ["event_id", "region", "ts"])
def test_the_scanner_finds_a_bad_byte_or_the_closing_quote_at_every_position(field: str) -> None:
    """The string scanner steps 8 bytes at a time: a backslash, a control character, a quote,
    or in the event id (ASCII there) a byte >= 127, is found wherever it falls in a step."""
    assert KERNEL is not None
    ts = iso(BASE + 7)
    for pos in range(26):
        for bad, ascii_only in [("\\\\", False), ("\x01", False), ("\x1f", False), ("\x7f", True), ("é", True),
                                ("", False)]:
            value = "a" * pos + bad + "b" * (pos % 11) + "z"
            obj = {"ts": ts, "service": "ig", "region": "US/CA", "category": "feed", "source": "app",
                   "event_id": "e1"}
            if field == "ts":  # a long unknown field before the known ones: its end is found too
                text = '{"note":"' + value + '",' + orjson.dumps(obj).decode()[1:]
            else:
                obj[field] = "\0"
                text = orjson.dumps(obj).decode().replace('"\\u0000"', '"' + value + '"')
            fine = bad == "" or (ascii_only and field == "region")
            got = KERNEL.scan_ts(text.encode())
            assert (got == BASE + 7) if fine else got is None, (field, pos, bad, got)
