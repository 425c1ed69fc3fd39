"""One configuration, two drivers: ``replay`` reads the detector settings as ``worker`` does (issue 16).

The same ``SPIKEDETECT_*`` variables and ``--config FILE`` (TOML), flags over the environment
over the file; replay prints the settings it used and their params_hash, which its incident
events carry; absurd settings are warned about.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from spikedetect.cli import main
from spikedetect.core import DetectorConfig
from spikedetect.stream.settings import Settings


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of one key, 5 reports a minute, with a 30-minute spike of 100 a minute on day 2."""
    start = 1_795_478_400_000  # 2026-11-24T00:00Z
    lines = []
    for minute in range(2 * 1440):
        n = 100 if 2000 <= minute < 2030 else 5
        lines += [orjson.dumps({"ts": start + minute * 60_000 + i, "service": "ig", "region": "US/CA",
                                "category": "feed"}) for i in range(n)]  # fmt: skip
    path = tmp_path_factory.mktemp("config") / "r.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def replay(reports: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Result, str]:
    res = CliRunner().invoke(main, ["replay", str(reports), "--out", str(out), *args], env=env)
    assert res.exit_code == 0, res.output
    m = re.search(r"^detector (\S+) params_hash (\w+): ", res.output, re.M)
    assert m is not None, res.output
    hashes = {e["detector"]["params_hash"] for e in map(orjson.loads, out.read_bytes().splitlines())}
    assert hashes == {m[2]}, (hashes, m[2])  # the events carry the hash replay printed
    return res, m[2]


def test_replay_uses_the_worker_environment(reports: Path, tmp_path: Path) -> None:
    env = {"SPIKEDETECT_OPEN_THRESHOLD": "9", "SPIKEDETECT_DETECTOR": "ewma", "SPIKEDETECT_APP_ID": "x"}
    worker = Settings.from_env(env).detector
    assert worker.params_hash != DetectorConfig().params_hash
    res, used = replay(reports, tmp_path / "a.jsonl", env=env)
    assert used == worker.params_hash
    assert "open_threshold=9.0 (env SPIKEDETECT_OPEN_THRESHOLD)" in res.output and "detector ewma" in res.output
    _, plain = replay(reports, tmp_path / "b.jsonl")
    assert plain == DetectorConfig().params_hash


def test_config_file_env_and_flags_in_that_order(reports: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "spikedetect.toml"
    cfg.write_text('# production\napp_id = "prod"\nkafka = "broker:9092"\ndetector = "ewma"\n'
                   "open_threshold = 7\nmin_excess = 12\n")  # fmt: skip
    worker = Settings.from_env({}, config_file=str(cfg))
    assert (worker.app_id, worker.bootstrap, worker.detector.open_threshold) == ("prod", "broker:9092", 7.0)
    res, used = replay(reports, tmp_path / "a.jsonl", "--config", str(cfg), env={})
    assert used == worker.detector.params_hash
    assert f"open_threshold=7.0 (--config {cfg})" in res.output
    env = {"SPIKEDETECT_OPEN_THRESHOLD": "8"}
    res, used = replay(reports, tmp_path / "b.jsonl", "--config", str(cfg), env=env)
    assert used == Settings.from_env(env, config_file=str(cfg)).detector.params_hash
    assert "open_threshold=8.0 (env SPIKEDETECT_OPEN_THRESHOLD)" in res.output and "min_excess=12.0 (--config" in res.output
    res, used = replay(reports, tmp_path / "c.jsonl", "--config", str(cfg), "--open-threshold", "9", env=env)
    assert used == Settings.from_env(env, config_file=str(cfg), open_threshold=9).detector.params_hash
    assert "open_threshold=9.0 (flag)" in res.output
    res, used = replay(reports, tmp_path / "d.jsonl", env={"SPIKEDETECT_CONFIG": str(cfg)})
    assert used == worker.detector.params_hash


@pytest.mark.parametrize("text, where, what", [
    ('window_ms = 60000\nopen_threshold = = 3\n', ":2:", "not valid TOML"),
    ('window_ms = 60000\n\nwindow_size = 3\n', ":3:", "unknown setting 'window_size'"),
    ('window_ms = "a minute"\n', "", "window_ms must be a number, got 'a minute' (set by --config"),
    ('[detector]\nname = "ewma"\n', ":1:", "detector must be a string, number or boolean"),
])  # fmt: skip
def test_a_bad_config_file_is_one_line_for_both_drivers(tmp_path: Path, text: str, where: str, what: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    src = tmp_path / "r.jsonl"
    src.write_text('{"ts": "2026-11-24T00:00:30Z", "service": "ig", "region": "US", "category": "feed"}\n')
    for args in (["replay", str(src), "--config", str(cfg)], ["worker", "--config", str(cfg)]):
        res = CliRunner().invoke(main, args, env={})
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert f"{cfg}{where}" in res.output and what in res.output, res.output
    missing = CliRunner().invoke(main, ["replay", str(src), "--config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "no such configuration file" in missing.output


def test_absurd_settings_are_warned_about(tmp_path: Path) -> None:
    src = tmp_path / "r.jsonl"
    src.write_text('{"ts": "2026-11-24T00:00:30Z", "service": "ig", "region": "US", "category": "feed"}\n')
    res = CliRunner().invoke(main, ["replay", str(src), "--out", str(tmp_path / "o.jsonl"), "--window-ms", "7"])
    assert res.exit_code == 0
    assert re.search(r"^spikedetect: warning: window_ms 7 is under a second", res.output, re.M)
    calm = CliRunner().invoke(main, ["replay", str(src), "--out", str(tmp_path / "o.jsonl")])
    assert "warning" not in calm.output
