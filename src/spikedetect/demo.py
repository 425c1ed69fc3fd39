"""``spikedetect demo``: the main job on the bundled sample, live when Kafka answers.

* Kafka reachable (``SPIKEDETECT_KAFKA`` or 127.0.0.1:9092): starts a worker, produces the
  bundled two-day sample to its input topic, prints incidents as the worker publishes them
  and keeps the worker (and its dashboard) running until Ctrl-C (or exits with ``--exit``).
* No Kafka: replays the sample offline through the same detection core.

Either way it ends with the evaluation against the sample's ground truth.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from spikedetect.core import DetectorConfig
from spikedetect.evaluate.score import evaluate
from spikedetect.files.progress import Progress
from spikedetect.files.sources import BatchReader, count_bytes, open_binary
from spikedetect.kafka_local import broker_answers
from spikedetect.options import option
from spikedetect.replay.runner import Replay
from spikedetect.sim.truth import load_truth
from spikedetect.stream.scrape import scrape
from spikedetect.stream.tools import format_incident

if TYPE_CHECKING:
    from spikedetect.stream.settings import Settings

SAMPLE = "sample-reports.jsonl.gz"
TRUTH = "sample-truth.json"


def data_path(name: str) -> Path:
    return Path(str(resources.files("spikedetect") / "data" / name))


@click.command()
@option("--offline", is_flag=True, help="replay offline even when Kafka answers")
@option("--bootstrap", default=None, show_default="$SPIKEDETECT_KAFKA or 127.0.0.1:9092",
              help="Kafka bootstrap servers [env SPIKEDETECT_KAFKA]")
@option("--out", "out_dir", default="demo-out", show_default=True, help="where results are written")
@option("--exit", "exit_after", is_flag=True, help="live mode: stop the worker once the sample is done")
@option("--web-port", default=6066, show_default=True, help="live mode: dashboard port")
def demo(offline: bool, bootstrap: str | None, out_dir: str, exit_after: bool, web_port: int) -> None:
    """Detect the outages in the bundled sample (live on Kafka when it answers, else offline)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bootstrap = bootstrap or os.environ.get("SPIKEDETECT_KAFKA", "127.0.0.1:9092")
    if not offline and broker_answers(bootstrap):
        incidents = _live(bootstrap, out, exit_after, web_port)
    else:
        click.echo(f"no Kafka at {bootstrap}: replaying the bundled sample offline", err=True)
        incidents = _offline(out)
    truth = load_truth(data_path(TRUTH))
    result = evaluate(incidents, truth)
    from rich.console import Console

    from spikedetect.evaluate.render import render

    render(result, Console(stderr=True))
    click.echo(f"incident events: {out / 'incidents.jsonl'}", err=True)


def _offline(out: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with (out / "incidents.jsonl").open("wb") as f:
        def write(e):  # type: ignore[no-untyped-def]
            f.write(e.to_json() + b"\n")
            events.append(e.to_dict())
            click.echo(format_incident(e.to_dict()))

        runner = Replay(DetectorConfig(), on_incident=write)
        path = data_path(SAMPLE)
        with open_binary(path) as stream, Progress(sys.stderr.isatty(), "replay", "events") as update:
            reader = BatchReader(stream, str(path))
            for batch in reader:
                runner.feed(batch)
                update(reader.position(), count_bytes(path), runner.summary.events)
        runner.finish()
    s = runner.summary
    click.echo(f"replayed {s.events:,} reports in {s.seconds:.1f}s: {s.incidents_opened} outage incidents "
               f"({s.region_incidents_opened} region incidents)", err=True)
    return events


def _live(bootstrap: str, out: Path, exit_after: bool, web_port: int) -> list[dict[str, Any]]:
    import asyncio

    from spikedetect.stream.settings import Settings
    from spikedetect.stream.tools import produce_file

    run_id = time.strftime("%Y%m%d%H%M%S")
    app_id = f"spikedetect-demo-{run_id}"
    env = dict(os.environ, SPIKEDETECT_KAFKA=bootstrap, SPIKEDETECT_APP_ID=app_id,
               SPIKEDETECT_INPUT_TOPIC=f"{app_id}-reports", SPIKEDETECT_INCIDENTS_TOPIC=f"{app_id}-incidents",
               SPIKEDETECT_DLQ_TOPIC=f"{app_id}-dlq", SPIKEDETECT_IDLE_MS="3000",
               SPIKEDETECT_IDLE_RATE="600", SPIKEDETECT_WEB_PORT=str(web_port),
               SPIKEDETECT_DATADIR=str(out / "worker-data"))
    log = (out / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "spikedetect", "worker"], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    click.echo(f"worker started (app {app_id}); dashboard http://localhost:{web_port}/ ; log {out}/worker.log",
               err=True)
    settings = Settings.from_env(env)
    try:
        time.sleep(5)
        n = asyncio.run(produce_file(settings, str(data_path(SAMPLE)), settings.input_topic))
        click.echo(f"produced {n:,} sample reports to {settings.input_topic}", err=True)
        events = asyncio.run(_follow(settings, out, worker, n, web_port))
        if not exit_after:
            click.echo("sample done; the worker keeps running - Ctrl-C to stop", err=True)
            worker.wait()
        return events
    except KeyboardInterrupt:
        return []
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()


QUIET_S = 45.0  # the demo ends this long after the last incident event, once the sample is read
FOLLOW_MAX_S = 900.0  # and in any case after this long


def _consumed(web_port: int) -> float:
    """Reports the worker has read so far (its /metrics); 0 while it is not serving yet."""
    return scrape("spikedetect_events_consumed_total", web_port) or 0.0


async def _follow(settings: Settings, out: Path, worker: subprocess.Popen[bytes], produced: int,
                  web_port: int) -> list[dict[str, Any]]:
    """Print incident events until the worker has read the whole sample and then been quiet
    for ``QUIET_S`` (on a busy machine its start alone can take longer than that)."""
    from spikedetect import kafka_clients

    consumer = kafka_clients.consumer(settings.connection(), settings.incidents_topic, group_id=None,
                                      auto_offset_reset="earliest")
    await consumer.start()
    events: list[dict[str, Any]] = []
    started = last = time.monotonic()
    read_all = False
    try:
        with (out / "incidents.jsonl").open("wb") as f:
            while worker.poll() is None and time.monotonic() - started < FOLLOW_MAX_S:
                if not read_all:
                    read_all = _consumed(web_port) >= produced
                    last = time.monotonic()  # the quiet time counts from when the sample is read
                elif time.monotonic() - last >= QUIET_S:
                    break
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for rec in records:
                        last = time.monotonic()
                        f.write(rec.value + b"\n")
                        event = orjson.loads(rec.value)
                        events.append(event)
                        click.echo(format_incident(event))
    finally:
        await consumer.stop()
    return events
