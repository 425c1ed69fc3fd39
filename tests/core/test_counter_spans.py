"""The counting kernel fed line spans (``kernel.Lines``, what ``spikedetect replay`` reads files
into) against the same kernel fed lists of bytes: identical counts, rejects and reasons, dead
letters, statistics and state, so a file replays the same whichever form its batches take."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.core.test_counter_kernel import BASE, CONFIGS, KERNEL, MIN, _batches, iso, needs_kernel, run

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter


def as_spans(values: list[bytes]) -> object:
    """``values`` as the kernel's Lines, cut from one block as the file reader cuts it."""
    assert KERNEL is not None
    block = b"".join(v + b"\n" for v in values)
    lines = KERNEL.split_lines(block, len(block), 1)
    assert list(lines) == values
    return lines


@needs_kernel
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from(range(len(CONFIGS))), st.booleans(), st.booleans())
def test_spans_and_lists_count_alike(data: st.DataObject, config_index: int, with_fallbacks: bool,
                                     named: bool) -> None:
    batches = []
    for values, fallbacks in _batches(data, with_fallbacks):  # a file line holds no newline and is not blank
        keep = [i for i, v in enumerate(values) if b"\n" not in v and v.strip()]
        batches.append(([values[i] for i in keep], None if fallbacks is None else [fallbacks[i] for i in keep]))
    spans = [(as_spans(values), fallbacks) for values, fallbacks in batches]
    lists = WindowCounter(CONFIGS[config_index], pure=True)
    lists.use_kernel(KERNEL)
    compiled = WindowCounter(CONFIGS[config_index], pure=True)
    compiled.use_kernel(KERNEL)
    assert run(compiled, spans, named) == run(lists, batches, named)  # type: ignore[arg-type]


@needs_kernel
def test_a_span_becomes_bytes_only_where_it_is_kept() -> None:
    """Held, rejected and slow-path lines come out as the very bytes of the line (a held report's
    value is its own copy, not a view of the block)."""
    ts = BASE + 5 * MIN
    good = orjson.dumps({"ts": iso(ts), "service": "ig", "region": "US/CA", "category": "feed", "source": "app"})
    later = good.replace(iso(ts).encode(), iso(ts + 1).encode())  # the same combination: the C scanner's
    c = WindowCounter(DetectorConfig(watermark_quorum=4, window_ms=MIN, max_value_bytes=4096), pure=True)
    c.use_kernel(KERNEL)
    c.feed_batch([good])  # no frontier yet: held (and its combination cached by its raw fields)
    res = c.feed_batch(as_spans([b"nope", later, b'{"a":1}' + b" " * 9000]))  # type: ignore[arg-type]
    assert res.rejects == [(0, "not_json"), (2, "value_too_large")]
    assert [h.raw for h in c.held.items] == [good, later]
    assert all(type(h.raw) is bytes for h in c.held.items)


@needs_kernel
@pytest.mark.parametrize(("block", "end", "numbers", "seen"), [
    (b"", 0, [], 0),
    (b"a\n", 2, [7], 1),
    (b"a\n\n \t\r\x0b\x0c\nb\r\n", 12, [7, 10], 4),
    (b"a\nb", 2, [7], 1),  # after end: the next block's
    (b"\n\n", 2, [], 2),
    (b"\x00\n\xff\n", 4, [7, 8], 2),  # NUL and non-ASCII are not blank
])
def test_split_lines_cuts_and_numbers_as_split_and_strip(block: bytes, end: int, numbers: list[int],
                                                          seen: int) -> None:
    assert KERNEL is not None
    lines = KERNEL.split_lines(block, end, 7)
    assert list(lines) == [p for p in block[:end].split(b"\n")[:-1] if p.strip()]
    assert [lines.number(i) for i in range(len(lines))] == numbers and lines.seen == seen
    assert [lines[i] for i in range(-len(lines), 0)] == list(lines)
    with pytest.raises(IndexError):
        lines[len(lines)]


@needs_kernel
@pytest.mark.parametrize(("start", "end", "numbers"), [(0, 9, [7, 8, 9]), (3, 9, [7, 8]), (6, 9, [7]), (9, 9, []),
                                                      (3, 3, [])])
def test_split_lines_from_a_start_cuts_only_the_lines_after_it(start: int, end: int, numbers: list[int]) -> None:
    assert KERNEL is not None
    block = b"ab\ncd\nef\ngh"
    lines = KERNEL.split_lines(block, end, 7, start)
    assert list(lines) == block[start:end].split(b"\n")[:-1] and [lines.number(i) for i in range(len(lines))] == numbers


@needs_kernel
@pytest.mark.parametrize(("start", "end"), [(1, 3), (4, 6), (6, 3), (-1, 3), (3, 20)])
def test_split_lines_refuses_a_start_not_after_a_newline_or_past_the_end(start: int, end: int) -> None:
    assert KERNEL is not None
    with pytest.raises(ValueError, match="newline"):
        KERNEL.split_lines(b"ab\ncd\nef\ngh", end, 1, start)


@needs_kernel
@pytest.mark.parametrize("end", [-1, 1, 4])
def test_split_lines_refuses_an_end_not_after_a_newline(end: int) -> None:
    assert KERNEL is not None
    with pytest.raises(ValueError, match="newline"):
        KERNEL.split_lines(b"ab\ncd", end, 1)
