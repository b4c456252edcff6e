"""The activator process: its collaborators, its two listeners and its long-lived tasks.

``Activator`` wires the revision source, the backends, the stats reporter and the handler,
then serves the data port (8012: requests for revisions) and the metrics port (Prometheus
text at ``/metrics``). It owns three tasks: the revision source feeding the backends, the
stat pusher, and the backends' probe loops (through ``Backends.close``). ``stop`` keeps
serving until no request has come for ``quiet_seconds`` (Knative's drainer: the ingress stops
sending once another activator is ready, or the pod has left the endpoints), then stops
accepting, lets requests in flight finish (up to ``drain_seconds``) and cancels the tasks.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator

import aiohttp
from aiohttp import web

from activator.backends import Backends, HttpProber, Prober
from activator.handler import ActivationHandler
from activator.metrics import ActivatorMetrics, RevisionGauges
from activator.reporter import REPORT_INTERVAL, HttpStatSender, StatPusher, StatSender
from activator.revisions import RevisionSource
from activator.stats import ConcurrencyReporter
from knserve.networking import SERVER_IDLE_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

DEFAULT_QUEUE_DEPTH = 10_000  # Knative's breakerQueueDepth


class Activator:
    def __init__(
        self,
        *,
        source: RevisionSource,
        autoscaler_url: str,
        pod_name: str = "activator",
        queue_depth: int = DEFAULT_QUEUE_DEPTH,
        stat_sender: StatSender | None = None,
        prober: Prober | None = None,
        probe_interval: float = 0.2,
        report_interval: float = REPORT_INTERVAL,
        drain_seconds: float = 30.0,
        quiet_seconds: float = 0.0,
        rng: random.Random | None = None,
        stats_token: Callable[[], str | None] | None = None,
        ingress_token: Callable[[], str | None] | None = None,
    ) -> None:
        self._source = source
        self._stats_token = stats_token
        self._ingress_token = ingress_token
        self._autoscaler_url = autoscaler_url
        self._stat_sender = stat_sender
        self._prober = prober
        self._probe_interval = probe_interval
        self._report_interval = report_interval
        self._queue_depth = queue_depth
        self._drain_seconds = drain_seconds
        self._quiet_seconds = quiet_seconds
        self._rng = rng
        self.reporter = ConcurrencyReporter(pod_name)
        self.backends: Backends | None = None
        self.metrics = ActivatorMetrics(self._gauges, pod_name=pod_name)
        self.handler: ActivationHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runners: list[web.BaseRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.addresses: dict[str, tuple[str, int]] = {}

    def _gauges(self) -> Iterator[RevisionGauges]:
        if self.backends is None:
            return
        for info, queued, healthy in self.backends.summary():
            concurrency = self.reporter.concurrency(info.namespace, info.name)
            yield RevisionGauges(info.namespace, info.name, concurrency, queued, healthy)

    async def start(self, *, host: str = "0.0.0.0", port: int = 8012, metrics_port: int | None = 9090) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=None, family=socket.AF_UNSPEC)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.backends = Backends(
            prober=self._prober or HttpProber(self._session),
            queue_depth=self._queue_depth,
            probe_interval=self._probe_interval,
            rng=self._rng,
        )
        sender = self._stat_sender or HttpStatSender(self._session, self._autoscaler_url, token=self._stats_token)
        pusher = StatPusher(self.reporter, sender, interval=self._report_interval)
        self.handler = ActivationHandler(
            backends=self.backends, reporter=self.reporter, pusher=pusher, metrics=self.metrics, session=self._session,
            ingress_token=self._ingress_token,
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._source.run(self.backends), name="activator-revision-source"),
            loop.create_task(pusher.run(), name="activator-stat-pusher"),
        ]
        data = web.ServerRunner(
            web.Server(self.handler, access_log=None, keepalive_timeout=SERVER_IDLE_TIMEOUT_SECONDS),
            shutdown_timeout=self._drain_seconds, handle_signals=False,
        )
        await self._serve("data", data, host, port)
        if metrics_port is not None:
            app = web.Application()
            app.router.add_get("/metrics", self._metrics_endpoint)
            runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                   keepalive_timeout=SERVER_IDLE_TIMEOUT_SECONDS)
            await self._serve("metrics", runner, host, metrics_port)

    async def _serve(self, name: str, runner: web.BaseRunner, host: str, port: int) -> None:
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        bound = runner.addresses[0]
        self.addresses[name] = (str(bound[0]), int(bound[1]))
        log.info("activator %s port listening on %s:%d", name, *self.addresses[name])

    async def _metrics_endpoint(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def stop(self, *, quiet_seconds: float | None = None) -> None:
        quiet = self._quiet_seconds if quiet_seconds is None else quiet_seconds
        if self.handler is not None and not self.handler.draining:
            self.handler.draining = True
            if quiet > 0:
                # A terminating activator may still be the only one the Routes have (its
                # replacement not ready yet): it serves for as long as requests keep coming.
                log.info("draining: serving until no request has come for %.1fs", quiet)
                await self._quiet_for(quiet)
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.backends is not None:
            await self.backends.close()
        if self._session is not None:
            await self._session.close()

    async def _quiet_for(self, quiet: float) -> None:
        assert self.handler is not None
        self.handler.last_request = max(self.handler.last_request, time.monotonic())
        while (idle := time.monotonic() - self.handler.last_request) < quiet:
            await asyncio.sleep(quiet - idle)
        log.info("draining: no request for %.1fs; closing the listeners", quiet)

    async def run(self, *, host: str = "0.0.0.0", port: int = 8012, metrics_port: int | None = 9090) -> None:
        """Serve until cancelled."""
        await self.start(host=host, port=port, metrics_port=metrics_port)
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()
