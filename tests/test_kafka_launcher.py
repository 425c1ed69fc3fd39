"""The launcher's own behaviour that needs no second broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikedetect.kafka_local import LocalKafka, broker_answers
from spikedetect.kafka_local.launcher import new_cluster_id


def test_stop_is_safe_when_nothing_runs(tmp_path: Path) -> None:
    broker = LocalKafka(port=29092, home=tmp_path)
    assert broker.status().running is False
    assert broker.stop() is False
    assert broker.stop() is False


def test_a_closed_port_does_not_answer() -> None:
    assert broker_answers("127.0.0.1:1", timeout_s=0.5) is False


def test_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    broker = LocalKafka(port=29093, home=tmp_path)
    broker.state_dir.mkdir(parents=True)
    broker.pid_file.write_text("999999999")
    assert broker.status().running is False


@pytest.mark.parametrize(
    ("first_byte", "redraws"),
    [(0x00, 0), (0xF7, 0), (0xF8, 1), (0xFB, 1), (0xFC, 0)],  # 0xF8-0xFB encode as "-"
)
def test_cluster_id_never_starts_with_a_dash(first_byte: int, redraws: int) -> None:
    drawn: list[bytes] = []

    def draw() -> bytes:
        raw = bytes([first_byte if not drawn else 0x41]) + bytes(15)
        drawn.append(raw)
        return raw

    cluster_id = new_cluster_id(draw)
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22
    assert len(drawn) == 1 + redraws
