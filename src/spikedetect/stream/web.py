"""HTTP surface of a worker: liveness, readiness, metrics, the dashboard and the JSON API.

* ``GET /health``: the worker's event loop answers (liveness), always 200 while it runs;
* ``GET /ready``: 200 once Faust's table recovery of the assigned partitions has completed,
  no rebalance is under way, the broker answers a metadata request and the incident view
  has read the incidents topic (and, with ``--ingest-processes``, every ingest child runs);
  otherwise 503 with the failing checks;
* ``GET /metrics``: Prometheus text format;
* ``GET /`` and ``/static/{name}``: the dashboard, served from package files;
* the JSON API of :mod:`spikedetect.stream.api`.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import Any

from aiokafka.errors import KafkaError
from faust import web

from spikedetect.stream.api import ReadOnlyView, error, json_response, register_api
from spikedetect.stream.runtime import Runtime

STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def static_files() -> dict[str, tuple[bytes, str]]:
    """Every dashboard asset by name: (content, content type)."""
    root = resources.files("spikedetect.stream").joinpath("static")
    out = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in STATIC_TYPES:
            out[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return out


class BrokerProbe:
    """Whether the broker answers a metadata request (cached for ``ttl_s``)."""

    def __init__(self, rt: Runtime, ttl_s: float = 2.0, timeout_s: float = 3.0) -> None:
        self.rt = rt
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._at = -1e9
        self._result: tuple[bool, str] = (False, "not checked yet")
        self._lock = asyncio.Lock()

    async def check(self) -> tuple[bool, str]:
        async with self._lock:
            if time.monotonic() - self._at < self.ttl_s:
                return self._result
            admin = getattr(self.rt.ingest, "admin", None)
            if admin is None:
                self._result = (False, "the ingest stage has not connected yet")
            else:
                try:
                    meta = await asyncio.wait_for(admin.describe_cluster(), self.timeout_s)
                    self._result = (True, f"{len(meta.get('brokers', []))} broker(s)")
                except (KafkaError, OSError, TimeoutError) as exc:
                    self._result = (False, f"broker unreachable: {type(exc).__name__} {exc}".strip())
            self._at = time.monotonic()
            return self._result


async def readiness(app: Any, rt: Runtime, probe: BrokerProbe) -> tuple[bool, dict[str, Any]]:
    """Run the readiness checks; (ready, checks with ``ok`` and ``detail`` each)."""
    recovery = app.tables.recovery
    recovered = recovery.completed.is_set() and not app.in_recovery and not app.rebalancing
    owned = sorted(
        tp.partition for tp in app.assignor.assigned_actives() if tp.topic == rt.settings.partials_topic
    )
    if app.rebalancing:
        rec_detail = "rebalancing"
    elif not recovered:
        rec_detail = f"recovering tables: {recovery.active_remaining_total()} changelog records to go"
    else:
        rec_detail = f"tables recovered; owns partials partitions {owned}"
    broker_ok, broker_detail = await probe.check()
    follower = rt.follower
    loaded = follower is not None and follower.loaded.is_set()
    checks = {
        "recovery": {"ok": recovered, "detail": rec_detail, "partitions": owned},
        "broker": {"ok": broker_ok, "detail": broker_detail},
        "incidents": {
            "ok": loaded,
            "detail": f"{len(rt.live.incidents)} incidents loaded"
            if loaded
            else "reading the incidents topic",
        },
    }
    running = getattr(rt.ingest, "running", None)  # stage 1 in child processes (--ingest-processes)
    if running is not None:
        alive, wanted = running()
        checks["ingest"] = {"ok": alive == wanted, "detail": f"{alive} of {wanted} ingest child processes running"}
    return all(c["ok"] for c in checks.values()), checks


def register_views(app: Any, rt: Runtime) -> None:
    """Add every view of the worker to the app's web server."""
    _probe_views(app, rt)
    _dashboard_views(app)
    register_api(app, rt)


def _probe_views(app: Any, rt: Runtime) -> None:
    """Liveness, readiness and metrics."""
    probe = BrokerProbe(rt)

    @app.page("/health")
    class Health(ReadOnlyView):
        async def get(self, request: web.Request) -> web.Response:
            return json_response(self, {"status": "ok"})

    @app.page("/ready")
    class Ready(ReadOnlyView):
        async def get(self, request: web.Request) -> web.Response:
            ok, checks = await readiness(app, rt, probe)
            body: dict[str, Any] = {"status": "ready" if ok else "not ready", "checks": checks}
            if not ok:
                body["reason"] = "; ".join(
                    f"{name}: {c['detail']}" for name, c in checks.items() if not c["ok"]
                )
            return json_response(self, body, status=200 if ok else 503)

    @app.page("/metrics")
    class Metrics(ReadOnlyView):
        async def get(self, request: web.Request) -> web.Response:
            rt.metrics.refresh(rt.owners.values())
            return self.bytes(
                rt.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
            )


def _dashboard_views(app: Any) -> None:
    """The dashboard page and its static files (package data), with a strict CSP."""
    assets = static_files()

    def asset(view: web.View, name: str) -> web.Response:
        found = assets.get(name)
        if found is None:
            return error(view, 404, f"no asset {name!r}")
        body, ctype = found
        return view.bytes(
            body,
            content_type=ctype,
            headers={
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache",
            },
        )

    @app.page("/")
    class Dashboard(ReadOnlyView):
        async def get(self, request: web.Request) -> web.Response:
            return asset(self, "index.html")

    @app.page("/static/{name}")
    class Static(ReadOnlyView):
        async def get(self, request: web.Request, name: str) -> web.Response:
            return asset(self, name)
