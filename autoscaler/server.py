"""The autoscaler's HTTP faces: the stats port (8080) and the metrics port.

- ``POST /stats``: the activator's stat batches (``knserve.stats_wire``): ``202``, or
  ``400`` with a sentence when the body is not a batch; with a ``StatsAuth`` (``auth``),
  ``401`` unless the request carries the activator's service-account token;
- ``GET /healthz``: ``200 ok``;
- metrics port ``GET /metrics``: per revision ``autoscaler_desired_pods``,
  ``autoscaler_actual_pods``, ``autoscaler_stable_request_concurrency`` /
  ``autoscaler_panic_request_concurrency`` (or ``_requests_per_second`` for rps),
  ``autoscaler_target_concurrency_per_pod``, ``autoscaler_excess_burst_capacity``,
  ``autoscaler_panic_mode``, read from the service at scrape time;
- metrics port ``GET /api/v1/requests/{namespace}/{revision}?since=&until=`` and
  ``GET /api/v1/requests/{namespace}?window=&series=``: the request-metrics API
  (``knserve.request_metrics``), JSON; ``404`` with a sentence for a revision this autoscaler
  does not follow, ``400`` with a sentence for a bad query. Read-only, like ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from autoscaler.auth import StatsAuth
from autoscaler.config import METRIC_RPS
from autoscaler.service import AutoscalerService
from knserve.request_metrics import (
    REQUESTS_API_PREFIX,
    encode_namespace_answer,
    parse_namespace_query,
    parse_summary_query,
)
from knserve.stats_wire import HEALTH_PATH, STATS_PUSH_PATH, WireError, decode_stat_batch

LABELS = ("namespace_name", "revision_name")


def stats_app(service: AutoscalerService, auth: StatsAuth | None = None) -> web.Application:
    async def push(request: web.Request) -> web.Response:
        if auth is not None and not await auth.allows(request.headers.get("Authorization")):
            return web.Response(status=401, text="only the activator may push stats: send its service-account "
                                "token as 'Authorization: Bearer <token>'\n", headers={"WWW-Authenticate": "Bearer"})
        try:
            messages = decode_stat_batch(await request.read())
        except WireError as error:
            return web.Response(status=400, text=f"{error}\n")
        service.record(messages)
        return web.Response(status=202)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(STATS_PUSH_PATH, push)
    app.router.add_get(HEALTH_PATH, health)
    return app


class _ServiceCollector(Collector):
    def __init__(self, service: AutoscalerService) -> None:
        self._service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        def family(name: str, text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=LABELS)

        desired = family("autoscaler_desired_pods", "Pods the autoscaler wants (-1: no decision yet).")
        actual = family("autoscaler_actual_pods", "Ready pods at the last reconcile.")
        stable_c = family("autoscaler_stable_request_concurrency", "Average concurrency over the stable window.")
        panic_c = family("autoscaler_panic_request_concurrency", "Average concurrency over the panic window.")
        stable_r = family("autoscaler_stable_requests_per_second", "Average requests per second over the stable window.")
        panic_r = family("autoscaler_panic_requests_per_second", "Average requests per second over the panic window.")
        target = family("autoscaler_target_concurrency_per_pod", "The per-pod value aimed for (TV).")
        ebc = family("autoscaler_excess_burst_capacity", "Spare capacity beyond target-burst-capacity.")
        panic = family("autoscaler_panic_mode", "1 while the revision is in panic mode.")
        for state in self._service.summary():
            labels = [state.pa.namespace, state.pa.revision]
            scaler = state.scaler
            desired.add_metric(labels, scaler.status.desired_scale)
            ebc.add_metric(labels, scaler.status.excess_burst_capacity)
            target.add_metric(labels, scaler.spec.target)
            if state.counts is not None:
                actual.add_metric(labels, state.counts.ready)
            result = scaler.last_result
            if result is not None:
                panic.add_metric(labels, 1.0 if result.in_panic else 0.0)
                stable, burst = (stable_r, panic_r) if scaler.spec.metric == METRIC_RPS else (stable_c, panic_c)
                stable.add_metric(labels, result.observed_stable)
                burst.add_metric(labels, result.observed_panic)
        yield from (desired, actual, stable_c, panic_c, stable_r, panic_r, target, ebc, panic)


def metrics_app(service: AutoscalerService) -> web.Application:
    registry = CollectorRegistry()
    registry.register(_ServiceCollector(service))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")

    async def revision_requests(request: web.Request) -> web.Response:
        namespace, revision = request.match_info["namespace"], request.match_info["revision"]
        try:
            since, until = parse_summary_query(request.query)
        except WireError as error:
            return web.Response(status=400, text=f"{error}\n")
        summary = service.request_summary(namespace, revision, since=since, until=until)
        if summary is None:
            return web.Response(
                status=404,
                text=f"The autoscaler follows no revision {namespace}/{revision}: it keeps request metrics only "
                "for revisions with a PodAutoscaler of the KPA class, until they are deleted.\n",
            )
        return web.json_response(summary.to_json())

    async def namespace_requests(request: web.Request) -> web.Response:
        try:
            window, series = parse_namespace_query(request.query)
        except WireError as error:
            return web.Response(status=400, text=f"{error}\n")
        entries = service.namespace_requests(request.match_info["namespace"], window=window, series=series)
        return web.json_response(encode_namespace_answer(entries))

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get(REQUESTS_API_PREFIX + "/{namespace}/{revision}", revision_requests)
    app.router.add_get(REQUESTS_API_PREFIX + "/{namespace}", namespace_requests)
    return app
