"""Live pipeline settings: environment variables, overridden by CLI flags.

Every setting has an environment variable ``SPIKEDETECT_<NAME>`` (upper case); the
detector's own settings (window, thresholds, detector spec ...) use the same names as
:class:`~spikedetect.core.config.DetectorConfig` fields, e.g.
``SPIKEDETECT_WINDOW_MS=60000`` or ``SPIKEDETECT_DETECTOR=ewma:fading_factor=0.2``.

>>> s = Settings.from_env({"SPIKEDETECT_APP_ID": "sd", "SPIKEDETECT_WINDOW_MS": "30000"})
>>> s.partials_topic, s.detector.window_ms
('sd-partials', 30000)
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from spikedetect.core.config import DetectorConfig
from spikedetect.core.errors import ConfigError

PREFIX = "SPIKEDETECT_"


@dataclass(frozen=True)
class Settings:
    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "spikedetect"
    input_topic: str = "reports"
    incidents_topic: str = "incidents"
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
    session_timeout_ms: int = 10_000  # how long a dead worker holds its partitions
    batch_max_records: int = 20_000
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
        if self.security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise ConfigError(f"security_protocol {self.security_protocol!r} is not one of "
                              "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")
        if self.sasl_mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise ConfigError(f"sasl_mechanism {self.sasl_mechanism!r} is not PLAIN or SCRAM-SHA-256/512")
        if not self.store.startswith(("memory://", "rocksdb://")):
            raise ConfigError("store must be memory:// or rocksdb://")
        for name in ("partials_partitions", "topic_partitions", "replication_factor", "idle_ms",
                     "commit_interval_ms", "batch_max_records"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.idle_empty_ms < 0:
            raise ConfigError("idle_empty_ms must not be negative")
        if self.idle_rate <= 0:
            raise ConfigError("idle_rate must be positive")

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``SPIKEDETECT_*`` variables, then ``overrides`` (None values ignored)."""
        env = os.environ if env is None else env
        own = {f.name: f for f in fields(cls) if f.name != "detector"}
        det_names = {f.name for f in fields(DetectorConfig)}
        values: dict[str, Any] = {}
        det_values: dict[str, Any] = {}
        for key, raw in env.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX):].lower()
            if name == "kafka":
                name = "bootstrap"
            if name in own:
                values[name] = _convert(own[name].type, raw, name)
            elif name in det_names:
                det_values[name] = raw
        for name, value in overrides.items():
            if value is None:
                continue
            if name in own:
                values[name] = _convert(own[name].type, value, name) if isinstance(value, str) else value
            elif name in det_names:
                det_values[name] = value
            else:
                raise ConfigError(f"unknown setting {name!r}")
        return cls(detector=DetectorConfig.from_mapping(det_values), **values)

    @property
    def idle_empty_wait_ms(self) -> int:
        """How long a partition that has delivered nothing since its assignment waits to be idle."""
        return self.idle_empty_ms or 3 * self.idle_ms

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    # -- Kafka client arguments ----------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile or None)
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile or None)
        return ctx

    def kafka_kwargs(self) -> dict[str, Any]:
        """Connection arguments for aiokafka clients (producers, consumers, admin)."""
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        ctx = self.ssl_context()
        if ctx is not None:
            kw["ssl_context"] = ctx
        if self.security_protocol.startswith("SASL"):
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                      sasl_plain_password=self.sasl_password)
        return kw

    def describe(self) -> dict[str, Any]:
        """Settings for logs and ``--help`` output: secrets are masked."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "detector"}
        if out["sasl_password"]:
            out["sasl_password"] = "***"
        out["detector"] = self.detector.to_dict()
        return out


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
