"""Is a broker there? Network probes of the local broker's ports (no broker of our own needed)."""

from __future__ import annotations

import asyncio
import contextlib
import socket


def broker_answers(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """True when a Kafka broker at ``bootstrap`` answers a metadata request."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError:
        return False
    return asyncio.run(_metadata_ok(bootstrap, timeout_s))


async def _metadata_ok(bootstrap: str, timeout_s: float) -> bool:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        meta = await asyncio.wait_for(client.fetch_all_metadata(), timeout_s)
        return bool(meta.brokers())
    except Exception:  # noqa: BLE001 - any failure means "not answering"
        return False
    finally:
        with contextlib.suppress(Exception):
            await client.close()


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
