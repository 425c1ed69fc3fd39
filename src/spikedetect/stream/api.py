"""The read-only JSON API: ``/incidents``, ``/incidents/{id}``, ``/series/{service}/{region}``.

Routing. Incidents are answered by any worker from its incident view (every worker
follows the incidents topic, see :mod:`spikedetect.stream.follow`). Window series live
only in the memory of the worker owning the key: the owner is the worker assigned the
partials-topic partition of the key's *service* (the ingest producer keys partials by
the service's bytes with Kafka's murmur2 partitioner). A worker that does not own it
forwards the request once to the owner's URL taken from Faust's partition assignment
(``app.assignor.external_topics_metadata()``, the ``canonical_url`` of each member)
and relays the answer; a forwarded request is never forwarded again (503 if the
assignment moved meanwhile). Every answer names the worker that computed it in the
``X-Spikedetect-Worker`` header.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import orjson
from aiokafka.partitioner import murmur2
from faust import web
from multidict import MultiMapping
from yarl import URL

from spikedetect.core.timefmt import format_ts_ms, parse_time_arg

if TYPE_CHECKING:  # runtime.py imports this module (for KeyRouter)
    from spikedetect.stream.runtime import Runtime

log = logging.getLogger("spikedetect.api")

FORWARDED = "X-Spikedetect-Forwarded"
WORKER = "X-Spikedetect-Worker"
STATES = ("open", "closed")
MAX_LIMIT = 1000


class ApiError(Exception):
    """A request the API refuses: ``status`` and a message for the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(
    view: web.View,
    body: Any,
    status: int = 200,
    worker: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A JSON answer with the worker that computed it."""
    h = {WORKER: worker or str(view.app.conf.canonical_url), "Cache-Control": "no-store", **(headers or {})}
    return view.bytes(orjson.dumps(body), content_type="application/json", status=status, headers=h)


def error(view: web.View, status: int, message: str) -> web.Response:
    return json_response(view, {"error": message, "status": status}, status=status)


class ReadOnlyView(web.View):
    """A view answering GET (and HEAD); other methods get a JSON 405 with ``Allow``."""

    async def _refuse(self, request: web.Request, **kwargs: Any) -> web.Response:
        return json_response(
            self,
            {"error": f"method {request.method} not allowed: the API is read-only", "status": 405},
            status=405,
            headers={"Allow": "GET, HEAD"},
        )

    post = put = patch = delete = options = _refuse


# -- parameters ------------------------------------------------------------------------------
def query(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """Query parameters: unknown or repeated names are an error; empty values count as absent."""
    q = cast("MultiMapping[str]", request.query)  # aiohttp's MultiDictProxy
    unknown = sorted(set(q) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    out = {}
    for name in q:
        values = q.getall(name)
        if len(values) > 1:
            raise ApiError(400, f"parameter {name} given {len(values)} times")
        if values[0] != "":
            out[name] = values[0]
    return out


def time_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return parse_time_arg(raw)
    except ValueError:
        raise ApiError(
            400,
            f"{name}={raw!r} is not a time: use RFC 3339 (e.g. 2026-11-26T14:00:00Z, "
            "'+' written as %2B) or epoch milliseconds",
        ) from None


def time_range(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    since, until = time_param(params, "since"), time_param(params, "until")
    if since is not None and until is not None and since > until:
        raise ApiError(400, "since is after until")
    return since, until


def limit_param(params: Mapping[str, str], default: int = 200) -> int:
    raw = params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, f"limit={raw!r} must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


# -- routing -----------------------------------------------------------------------------------
class KeyRouter:
    """Which worker owns a service, from Faust's assignment of the partials topic."""

    def __init__(self, app: Any, topic: str, partitions: int) -> None:
        self.app = app
        self.topic = topic
        self.default_partitions = partitions

    def owners(self) -> dict[int, str]:
        """Partials partition -> canonical URL of the worker assigned it (last rebalance)."""
        out: dict[int, str] = {}
        for url, topics in self.app.assignor.external_topics_metadata().items():
            for p in topics.get(self.topic, ()):
                out[int(p)] = url
        return out

    def partition_of(self, service: str, n_partitions: int | None = None) -> int:
        """The partition the ingest producer sends a service's partials to (murmur2, as Kafka's default)."""
        n = n_partitions or self.default_partitions
        return (int(murmur2(service.encode())) & 0x7FFFFFFF) % n

    def is_local(self, partition: int) -> bool:
        return any(
            tp.topic == self.topic and tp.partition == partition
            for tp in self.app.assignor.assigned_actives()
        )

    def locate(self, service: str) -> tuple[int, str | None]:
        """(partition, URL of its owner, None if that is this worker)."""
        owners = self.owners()
        q = self.partition_of(service, max(owners) + 1 if owners else None)  # the assignment covers all
        me = str(self.app.conf.canonical_url)
        if self.is_local(q):
            return q, None
        url = owners.get(q)
        if url is None:
            raise ApiError(503, f"partition {q} of service {service!r} has no owner yet (rebalancing); retry")
        if url == me:
            raise ApiError(503, f"partition {q} is being assigned to this worker; retry")
        return q, url

    async def forward(self, view: web.View, request: web.Request, url: str) -> web.Response:
        """Ask the owner once and relay its answer (status, body, worker header)."""
        target = URL(url.rstrip("/") + str(request.rel_url), encoded=True)
        headers = {FORWARDED: str(self.app.conf.canonical_url), "Accept": "application/json"}
        try:
            async with self.app.http_client.get(
                target, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as resp:
                body = await resp.read()
                worker = resp.headers.get(WORKER, url)
                return view.bytes(
                    body,
                    content_type=resp.content_type or "application/json",
                    status=resp.status,
                    headers={WORKER: worker, "Cache-Control": "no-store"},
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("forwarding %s to %s failed: %s", request.rel_url, url, exc)
            return error(view, 503, f"the owner of this key ({url}) does not answer; retry")


# -- views -----------------------------------------------------------------------------------------
def register_api(app: Any, rt: Runtime) -> None:
    """Add the API views to the app's web server."""
    router = KeyRouter(app, rt.settings.partials_topic, rt.settings.partials_partitions)
    rt.router = router
    _incident_views(app, rt)
    _series_view(app, rt, router)


def _incident_views(app: Any, rt: Runtime) -> None:
    @app.page("/incidents")
    class Incidents(ReadOnlyView):
        """Current and recent incidents, most recently active first."""

        async def get(self, request: web.Request) -> web.Response:
            try:
                p = query(request, ("state", "service", "region", "since", "limit"))
                state = p.get("state")
                if state is not None and state not in STATES:
                    raise ApiError(400, f"state={state!r} must be 'open' or 'closed'")
                since, _ = time_range(p)
                limit = limit_param(p)
            except ApiError as exc:
                return error(self, exc.status, exc.message)
            items = rt.live.incident_list(
                state=state, service=p.get("service"), region=p.get("region"), since_ms=since, limit=limit
            )
            clock = rt.live.clock_ms
            as_of = None if clock is None else format_ts_ms(clock)
            return json_response(self, {"incidents": items, "count": len(items), "as_of": as_of})

    @app.page("/incidents/{incident_id}")
    class Incident(ReadOnlyView):
        """One incident: its latest state and the history of its events."""

        async def get(self, request: web.Request, incident_id: str) -> web.Response:
            try:
                query(request, ())
            except ApiError as exc:
                return error(self, exc.status, exc.message)
            found = rt.live.incident(incident_id)
            if found is None:
                return error(self, 404, f"no incident {incident_id!r}")
            return json_response(self, found)


def _series_view(app: Any, rt: Runtime, router: KeyRouter) -> None:
    @app.page("/series/{service}/{region:.+}")
    class Series(ReadOnlyView):
        """Recent closed windows of one key, answered by (or forwarded to) its owner."""

        async def get(self, request: web.Request, service: str, region: str) -> web.Response:
            try:
                since, until = time_range(query(request, ("since", "until")))
                q, owner = router.locate(service)
                if owner is not None:
                    if request.headers.get(FORWARDED):
                        raise ApiError(503, f"partition {q} is no longer owned here; retry")
                    return await router.forward(self, request, owner)
            except ApiError as exc:
                return error(self, exc.status, exc.message)
            found = rt.live.series(service, region, since_ms=since, until_ms=until)
            if found is None:
                return error(self, 404, f"no recent window for service {service!r} region {region!r}")
            return json_response(self, {**found, "partition": q})
