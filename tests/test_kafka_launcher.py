"""The launcher's own behaviour that needs no second broker."""

from __future__ import annotations

from pathlib import Path

from spikedetect.kafka_local import LocalKafka, broker_answers


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
