"""``spikedetect simulate`` from the command line, the Kafka path, and the docstring examples."""

from __future__ import annotations

import asyncio
import doctest
import gzip
import importlib
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

import spikedetect
from spikedetect.cli import main
from spikedetect.sim.simulate import Simulation, SimulationConfig
from spikedetect.sim.truth import load_truth

SMALL = ["--days", "0.5", "--scale", "0.1", "--scenario", "quiet,widespread", "--peak-scale", "0.01"]


def test_writes_gzip_jsonl_and_truth_byte_identical_for_a_seed(tmp_path: Path) -> None:
    runner = CliRunner()
    outs = []
    for name in ("a", "b"):
        out, truth = tmp_path / f"{name}.jsonl.gz", tmp_path / f"{name}.json"
        res = runner.invoke(
            main, ["simulate", *SMALL, "--out", str(out), "--truth", str(truth), "--seed", "4"]
        )
        assert res.exit_code == 0, res.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    lines = gzip.decompress(outs[0]).splitlines()
    truth = load_truth(tmp_path / "a.json")
    assert truth.stats is not None and truth.stats["events"] == len(lines)
    assert truth.seed == 4 and [o.kind for o in truth.outages] == ["widespread"]
    assert {t.kind for t in truth.traps} == {"producer_gap"}  # the others' slots are past 12:00
    assert orjson.loads(lines[0])["ts"].startswith("2026-11-24T00:00")


def test_stdout_start_and_plain_file(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        main,
        ["simulate", "--out", "-", "--days", "0.02", "--scenario", "none", "--start", "2026-12-01T06:00Z"],
    )
    assert res.exit_code == 0, res.output
    lines = [x for x in res.stdout.splitlines() if x.startswith("{")]
    assert len(lines) > 50 and all(orjson.loads(x)["ts"].startswith("2026-12-01T06:") for x in lines)
    out = tmp_path / "r.jsonl"
    assert (
        runner.invoke(main, ["simulate", "--out", str(out), "--days", "0.01", "--scenario", "none"]).exit_code
        == 0
    )
    assert out.read_bytes().endswith(b"}\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --out"),
        (["--out", "x", "--topic", "t"], "exactly one of --out"),
        (["--out", "-", "--scenario", "bogus"], "unknown scenario"),
        (["--out", "-", "--start", "2026-11-24T00:00:30Z"], "whole minute"),
    ],
)
def test_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, ["simulate", *args])
    assert res.exit_code == 2 and message in res.output


def test_help_lists_both_commands() -> None:
    runner = CliRunner()
    top = runner.invoke(main, ["--help"]).output
    assert "simulate" in top and "evaluate" in top
    text = runner.invoke(main, ["simulate", "--help"]).output
    for option in (
        "--out",
        "--truth",
        "--topic",
        "--bootstrap",
        "--seed",
        "--days",
        "--start",
        "--scale",
        "--peak-scale",
        "--scenario",
    ):
        assert option in text


@pytest.mark.parametrize(
    "module", ["sim.geo", "sim.traffic", "sim.injection", "sim.scenarios", "sim.suite", "sim.simulate", "sim.truth",
               "evaluate.score"]
)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(f"spikedetect.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_bundled_sample_is_what_the_documented_command_makes() -> None:
    """docs/simulation.md: --days 2 --scale 0.4 --peak-scale 0.1 --seed 1 --scenario suite."""
    data = Path(spikedetect.__file__).parent / "data"
    cfg = SimulationConfig(days=2, scale=0.4, peak_scale=0.1, seed=1, scenario="suite")
    sim = Simulation(cfg)
    expected = b"".join(line + b"\n" for line in sim.lines())
    assert gzip.decompress((data / "sample-reports.jsonl.gz").read_bytes()) == expected
    truth = load_truth(data / "sample-truth.json")
    assert truth == sim.truth and truth.stats == sim.stats.to_dict()
    assert (data / "sample-reports.jsonl.gz").stat().st_size < 8_000_000


@pytest.mark.kafka
def test_sends_to_a_kafka_topic(kafka_bootstrap: str, topic_name: str) -> None:
    from aiokafka import AIOKafkaConsumer

    res = CliRunner().invoke(
        main,
        ["simulate", "--topic", topic_name, "--bootstrap", kafka_bootstrap, "--days", "0.01", "--scale", "0.3",
         "--scenario", "none", "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    sent = int(res.output.split(" events")[0].replace(",", ""))

    async def consume() -> list[tuple[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            topic_name, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        got: list[tuple[bytes, bytes]] = []
        try:
            while len(got) < sent:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                got += [(m.key, m.value) for msgs in batch.values() for m in msgs]
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(consume())
    assert len(got) == sent > 20
    for key, value in got[:50]:
        assert orjson.loads(value)["region"].encode() == key
