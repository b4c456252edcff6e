"""The dashboard's HTTP server: pages, the fragments htmx swaps in, a server-sent event stream, actions.

    GET  /                                    -> /services
    GET  /services?namespace=&q=&page=        the Services of a namespace ("" for all), searchable, paged
    GET  /services/rows?...                   the list's table (htmx polls it every 2 s)
    GET  /services/{ns}/{name}                a Service: revisions, charts, canary, events, calls, editor, invoke
    GET  /services/{ns}/{name}/live           the page's changing parts (htmx polls them every 2 s)
    GET  /services/{ns}/{name}/stream         text/event-stream: one chart frame a second
    POST /services/{ns}/{name}/traffic        apply the editor's split (a merge patch of spec.traffic)
    POST /services/{ns}/{name}/rollback       all traffic to one earlier ready revision
    POST /services/{ns}/{name}/invoke         a request through the ingress with the Service's Host
    GET  /static/...                          the page's script and style, and the libraries (static/vendor)
    GET  /healthz

The POSTs need ``--edits`` (403 with a sentence otherwise) and come only from the dashboard's
own pages: they must carry htmx's ``HX-Request`` header, which a form on another site cannot
set. Handlers only move bytes: what a page shows is built by ``dashboard.views``, what an
action sends by ``dashboard.traffic`` and ``dashboard.invoke``.

Side effects: list+watch of Services and Revisions (all namespaces), reads of Events and
EndpointSlices, patches of Services (with ``--edits``), HTTP to the ingress and the metrics API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from dashboard import views
from dashboard.invoke import Ingress, InvokeError, parse_invoke
from dashboard.metrics import Entries, MetricsSource
from dashboard.queue import QueueSource
from dashboard.traffic import FormError, editor_rows, rollback_targets, traffic_from_form, traffic_patch
from knserve.clock import Clock
from kube.cache import by_label
from kube.client import MERGE_PATCH, KubeClient
from kube.errors import ApiError
from kube.informer import Informer
from kube.resources import EVENTS, REVISIONS, SERVICES

log = logging.getLogger("knserve.dashboard")
PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
LIST_WINDOW_SECONDS = 60.0
CHART_SECONDS = 180
BY_SERVICE = "service"


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    edits: bool = False
    default_namespace: str = "default"
    stream_interval: float = 1.0  # seconds between chart frames
    chart_seconds: int = CHART_SECONDS


def _number(value: float | None, pattern: str, *, scale: float = 1.0) -> str:
    return "no data" if value is None else pattern.format(value * scale)


def make_templates() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("dashboard", "templates"),
                                     autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["rps"] = lambda value: _number(value, "{:.2f}")
    environment.filters["percent"] = lambda value: _number(value, "{:.1f}%", scale=100)
    environment.filters["ms"] = lambda value: _number(value, "{:.0f} ms")
    environment.filters["count"] = lambda value: _number(value, "{:.0f}")
    return environment


class Dashboard:
    def __init__(self, client: KubeClient, metrics: MetricsSource, ingress: Ingress, clock: Clock,
                 settings: DashboardSettings, *, queue: QueueSource | None = None) -> None:
        self.client = client
        self.metrics = metrics
        self.queue = queue
        self.ingress = ingress
        self.clock = clock
        self.settings = settings
        self.services = Informer(client, SERVICES)
        self.revisions = Informer(client, REVISIONS, indexers={BY_SERVICE: by_label(views.SERVICE_LABEL)})
        self.templates = make_templates()
        self.stopping = asyncio.Event()

    # --- plumbing ---------------------------------------------------------------------------
    def render(self, template: str, *, status: int = 200, **context: Any) -> web.Response:
        body = self.templates.get_template(template).render(edits=self.settings.edits, **context)
        return web.Response(status=status, text=body, content_type="text/html")

    def service_revisions(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return self.revisions.store.by_index(BY_SERVICE, f"{namespace}/{name}")

    async def metrics_of(self, namespace: str, *, window: float, series: bool) -> Entries | None:
        return await self.metrics.namespace(namespace, window=window, series=series)

    def service_or_404(self, request: web.Request) -> dict[str, Any]:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        service = self.services.store.get(namespace, name)
        if service is None:
            raise web.HTTPNotFound(text=f"There is no Service {name} in namespace {namespace} "
                                        "(or the dashboard has not seen it yet).\n")
        return service

    @web.middleware
    async def guard(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.method == "POST":
            if not self.settings.edits:
                return self.render("message.html", status=403, kind="refused",
                                   message="Edits are off: start the dashboard with --edits to change Services "
                                           "or invoke them.")
            if request.headers.get("HX-Request") != "true":
                return web.Response(status=403, text="Actions are taken from the dashboard's own pages only "
                                                     "(the HX-Request header is missing).\n")
        return await handler(request)

    # --- the list ---------------------------------------------------------------------------
    def _list_query(self, request: web.Request) -> tuple[str, str, int]:
        namespace = request.query.get("namespace", self.settings.default_namespace).strip()
        search = request.query.get("q", "")
        try:
            number = int(request.query.get("page", "1"))
        except ValueError:
            number = 1
        return namespace, search, number

    async def _rows(self, request: web.Request) -> dict[str, Any]:
        namespace, search, number = self._list_query(request)
        page = views.page_of_services(self.services.store.list(namespace or None), search=search, number=number)
        namespaces = sorted({str(service["metadata"]["namespace"]) for service in page.items})
        answers = await asyncio.gather(*(self.metrics_of(ns, window=LIST_WINDOW_SECONDS, series=False)
                                         for ns in namespaces))
        by_namespace: dict[str, Entries | None] = dict(zip(namespaces, answers))
        rows = [views.service_row(service, self.service_revisions(service["metadata"]["namespace"],
                                                                  service["metadata"]["name"]),
                                  by_namespace.get(service["metadata"]["namespace"]))
                for service in page.items]
        metrics_missing = bool(namespaces) and all(answer is None for answer in answers)
        return {"rows": rows, "page": page, "namespace": namespace, "search": search,
                "metrics_missing": metrics_missing, "window": int(LIST_WINDOW_SECONDS)}

    async def services_page(self, request: web.Request) -> web.Response:
        context = await self._rows(request)
        namespaces = sorted({str(service["metadata"].get("namespace") or "") for service in self.services.store.list()}
                            | {self.settings.default_namespace})
        return self.render("services.html", namespaces=namespaces, **context)

    async def services_rows(self, request: web.Request) -> web.Response:
        return self.render("service_rows.html", **await self._rows(request))

    # --- one Service ------------------------------------------------------------------------
    async def _live(self, service: dict[str, Any]) -> dict[str, Any]:
        metadata = service["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        revisions = self.service_revisions(namespace, name)
        now = self.clock.now()
        entries = await self.metrics_of(namespace, window=LIST_WINDOW_SECONDS, series=False)
        try:
            events = (await self.client.list(EVENTS, namespace=namespace)).items
            events_error = None
        except ApiError as error:
            events, events_error = [], f"The events could not be read: {error}"
        owned = {name, *(str(revision["metadata"]["name"]) for revision in revisions)}
        host = views.host_of(service)
        dead = await self.ingress.dead_calls(host) if host else None
        backlogs = await self.queue.backlogs() if self.queue is not None else None
        backlog = None if backlogs is None else backlogs.get((namespace, name))  # None: no calls recorded
        return {
            "service": service, "row": views.service_row(service, revisions, entries),
            "revisions": views.revision_views(service, revisions, entries, now),
            "canary": views.canary_view(service),
            "events": views.event_views(events, owned, now), "events_error": events_error,
            "dead_calls": dead, "backlog": backlog, "backlogs_missing": backlogs is None, "metrics_missing": entries is None, "window": int(LIST_WINDOW_SECONDS),
        }

    async def service_page(self, request: web.Request) -> web.Response:
        service = self.service_or_404(request)
        live = await self._live(service)
        ready = [view.name for view in live["revisions"] if view.ready == "True"]
        return self.render("service.html", rows=editor_rows(service, ready),
                           chart_minutes=max(1, self.settings.chart_seconds // 60), **live)

    async def service_live(self, request: web.Request) -> web.Response:
        return self.render("service_live.html", **await self._live(self.service_or_404(request)))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Chart frames as server-sent events until the page goes away or the dashboard stops."""
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        self.service_or_404(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        history = views.ReplicaHistory(capacity=self.settings.chart_seconds)
        try:
            while not self.stopping.is_set():
                revisions = self.service_revisions(namespace, name)
                names = [view.name for view in views.revision_views(
                    self.services.store.get(namespace, name) or {}, revisions, None, self.clock.now())]
                actual = {str(revision["metadata"]["name"]): views.int_or_none(
                    (revision.get("status") or {}).get("actualReplicas")) for revision in revisions}
                entries = await self.metrics_of(namespace, window=self.settings.chart_seconds, series=True)
                frame = views.chart_frame(list(reversed(names)), entries, now=self.clock.time(),
                                          seconds=self.settings.chart_seconds, replicas=history,
                                          actual_replicas=actual)
                await response.write(f"data: {json.dumps(frame, separators=(',', ':'))}\n\n".encode())
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=self.settings.stream_interval)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    # --- actions ----------------------------------------------------------------------------
    async def _patch_traffic(self, service: dict[str, Any], targets: list[dict[str, Any]], done: str) -> web.Response:
        metadata = service["metadata"]
        try:
            await self.client.patch(SERVICES, metadata["namespace"], metadata["name"], traffic_patch(targets),
                                    content_type=MERGE_PATCH)
        except ApiError as error:
            # The API server's own words, as kubectl would print them.
            return self.render("message.html", status=error.status if 400 <= error.status < 600 else 502,
                               kind="refused", message=error.message or str(error))
        response = self.render("message.html", kind="applied", message=done)
        response.headers["HX-Trigger"] = "applied"  # the page reloads its revisions at once
        return response

    async def set_traffic(self, request: web.Request) -> web.Response:
        service = self.service_or_404(request)
        form = {key: str(value) for key, value in (await request.post()).items()}
        try:
            targets = traffic_from_form(form)
        except FormError as error:
            return self.render("message.html", status=400, kind="refused", message=str(error))
        split = ", ".join(f"{target.get('revisionName') or 'latest'} {target['percent']}%"
                          + (f" (tag {target['tag']})" if target.get("tag") else "") for target in targets)
        return await self._patch_traffic(service, targets, f"Traffic set: {split}.")

    async def rollback(self, request: web.Request) -> web.Response:
        service = self.service_or_404(request)
        revision = str((await request.post()).get("revision") or "")
        known = {str(item["metadata"]["name"]): item for item in self.service_revisions(
            service["metadata"]["namespace"], service["metadata"]["name"])}
        if revision not in known or views.ready_state(known[revision])[0] != "True":
            return self.render("message.html", status=400, kind="refused",
                               message=f"{revision or 'No revision'} is not a ready revision of this Service.")
        return await self._patch_traffic(service, rollback_targets(service, revision),
                                         f"Rolled back: all traffic to {revision}.")

    async def invoke(self, request: web.Request) -> web.Response:
        service = self.service_or_404(request)
        form = {key: str(value) for key, value in (await request.post()).items()}
        host = views.host_of(service)
        if host is None:
            return self.render("message.html", status=409, kind="refused",
                               message="The Service has no URL yet; wait until its Route is ready.")
        try:
            call = parse_invoke(form)
        except InvokeError as error:
            return self.render("message.html", status=400, kind="refused", message=str(error))
        result = await self.ingress.invoke(host, call)
        return self.render("invoke_result.html", result=result, call=call, host=host)

    # --- the rest ---------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/services")

    async def healthz(self, request: web.Request) -> web.Response:
        synced = self.services.has_synced and self.revisions.has_synced
        return web.Response(status=200 if synced else 503, text="ok\n" if synced else "syncing\n")

    async def informers(self, app: web.Application) -> AsyncIterator[None]:
        """The informers run while the app does (an aiohttp cleanup context owns their tasks)."""
        tasks = [asyncio.create_task(self.services.run(), name="informer:services"),
                 asyncio.create_task(self.revisions.run(), name="informer:revisions")]
        yield
        self.stopping.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def on_shutdown(self, app: web.Application) -> None:
        self.stopping.set()


def missing_assets() -> list[str]:
    """The library files the pages load that are not in static/vendor (``make up`` copies them)."""
    from dashboard.assets import VENDOR_FILES

    return [name for name in VENDOR_FILES if not (VENDOR_DIR / name).is_file()]


def make_app(dashboard: Dashboard) -> web.Application:
    app = web.Application(middlewares=[dashboard.guard])
    app.cleanup_ctx.append(dashboard.informers)
    app.on_shutdown.append(dashboard.on_shutdown)
    routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
        ("GET", "/", dashboard.index),
        ("GET", "/healthz", dashboard.healthz),
        ("GET", "/services", dashboard.services_page),
        ("GET", "/services/rows", dashboard.services_rows),
        ("GET", "/services/{namespace}/{name}", dashboard.service_page),
        ("GET", "/services/{namespace}/{name}/live", dashboard.service_live),
        ("GET", "/services/{namespace}/{name}/stream", dashboard.stream),
        ("POST", "/services/{namespace}/{name}/traffic", dashboard.set_traffic),
        ("POST", "/services/{namespace}/{name}/rollback", dashboard.rollback),
        ("POST", "/services/{namespace}/{name}/invoke", dashboard.invoke),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    app.router.add_static("/static/", STATIC_DIR)
    return app
