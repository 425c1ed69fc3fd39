"""Live pipeline settings: environment variables, overridden by CLI flags.

Every setting has an environment variable ``SPIKEDETECT_<NAME>`` (upper case); the
detector's own settings (window, thresholds, detector spec ...) use the same names as
:class:`~spikedetect.core.config.DetectorConfig` fields, e.g.
``SPIKEDETECT_WINDOW_MS=60000`` or ``SPIKEDETECT_DETECTOR=ewma:fading_factor=0.2``.

Both drivers read them the same way: ``worker`` builds :class:`Settings`, ``replay`` and
``report`` the detector part with :func:`detector_values`. Layers, later ones win: the
defaults, an optional TOML file (``--config FILE``, keys named like the settings:
``window_ms = 60000``, ``detector = "ewma"``, ``kafka = "host:9092"``), the environment, the
command-line flags.

>>> s = Settings.from_env({"SPIKEDETECT_APP_ID": "sd", "SPIKEDETECT_WINDOW_MS": "30000"})
>>> s.partials_topic, s.detector.window_ms
('sd-partials', 30000)
>>> detector_values({"SPIKEDETECT_OPEN_THRESHOLD": "9"}, None, {"window_ms": 30000})
({'open_threshold': '9', 'window_ms': 30000}, {'open_threshold': 'env SPIKEDETECT_OPEN_THRESHOLD', 'window_ms': 'flag'})
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from spikedetect.core.config import DETECTOR_FIELDS, DetectorConfig
from spikedetect.core.errors import ConfigError
from spikedetect.kafka_clients import KafkaConnection

PREFIX = "SPIKEDETECT_"


@dataclass(frozen=True)
class Settings:
    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "spikedetect"
    input_topic: str = "reports"
    incidents_topic: str = "incidents"  # outage incidents (spikedetect.incident/v2)
    regions_topic: str = ""  # optional: the per-region incidents (spikedetect.incident/v1, with group_id)
    dlq_topic: str = "reports-dlq"
    windows_topic: str = ""  # optional: per closed window, the counts and scores of every reported key
    partials_topic: str = ""  # default "<app_id>-partials"
    partials_partitions: int = 4
    topic_partitions: int = 4  # for input/output topics this worker creates when missing
    replication_factor: int = 1
    store: str = "memory://"
    datadir: str = ""  # default "./<app_id>-data"
    idle_ms: int = 10_000
    idle_rate: float = 1.0  # event-time ms the watermark advances per wall-clock ms when idle
    idle_empty_ms: int = 0  # idleness of a partition that never delivered a report; 0: 3 x idle_ms
    commit_interval_ms: int = 1_000
    # owners write the state closing changed at most this often (0: after every close); see owner_persist.py
    persist_interval_ms: int = 1_000
    partials_wire: int = 2  # 2: packs (a forward's windows per service); 1: a message per window (upgrades)
    session_timeout_ms: int = 10_000  # how long a dead worker holds its partitions
    batch_max_records: int = 20_000
    raw_batches: bool = True  # stage 1 reads whole record batches (stream/ingest_raw.py); off: aiokafka's records
    ingest_processes: int = 0  # stage 1 in this many child processes; 0: in the worker's own process
    web_host: str = "0.0.0.0"
    web_port: int = 6066
    web_enabled: bool = True
    log_level: str = "info"
    summary_interval_s: float = 60.0
    # Kafka security (passed to every Kafka client)
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    def __post_init__(self) -> None:
        if not self.partials_topic:
            object.__setattr__(self, "partials_topic", f"{self.app_id}-partials")
        if not self.datadir:
            object.__setattr__(self, "datadir", f"./{self.app_id}-data")
        self.connection()  # validates the Kafka connection settings
        if not self.store.startswith(("memory://", "rocksdb://")):
            raise ConfigError("store must be memory:// or rocksdb://")
        for name in ("partials_partitions", "topic_partitions", "replication_factor", "idle_ms",
                     "commit_interval_ms", "batch_max_records"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.ingest_processes < 0:
            raise ConfigError("ingest_processes must not be negative")
        if self.persist_interval_ms < 0:
            raise ConfigError("persist_interval_ms must not be negative")
        if self.partials_wire not in (1, 2):
            raise ConfigError("partials_wire must be 1 or 2")
        if self.idle_empty_ms < 0:
            raise ConfigError("idle_empty_ms must not be negative")
        if self.idle_rate <= 0:
            raise ConfigError("idle_rate must be positive")

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, config_file: str | None = None,
                 **overrides: Any) -> Settings:
        """Settings from ``config_file``, then ``SPIKEDETECT_*`` variables, then ``overrides`` (None ignored)."""
        env = os.environ if env is None else env
        own = {f.name: f for f in fields(cls) if f.name != "detector"}
        values: dict[str, Any] = {}
        for name, value in (load_config_file(config_file) if config_file else {}).items():
            if name in own:
                values[name] = _convert(own[name].type, value, f"{name} (--config {config_file})")
        for key, raw in env.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX):].lower()
            if name == "kafka":
                name = "bootstrap"
            if name in own:
                values[name] = _convert(own[name].type, raw, name)
        det_values, origin = detector_values(env, config_file, {k: v for k, v in overrides.items() if k not in own})
        for name, value in overrides.items():
            if value is None:
                continue
            if name in own:
                values[name] = _convert(own[name].type, value, name) if isinstance(value, str) else value
            elif name not in DETECTOR_NAMES:
                raise ConfigError(f"unknown setting {name!r}")
        return cls(detector=build_detector(det_values, origin), **values)

    @property
    def idle_empty_wait_ms(self) -> int:
        """How long a partition that has delivered nothing since its assignment waits to be idle."""
        return self.idle_empty_ms or 3 * self.idle_ms

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    # -- Kafka client arguments ----------------------------------------------------------
    def connection(self) -> KafkaConnection:
        """The Kafka connection every client of the worker uses (spikedetect.kafka_clients)."""
        return KafkaConnection(self.bootstrap, self.security_protocol, self.sasl_mechanism, self.sasl_username,
                               self.sasl_password, self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)

    def kafka_kwargs(self) -> dict[str, Any]:
        """Connection arguments for aiokafka clients (producers, consumers, admin)."""
        return self.connection().kwargs()

    def describe(self) -> dict[str, Any]:
        """Settings for logs and ``--help`` output: secrets are masked."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "detector"}
        if out["sasl_password"]:
            out["sasl_password"] = "***"
        out["detector"] = self.detector.to_dict()
        return out


DETECTOR_NAMES = frozenset(DETECTOR_FIELDS)
SETTING_NAMES = frozenset(f.name for f in fields(Settings) if f.name != "detector") | DETECTOR_NAMES | {"kafka"}


def load_config_file(path: str) -> dict[str, Any]:
    """The settings of a TOML file (flat keys named like the settings); errors name file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)$", str(exc))
        line = m.group(1) if m else "1"
        what = str(exc)[: m.start()].rstrip() if m else str(exc)
        raise ConfigError(f"{path}:{line}: not valid TOML: {what}") from exc
    out: dict[str, Any] = {}
    for key, value in data.items():
        line = _line_of(text, key)
        if key not in SETTING_NAMES:
            raise ConfigError(f"{path}:{line}: unknown setting {key!r} (names as in `spikedetect worker --help`, "
                              "with _: window_ms = 60000)")  # fmt: skip
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{path}:{line}: {key} must be a string, number or boolean, got {value!r}")
        out["bootstrap" if key == "kafka" else key] = value
    return out


def _line_of(text: str, key: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if re.match(r"\s*[\"']?" + re.escape(key) + r"[\"']?\s*[=.\]]", line) or line.strip() == f"[{key}]":
            return n
    return 1


def detector_values(env: Mapping[str, str] | None, config_file: str | None,
                    overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The detector settings given by the file, the environment and the flags (None: not given),
    as raw values for :meth:`DetectorConfig.from_mapping`, and where each came from."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, value in (load_config_file(config_file) if config_file else {}).items():
        if name in DETECTOR_NAMES:
            values[name], origin[name] = value, f"--config {config_file}"
    for key, raw in env.items():
        name = key[len(PREFIX):].lower() if key.startswith(PREFIX) else ""
        if name in DETECTOR_NAMES:
            values[name], origin[name] = raw, f"env {key}"
    for name, value in overrides.items():
        if value is not None and name in DETECTOR_NAMES:
            values[name], origin[name] = value, "flag"
    return values, origin


def build_detector(values: Mapping[str, Any], origin: Mapping[str, str]) -> DetectorConfig:
    """``DetectorConfig.from_mapping``; an error names where the wrong setting came from."""
    try:
        return DetectorConfig.from_mapping(values)
    except ConfigError as exc:
        blame = next((o for k, o in origin.items() if str(exc).startswith(k)), None)
        raise ConfigError(f"{exc}" + (f" (set by {blame})" if blame else "")) from exc


def _convert(kind: Any, raw: Any, name: str) -> Any:
    text = str(raw).strip()
    try:
        if kind in (int, "int"):
            return int(float(text))
        if kind in (float, "float"):
            return float(text)
        if kind in (bool, "bool"):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: cannot read {raw!r} as {kind}") from exc
    return text
