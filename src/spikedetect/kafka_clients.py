"""Every Kafka client spikedetect builds, from one connection description.

The worker, ``replay --topic``, ``simulate --topic``, ``tail`` and the demo all connect the
same way: bootstrap servers plus the security settings (TLS, SASL) of
:class:`KafkaConnection`. The worker's :class:`~spikedetect.stream.settings.Settings` give
one with :meth:`~spikedetect.stream.settings.Settings.connection`; the offline commands read
the same ``SPIKEDETECT_*`` variables and ``--config`` file, so a cluster the worker can use
can be replayed and fed too.

>>> KafkaConnection("broker:9093", "SASL_SSL", sasl_username="u", sasl_password="p")
KafkaConnection(bootstrap='broker:9093', security_protocol='SASL_SSL', sasl_mechanism='PLAIN', sasl_username='u', ssl_cafile='', ssl_certfile='', ssl_keyfile='')
>>> sorted(KafkaConnection("h:9092").kwargs())
['bootstrap_servers', 'security_protocol']
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from spikedetect.core.errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaConnection:
    """Where the cluster is and how to authenticate; validated when built."""

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    def __post_init__(self) -> None:
        if not self.bootstrap.strip():
            raise ConfigError("the Kafka bootstrap servers are empty")
        if self.security_protocol not in PROTOCOLS:
            raise ConfigError(f"security_protocol {self.security_protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"sasl_mechanism {self.sasl_mechanism!r} is not PLAIN or SCRAM-SHA-256/512")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of an ``SSL``/``SASL_SSL`` connection (None otherwise)."""
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile or None)
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile or None)
        return ctx

    def kwargs(self) -> dict[str, Any]:
        """Connection arguments for any aiokafka client."""
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        ctx = self.ssl_context()
        if ctx is not None:
            kw["ssl_context"] = ctx
        if self.security_protocol.startswith("SASL"):
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                      sasl_plain_password=self.sasl_password)
        return kw


def consumer(conn: KafkaConnection, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer on ``conn`` (``options``: any other consumer argument)."""
    return AIOKafkaConsumer(*topics, **conn.kwargs(), **options)


def producer(conn: KafkaConnection, **options: Any) -> AIOKafkaProducer:
    """An aiokafka producer on ``conn``."""
    return AIOKafkaProducer(**conn.kwargs(), **options)


def admin(conn: KafkaConnection, **options: Any) -> AIOKafkaAdminClient:
    """An aiokafka admin client on ``conn``."""
    return AIOKafkaAdminClient(**conn.kwargs(), **options)
