"""HTTP views of a worker (health and metrics; the full API lives in ``api.py``)."""

from __future__ import annotations

from typing import Any

import faust


def register_views(app: faust.App, rt: Any) -> None:
    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(rt.metrics.render(), content_type="text/plain; version=0.0.4")
