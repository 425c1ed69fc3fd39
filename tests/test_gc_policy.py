"""Every ``spikedetect`` command runs with the raised generation-0 threshold (spikedetect.gc_policy)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from spikedetect.cli import main
from spikedetect.gc_policy import GEN0_THRESHOLD, tune_collector


@pytest.fixture
def default_collector() -> Iterator[tuple[int, int, int]]:
    old = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*old)


def test_tune_collector_raises_gen0_only_and_returns_the_old_thresholds(
        default_collector: tuple[int, int, int]) -> None:
    assert tune_collector() == (700, 10, 10)
    assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
    assert gc.isenabled()


def test_a_command_runs_under_the_raised_threshold(default_collector: tuple[int, int, int], tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"ts":"2026-11-24T00:00:03.464Z","service":"chat","region":"US/IL/Chicago","category":"direct_messages",'
                    b'"source":"web","event_id":"e1"}\n')
    out = CliRunner().invoke(main, ["replay", str(src), "--out", str(tmp_path / "out.jsonl"), "--no-progress"])
    assert out.exit_code == 0, out.output
    assert gc.get_threshold()[0] == GEN0_THRESHOLD
