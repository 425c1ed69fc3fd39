"""The counting kernel's hash tables give up on long probe sequences (``_max_probes`` in
kernel/_combos.pxi): a combination then goes the slow path uncached, and a window's event-id
set turns into a Python set of bytes. Producers choose the hashed bytes, so this is what keeps
colliding keys from making counting quadratic; results must not change. A cap of 0 makes every
first-bucket collision take the fallback, so these tests exercise it on ordinary data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.core.test_counter_kernel import BASE, CONFIGS, KERNEL, MIN, _batches, iso, needs_kernel, run

from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import WindowCounter


@contextmanager
def max_probes(n: int) -> Iterator[None]:
    assert KERNEL is not None
    old = KERNEL._set_max_probes(n)
    try:
        yield
    finally:
        KERNEL._set_max_probes(old)


@needs_kernel
def test_an_event_id_set_past_the_probe_cap_moves_to_a_python_set_and_answers_the_same() -> None:
    """Ids added before and after the move are found, others are not, ``len`` counts each once
    and iteration keeps insertion order (the arena is kept)."""
    assert KERNEL is not None
    ids = [f"e{i}" for i in range(2000)] + ["ü", "東京", "e\ud800", ""]
    with max_probes(0):
        s = KERNEL.EidSet()
        for eid in ids:
            assert eid not in s
            s.add(eid)
            s.add(eid)
        assert s.degraded
        assert all(eid in s for eid in ids) and "e2000" not in s and "x" not in s
        assert len(s) == len(ids) and list(s) == ids
    plain = KERNEL.EidSet()
    for eid in ids:
        plain.add(eid)
    assert not plain.degraded and list(plain) == ids


@needs_kernel
def test_the_membership_test_alone_can_move_a_set_past_the_cap() -> None:
    """``in`` that probes past the cap moves the set too, and still answers right."""
    assert KERNEL is not None
    s = KERNEL.EidSet()
    for i in range(500):
        s.add(f"id{i}")
    assert not s.degraded
    with max_probes(0):
        answers = [f"id{i}" in s for i in range(0, 1000, 7)]
        assert s.degraded
    assert answers == [i < 500 for i in range(0, 1000, 7)]
    s.add("id3")
    s.add("new")
    assert len(s) == 501 and "new" in s


@needs_kernel
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from(range(len(CONFIGS))), st.booleans(), st.sampled_from([0, 1]))
def test_counting_with_the_probe_cap_reached_agrees_with_the_pure_path(
        data: st.DataObject, config_index: int, with_fallbacks: bool, cap: int) -> None:
    """Combinations refused by the cache and id sets moved to Python sets: same counts, rejects,
    dict order, dead letters and state as the pure path."""
    batches = _batches(data, with_fallbacks)
    pure = run(WindowCounter(CONFIGS[config_index], pure=True), batches)
    with max_probes(cap):
        compiled = WindowCounter(CONFIGS[config_index], pure=True)
        compiled.use_kernel(KERNEL)
        assert run(compiled, batches) == pure


@needs_kernel
@pytest.mark.parametrize("cap", [0, 128])
def test_many_combinations_past_the_cap_are_counted_exactly_and_not_all_cached(cap: int) -> None:
    """600 combinations over two windows, each reported three times: with a cap of 0 some
    first-bucket collisions are refused by the cache (fewer cached than seen) and every count is
    still the pure path's."""
    config = DetectorConfig(watermark_quorum=1, window_ms=MIN, lateness_ms=MIN, max_keys_per_service=10_000)
    values = [orjson.dumps({"ts": iso(BASE + (rep * MIN) // 3 + i), "service": "ig", "region": f"US/R{i % 200}",
                            "category": f"c{i % 3}", "source": "app", "event_id": f"e{rep}-{i}"})
              for rep in range(3) for i in range(600)]
    batches: list[tuple[list[bytes], list[int | None] | None]] = [(values[:900], None), (values[900:], None)]
    pure = run(WindowCounter(config, pure=True), batches)
    assert pure[0][0] + pure[3][0] == 1800  # every line accepted
    with max_probes(cap):
        compiled = WindowCounter(config, pure=True)
        compiled.use_kernel(KERNEL)
        assert run(compiled, batches) == pure
        fed = WindowCounter(config, pure=True)
        fed.use_kernel(KERNEL)
        fed.feed_batch(values)
        cached = len(fed._raw_combos)
    assert (cached < 600) if cap == 0 else cached == 600, cached
