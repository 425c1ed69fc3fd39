"""Run a single-node Apache Kafka 4.x broker (KRaft) from Maven Central jars.

There is no Docker engine on the development and CI machines, so the project
runs a real broker itself: Maven resolves ``org.apache.kafka:kafka_2.13`` and its
runtime dependencies (``pom.xml`` next to this file) into a cache outside git,
the KRaft storage directory is formatted once, and ``kafka.Kafka`` runs in the
background with its log in a file.

Layout under ``$SPIKEDETECT_HOME`` (default ``~/.cache/spikedetect``)::

    kafka/<version>/libs/*.jar          the jars (shared by every broker)
    kafka-broker-<port>/server.properties
    kafka-broker-<port>/data/           KRaft metadata and topic logs
    kafka-broker-<port>/logs/server.log the broker log
    kafka-broker-<port>/broker.pid
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spikedetect.kafka_local.probe import broker_answers, port_in_use

DEFAULT_PORT = 9092
DEFAULT_VERSION = "4.1.1"
_HERE = Path(__file__).resolve().parent


class KafkaLaunchError(RuntimeError):
    """The local broker could not be installed, started or stopped."""


def spikedetect_home() -> Path:
    """Root of spikedetect's caches: ``$SPIKEDETECT_HOME`` or ``~/.cache/spikedetect``."""
    env = os.environ.get("SPIKEDETECT_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "spikedetect"


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64, never led by ``-``.

    About one draw in 64 encodes with a leading ``-``, which the storage tool's
    argument parser reads as an option (a CI run failed on it). Kafka's own
    ``Uuid.randomUuid`` draws again in that case; so does this.

    >>> draws = iter([b"\\xf8" + bytes(15), bytes(16)])  # "-AAA..." first
    >>> new_cluster_id(lambda: next(draws))
    'AAAAAAAAAAAAAAAAAAAAAA'
    """
    while True:
        text = urlsafe_b64encode(draw()).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    state_dir: Path
    log_file: Path

    def describe(self) -> str:
        if self.running:
            return f"kafka running (pid {self.pid}) at {self.bootstrap}; log {self.log_file}"
        return f"kafka not running ({self.bootstrap}); state {self.state_dir}"


class LocalKafka:
    """A single-node KRaft broker on 127.0.0.1, managed through a pid file.

    >>> LocalKafka(port=19092).bootstrap
    '127.0.0.1:19092'
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        version: str | None = None,
        home: Path | None = None,
        heap: str = "1g",
    ) -> None:
        self.port = port
        self.controller_port = port + 1
        self.version = version or os.environ.get("SPIKEDETECT_KAFKA_VERSION", DEFAULT_VERSION)
        self.home = home or spikedetect_home()
        self.heap = heap
        self.libs_dir = self.home / "kafka" / self.version / "libs"
        self.state_dir = self.home / f"kafka-broker-{port}"
        self.data_dir = self.state_dir / "data"
        self.logs_dir = self.state_dir / "logs"
        self.pid_file = self.state_dir / "broker.pid"
        self.log_file = self.logs_dir / "server.log"
        self.stdout_file = self.logs_dir / "stdout.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- jars ---------------------------------------------------------------
    def ensure_jars(self) -> Path:
        """Resolve the broker's jars with Maven once; return the libs directory."""
        marker = self.libs_dir / ".complete"
        if marker.exists():
            return self.libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaLaunchError("Maven (mvn) is not on PATH; it is needed once to fetch the Kafka jars")
        if shutil.which("java") is None:
            raise KafkaLaunchError("java is not on PATH; Kafka 4.x needs Java 17 or newer")
        tmp = self.libs_dir.with_name("libs.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        cmd = [
            mvn, "-q", "-B", "-f", str(_HERE / "pom.xml"),
            f"-Dkafka.version={self.version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise KafkaLaunchError(f"Maven could not resolve Kafka {self.version}:\n{tail}")
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        tmp.rename(self.libs_dir)
        marker.write_text(self.version)
        return self.libs_dir

    # -- process ------------------------------------------------------------
    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        # A zombie (our own dead child) still answers kill(0); treat it as gone.
        with contextlib.suppress(ChildProcessError, OSError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return None
        return pid

    def status(self) -> BrokerStatus:
        pid = self._pid()
        return BrokerStatus(pid is not None, pid, self.bootstrap, self.state_dir, self.log_file)

    def _java_cmd(self, main: str, *args: str) -> list[str]:
        return [
            "java", "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_HERE / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp", str(self.libs_dir / "*"), main, *args,
        ]

    def _write_properties(self) -> Path:
        props = self.state_dir / "server.properties"
        props.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={self.data_dir}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=8",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "log.retention.hours=168",
                "log.segment.bytes=268435456",
                "message.max.bytes=2097152",
                "",
            ])
        )
        return props

    def start(self, *, timeout_s: float = 90.0, fresh: bool = False) -> BrokerStatus:
        """Start the broker unless it runs; wait until it answers metadata."""
        current = self.status()
        if current.running and broker_answers(self.bootstrap):
            return current
        if current.running:  # alive but not answering: maybe still starting
            return self._wait_ready(current.pid, timeout_s)
        if port_in_use(self.port) or port_in_use(self.controller_port):
            raise KafkaLaunchError(
                f"port {self.port} or {self.controller_port} is taken by another process; "
                "choose another with --port or SPIKEDETECT_KAFKA_PORT"
            )
        self.ensure_jars()
        if fresh:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        props = self._write_properties()
        if not (self.data_dir / "meta.properties").exists():
            fmt = subprocess.run(
                self._java_cmd(
                    "kafka.tools.StorageTool", "format",
                    f"--cluster-id={new_cluster_id()}", f"--config={props}",
                ),
                capture_output=True, text=True, check=False,
            )
            if fmt.returncode != 0:
                raise KafkaLaunchError(f"formatting KRaft storage failed:\n{fmt.stdout}{fmt.stderr}")
        with open(self.stdout_file, "ab") as out:
            proc = subprocess.Popen(
                self._java_cmd("kafka.Kafka", str(props)),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        return self._wait_ready(proc.pid, timeout_s)

    def _wait_ready(self, pid: int | None, timeout_s: float) -> BrokerStatus:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._pid() is None:
                raise KafkaLaunchError(f"the broker exited while starting.\n{self.log_tail()}")
            if broker_answers(self.bootstrap, timeout_s=2.0):
                return self.status()
            time.sleep(0.5)
        raise KafkaLaunchError(f"the broker did not answer within {timeout_s:.0f}s.\n{self.log_tail()}")

    def stop(self, *, timeout_s: float = 60.0) -> bool:
        """Shut the broker down cleanly (SIGTERM, then SIGKILL). Safe to call twice."""
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._pid() is not None:
            time.sleep(0.2)
        if self._pid() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 40) -> str:
        chunks = []
        for path in (self.stdout_file, self.log_file):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(chunks) or "(no broker log yet)"
