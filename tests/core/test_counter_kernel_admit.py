"""The compiled counting kernel's admission of a new combination of known field values
(spikedetect/kernel/_admit.pxi): a line whose raw service, region, category and source the
validator has each admitted before is cached and counted without the validator, with the
validator's normalised values, and gives what the pure counter gives - counts, rejects and
the region budget of its service included.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter
from spikedetect.kernel import load_compiled

KERNEL = load_compiled()
pytestmark = pytest.mark.skipif(KERNEL is None, reason="the compiled kernel is not built (no C compiler)")

BASE = 1_795_651_200_000  # 2026-11-26T00:00:00Z
MIN = 60_000
CONFIG = DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=10 * MIN)


def report(service: str, region: str, category: str, source: str, eid: str, ts_ms: int = BASE + 1) -> bytes:
    return orjson.dumps({"ts": ts_ms, "service": service, "region": region, "category": category, "source": source,
                         "event_id": eid})


def counters(config: DetectorConfig) -> tuple[WindowCounter, WindowCounter, list[Any]]:
    """A pure counter, a compiled one, and the list of the objects the compiled one's slow
    path (the validator) was called with."""
    compiled = WindowCounter(config, pure=True)
    compiled.use_kernel(KERNEL)
    slow_calls: list[Any] = []
    slow = compiled._slow_path

    def spy(obj: Any, fallback: int | None) -> Any:
        slow_calls.append(obj)
        return slow(obj, fallback)

    compiled._slow_path = spy  # type: ignore[method-assign]
    return WindowCounter(config, pure=True), compiled, slow_calls


def feed(counter: WindowCounter, lines: list[bytes]) -> tuple[list[tuple[int, str]], int, int]:
    r = counter.feed_batch(lines)
    return r.rejects, r.accepted, r.duplicates


def test_a_new_combination_of_known_values_is_counted_without_the_validator() -> None:
    pure, compiled, slow_calls = counters(CONFIG)
    first = [report("ig", "us/CA", " Feed ", "app", "a"), report("ig", "DE", "login", "web", "b")]
    new = [report("ig", "DE", " Feed ", "app", "c"), report("ig", "us/CA", "login", "web", "d"),
           report("ig", "us/CA", "login", "web", "d")]  # a duplicate of the new combination's report
    for lines in (first, new):
        assert feed(compiled, lines) == feed(pure, lines)
    assert len(slow_calls) == 2  # the two first lines only
    assert compiled.finish() is None and pure.finish() is None
    assert compiled.take_closed() == pure.take_closed()
    cached = {v[0] for v in compiled._raw_combos.as_dict().values()}
    assert cached == {("ig", "US/CA", "feed", "app"), ("ig", "DE", "login", "web"), ("ig", "DE", "feed", "app"),
                      ("ig", "US/CA", "login", "web")}  # the validator's normalised values


def test_an_unknown_value_still_takes_the_validator() -> None:
    pure, compiled, slow_calls = counters(CONFIG)
    lines = [report("ig", "DE", "feed", "app", "a"), report("ig", "DE", "feed", "tv", "b"),
             report("ig", "DE", "x" * 40, "app", "c")]
    assert feed(compiled, lines) == feed(pure, lines)
    assert [o["source"] for o in slow_calls] == ["app", "tv", "app"]
    assert feed(compiled, lines)[0] == [(2, "bad_category")]


def test_a_new_combination_beyond_the_region_budget_is_too_many_keys_each_time() -> None:
    """Known values do not skip the service's budget of regions: the kernel caches the
    combination as of an earlier generation, so its region is counted (and refused) per line."""
    pure, compiled, _ = counters(DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=10 * MIN,
                                                max_keys_per_service=1))
    lines = [report("ig", "US", "feed", "app", "a"), report("fb", "DE", "feed", "app", "b"),
             report("ig", "DE", "feed", "app", "c"), report("ig", "DE", "feed", "app", "d"),
             report("fb", "DE", "feed", "app", "e")]
    got = feed(compiled, lines)
    assert got == feed(pure, lines)
    assert got[0] == [(2, "too_many_keys"), (3, "too_many_keys")] and got[1] == 3
    assert compiled._regions == pure._regions == {"ig": {"US"}, "fb": {"DE"}}


def test_a_known_looking_field_that_is_not_utf8_is_the_validators_reject() -> None:
    pure, compiled, _ = counters(CONFIG)
    good = report("ig", "DE", "feed", "app", "a")
    bad = good.replace(b'"ig"', b'"i\xff"')
    for lines in ([good], [bad, good]):
        assert feed(compiled, lines) == feed(pure, lines)
    assert feed(compiled, [bad])[0] == [(0, "not_utf8")]
