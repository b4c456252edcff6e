"""One queue replica: the accept server, the dispatcher, metrics and health, run together.

Stateless: every replica connects to the same NATS and shares the work through the
Services' consumers. ``stop`` (SIGTERM) stops taking calls and lets the ones running here
finish (``drain_seconds``); whatever is still running then, or when ``run`` is cancelled,
loses its lease and is delivered again elsewhere.

It listens before NATS answers, and answers 503 with ``Retry-After`` at accept until it does.
Side effects: listens on ``port`` (calls) and ``metrics_port`` (``/metrics``, ``/healthz``),
connects to NATS, sends HTTP to the ingress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import generate_latest

from callqueue.demand import DemandReporter
from callqueue.directory import Directory
from callqueue.dispatcher import Dispatcher
from callqueue.metrics import QueueMetrics
from callqueue.server import DEFAULT_BODY_LIMIT, AcceptServer
from callqueue.store import JetStreamStore
from knserve.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class QueueProcess:
    def __init__(self, *, store: JetStreamStore, directory: Directory, ingress_url: str,
                 body_limit: int = DEFAULT_BODY_LIMIT, clock: Clock | None = None,
                 metrics_every: float = 2.0, drain_seconds: float = 25.0, dispatch: bool = True,
                 demand: DemandReporter | None = None,
                 dispatch_token: Callable[[], str | None] | None = None) -> None:
        self.demand = demand
        """Pushes the backlog to the autoscaler (None: nobody is told)."""
        self.drain_seconds = drain_seconds
        self.dispatch = dispatch
        """False: accept and answer status only (replicas that dispatch can be scaled apart)."""
        self.store = store
        self.directory = directory
        self.metrics = QueueMetrics()
        self.clock = clock or SystemClock()
        self.dispatcher = Dispatcher(store=store, directory=directory, ingress_url=ingress_url, metrics=self.metrics,
                                     clock=self.clock, dispatch_token=dispatch_token)
        self.server = AcceptServer(store=store, directory=directory, metrics=self.metrics, clock=self.clock,
                                   body_limit=body_limit, on_accepted=self.dispatcher.notice)
        self.metrics_every = metrics_every
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Begin a graceful stop: calls running here finish (up to ``drain_seconds``), then ``run`` returns."""
        self._stopping.set()

    def admin_app(self) -> web.Application:
        app = web.Application()

        async def healthz(request: web.Request) -> web.Response:
            # Ready whenever it listens: without NATS it must still answer 503 with Retry-After
            # itself (an unready queue would leave Envoy with no endpoint and no Retry-After).
            return web.Response(text="ok" if self.store.connected else "ok; NATS unreachable, accepting answers 503")

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.metrics.registry), content_type="text/plain")

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", metrics)
        return app

    async def _gauges(self) -> None:
        while True:
            await asyncio.sleep(self.metrics_every)
            with contextlib.suppress(Exception):
                for namespace, service in await self.store.services():
                    backlog = await self.store.backlog(namespace, service)
                    self.metrics.depth.labels(namespace, service).set(backlog.depth)
                    self.metrics.oldest_age.labels(namespace, service).set(backlog.oldest_age)

    async def _connect(self) -> None:
        while True:
            try:
                await self.store.connect()
                return
            except Exception as error:
                log.warning("connecting to NATS at %s: %r; trying again", ", ".join(self.store.servers), error)
                await asyncio.sleep(1.0)

    async def run(self, *, host: str = "0.0.0.0", port: int = 8080, metrics_port: int | None = 9090) -> None:
        runners: list[web.AppRunner] = []
        try:
            apps = [(self.server.app(), port)]
            if metrics_port is not None:
                apps.append((self.admin_app(), metrics_port))
            for app, app_port in apps:
                runner = web.AppRunner(app, access_log=None, handle_signals=False)
                await runner.setup()
                await web.TCPSite(runner, host, app_port, backlog=1024, reuse_address=True).start()
                runners.append(runner)
            log.info("queue: listening on %s:%d", host, port)
            await self._connect()
            self.ready.set()
            async with asyncio.TaskGroup() as group:
                dispatcher = group.create_task(self.dispatcher.run() if self.dispatch else asyncio.Event().wait(),
                                               name="dispatcher")
                gauges = group.create_task(self._gauges(), name="queue-gauges")
                if self.demand is not None:
                    demand = group.create_task(self.demand.run(), name="queue-demand")
                await self._stopping.wait()
                left = await self.dispatcher.drain(self.drain_seconds)
                log.info("queue: stopping; %d calls still running are delivered again when their lease ends", left)
                dispatcher.cancel()
                gauges.cancel()
                if self.demand is not None:
                    demand.cancel()
        finally:
            for runner in runners:
                await runner.cleanup()
            await self.store.close()
