"""Packs (``spikedetect.partial/v2``): a forward's closed windows in few messages per service.

A pack decodes into exactly the core Partials the v1 per-window messages give (same source,
window, ``(service, chunk)`` part and counts), in (window, chunk) order, no message past the
row bound unless one chunk alone is; re-encoding a decoded pack gives its bytes back; v1
messages still decode; anything else is a WireError.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from spikedetect.core.counter import ClosedWindow
from spikedetect.core.messages import Partial
from spikedetect.kernel import load_compiled
from spikedetect.stream import wire
from spikedetect.stream.wire import (
    Pack,
    WireError,
    decode,
    encode_pack,
    encode_packs,
    encode_partials,
    partials_of,
)

W = 60_000
names = st.sampled_from(["US", "US/CA", "GB", "IN/MH", "é", "a|b"])
leaves = st.dictionaries(st.tuples(names, st.sampled_from(["login", "feed"]), st.sampled_from(["app", "web"])),
                         st.integers(1, 10**6), max_size=9)
window_counts = st.dictionaries(st.sampled_from(["ig", "fb", "wa"]), leaves, max_size=3)


@st.composite
def closed_windows(draw: Any) -> list[ClosedWindow]:
    starts = sorted(draw(st.sets(st.integers(0, 50), max_size=8)))
    return [ClosedWindow(1_795_651_200_000 + i * W, draw(window_counts)) for i in starts]


@contextmanager
def chunk_rows(n: int, pack: int | None = None) -> Iterator[None]:
    """Small chunks and packs, so that windows split and packs fill up with few rows."""
    old = wire.CHUNK_ROWS, wire.PACK_ROWS
    wire.CHUNK_ROWS, wire.PACK_ROWS = n, n if pack is None else pack
    try:
        yield
    finally:
        wire.CHUNK_ROWS, wire.PACK_ROWS = old


def key(p: Partial) -> tuple[str, int, int]:
    return (p.part[0], p.ws_ms, p.part[1])


@settings(max_examples=300, deadline=None)
@given(source=st.integers(0, 64), windows=closed_windows(), rows=st.sampled_from([1, 2, 3, 5, 4000]))
def test_packs_carry_exactly_the_v1_partials(source: int, windows: list[ClosedWindow], rows: int) -> None:
    with chunk_rows(rows):
        v1 = [decode(blob) for w in windows for _, blob in encode_partials(source, w)]
        sent = list(encode_packs(source, windows))
    packs = [decode(blob) for _, blob in sent]
    assert all(isinstance(p, Pack) and p.service == svc and p.source == source
               for (svc, _), p in zip(sent, packs, strict=True))
    got = [p for pack in packs for p in partials_of(pack)]
    assert sorted(got, key=key) == got  # by service, then (window, chunk)
    assert sorted(got, key=key) == sorted(v1, key=key)  # type: ignore[arg-type]
    assert [repr(p) for p in sorted(got, key=key)] == [repr(p) for p in sorted(v1, key=key)]  # type: ignore[arg-type]
    for blob, pack in zip((b for _, b in sent), packs, strict=True):
        assert isinstance(pack, Pack)
        n_rows = [len(orjson.loads(blob)["w"][i][2]) for i in range(len(pack.partials))]
        assert len(n_rows) == 1 or sum(n_rows) <= rows  # bounded, unless one chunk alone
        assert encode_pack(pack) == blob
    services = [svc for svc, _ in sent]
    assert services == sorted(services)
    for a, b in itertools.pairwise(sent):  # a pack is full before the next one starts
        pa, pb = decode(a[1]), decode(b[1])
        assert isinstance(pa, Pack) and isinstance(pb, Pack)
        if a[0] == b[0]:
            assert sum(len(c) for _, _, c in orjson.loads(a[1])["w"]) + len(orjson.loads(b[1])["w"][0][2]) > rows


@settings(max_examples=200, deadline=None)
@given(source=st.integers(0, 64), windows=closed_windows(), rows=st.sampled_from([1, 3, 4000]),
       packed=st.sampled_from([1, 3, 4, 7, 4000]))
def test_names_tell_apart_every_run_of_a_service_s_chunks(source: int, windows: list[ClosedWindow],
                                                          rows: int, packed: int) -> None:
    """Also across packings along other boundaries and other pack bounds (one chunk size)."""
    with chunk_rows(rows):
        packs = [decode(blob) for _, blob in encode_packs(source, windows)]
    with chunk_rows(rows, packed):
        singles = [decode(blob) for w in windows for _, blob in encode_packs(source, [w])]
    runs = {}
    for p in packs + singles:
        assert isinstance(p, Pack)
        runs.setdefault(p.name(), set()).add(tuple(key(q) for q in p.partials))
    assert all(len(v) == 1 for v in runs.values())


def test_no_windows_no_messages() -> None:
    assert list(encode_packs(0, [])) == []


@pytest.mark.parametrize("blob", [
    b'{"t": "pk", "src": 0, "svc": "ig", "w": []}',
    b'{"t": "pk", "src": 0, "svc": "ig", "w": [[120000, 0, []], [60000, 0, []]]}',
    b'{"t": "pk", "src": 0, "svc": "ig", "w": [[60000, 0]]}',
    b'{"t": "pk", "src": 0, "svc": "ig", "w": [[60000, 0, [["US", "x", "app"]]]]}',
    b'{"t": "pk", "src": "x", "svc": "ig", "w": [[60000, 0, []]]}',
    b'{"t": "pk", "src": 0, "svc": "ig"}',
    b'{"t": "q"}', b"[1]", b"nope",
])
def test_what_is_not_a_pack_is_a_wire_error(blob: bytes) -> None:
    with pytest.raises(WireError):
        decode(blob)


def test_a_v1_partial_still_decodes_as_the_pack_s_chunk() -> None:
    w = ClosedWindow(60_000, {"ig": {("US", "feed", "app"): 2}})
    (_, v1), = encode_partials(4, w)
    (_, v2), = encode_packs(4, [w])
    pack = decode(v2)
    assert isinstance(pack, Pack)
    assert partials_of(decode(v1)) == pack.partials


@settings(max_examples=200, deadline=None)
@given(source=st.integers(0, 64), windows=closed_windows(), rows=st.sampled_from([1, 2, 4000]), seed=st.randoms())
def test_messages_do_not_depend_on_the_counter_s_leaf_order(source: int, windows: list[ClosedWindow], rows: int,
                                                            seed: Any) -> None:
    """Chunks are cut from rows in (region, category, source) order, whatever order the counter
    met the leaves in: a window re-counted after a restart sends the same chunks, byte for byte."""
    shuffled = []
    for w in windows:
        counts = {}
        for svc, leaves_of in w.counts.items():
            items = list(leaves_of.items())
            seed.shuffle(items)
            counts[svc] = dict(items)
        shuffled.append(ClosedWindow(w.ws_ms, counts))
    with chunk_rows(rows):
        assert list(encode_packs(source, shuffled)) == list(encode_packs(source, windows))
        assert [m for w in shuffled for m in encode_partials(source, w)] == \
            [m for w in windows for m in encode_partials(source, w)]
        by_window: dict[tuple[str, int], list[tuple[str, str, str]]] = {}
        for svc, blob in encode_packs(source, windows):  # (window, chunk) order within a service
            for ws, _, chunk in orjson.loads(blob)["w"]:
                by_window.setdefault((svc, ws), []).extend(tuple(r[:3]) for r in chunk)
        assert all(keys == sorted(keys) for keys in by_window.values())


field = st.one_of(names, st.integers(-3, 3), st.booleans(), st.floats(-2.5, 2.5), st.none(), st.just([]))
ours = st.tuples(names, names, names, st.integers(0, 10**20)).map(list)  # what we send (and some huge counts)
text = st.one_of(names, names, field)
odd = st.one_of(st.tuples(text, text, text, st.one_of(st.integers(0, 9), field)).map(list),  # a field off
                st.lists(field, min_size=3, max_size=5), ours.map(tuple))  # anything else a message might hold


@st.composite
def wire_rows(draw: st.DrawFn) -> list[Any]:
    """Rows as we send them, with at most one odd row among them (one odd row sends the whole
    list down the reference path, so more would hide what the compiled loop does)."""
    rows: list[Any] = draw(st.lists(ours, max_size=6))
    extra = draw(st.one_of(st.none(), odd))
    if extra is not None:
        rows.insert(draw(st.integers(0, len(rows))), extra)
    return rows


def _outcome(rows: list[Any]) -> tuple[str, Any]:
    try:
        counts = wire._counts(rows)
    except (TypeError, ValueError) as exc:
        return "error", type(exc)
    return "counts", (list(counts.items()), [type(k) for key in counts for k in key], [type(v) for v in counts.values()])


_RECORDS = load_compiled("_records")  # whatever SPIKEDETECT_PURE says: the kernel is compared with the reference


@pytest.mark.skipif(_RECORDS is None, reason="compiled record kernel not built (no C compiler)")
@settings(max_examples=400, deadline=None)
@given(rows=wire_rows())
@example(rows=[["US", "feed", "app", True]])  # bool is an int subclass: int() makes it 1
@example(rows=[["US", "feed", "app", 2.5]])
@example(rows=[["US", "feed", 7, 1]])
@example(rows=[["US", "feed", "app", 1], ["US", "feed", "app", 2]])  # a repeated key: the last count, the first place
def test_compiled_row_decoding_equals_the_comprehension(rows: list[Any]) -> None:
    """The compiled decoding of a partial's rows gives the reference comprehension's counts (same
    keys in the same order, same values and types) or the same error, whatever the rows hold."""
    with _rows_by(_RECORDS):
        compiled = _outcome(rows)
    with _rows_by(None):
        assert _outcome(rows) == compiled


@contextmanager
def _rows_by(kernel: Any) -> Iterator[None]:
    saved, wire._records = wire._records, kernel
    try:
        yield
    finally:
        wire._records = saved
