"""The queue-proxy process: builds the parts from settings, opens the four ports, drains, exits.

``QueueProxy.run()`` listens on the serving port (the protocol-level proxy), the admin
port (``/wait-for-drain``), the stats port (``/stats`` JSON for the autoscaler, and
``/metrics`` with the same figures in Prometheus text) and the metrics port (Prometheus
``/metrics``), runs the readiness prober, and returns 0 once a drain (SIGTERM or
``terminate()``) has finished: probes fail at once, requests are still served until a
quiet period passes with none, in-flight ones complete, then everything closes.
Side effects: sockets, the prober's connections or subprocesses, logging.
"""

from __future__ import annotations

import asyncio
import logging

from knserve import networking
from knserve.clock import Clock, SystemClock
from knserve.stats_wire import encode_stat
from queueproxy.admin import Reply, SideServer, listening_socket, pod_and_node
from queueproxy.breaker import Breaker
from queueproxy.drain import Drainer
from queueproxy.exchange import Exchange
from queueproxy.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from queueproxy.metrics import Metrics, render_stat
from queueproxy.proxy import Proxy
from queueproxy.readiness import ReadinessProber, ReadinessTracker
from queueproxy.settings import Settings
from queueproxy.stats import RequestStats
from queueproxy.upstream import UpstreamPool

logger = logging.getLogger(__name__)

WAIT_FOR_DRAIN_PATH = "/wait-for-drain"
# If /wait-for-drain is called but no SIGTERM follows (the app container alone is being
# restarted), serving resumes once the drain completes so the pod can become ready again.


class QueueProxy:
    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ports: dict[str, int] = {}
        self.drainer = Drainer(quiet_period=settings.drain_quiet_period_seconds)
        self.readiness = ReadinessTracker(settings.effective_probe)
        self.stats = RequestStats(pod_name=settings.pod, now=self.clock.time())
        self.base_labels = {
            "namespace_name": settings.namespace,
            "service_name": settings.service,
            "configuration_name": settings.configuration,
            "revision_name": settings.revision,
            "pod_name": settings.pod,
            "container_name": "queue-proxy",
        }
        self.metrics = Metrics(base_labels=self.base_labels)
        self.breaker: Breaker[Exchange] = Breaker(
            concurrency=settings.container_concurrency, queue_depth=settings.queue_depth
        )
        self.proxy: Proxy | None = None
        self._terminating: asyncio.Event | None = None
        self._drained: asyncio.Event | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self.started: asyncio.Event | None = None

    # --- control -----------------------------------------------------------------------
    def terminate(self) -> None:
        """SIGTERM: start draining and exit when it is done."""
        if self._terminating is not None:
            self._terminating.set()
        self.request_drain()

    def request_drain(self) -> None:
        loop = asyncio.get_running_loop()
        if not self.drainer.draining:
            logger.info("draining: probes now fail; serving until %.1fs pass with no request",
                        self.settings.drain_quiet_period_seconds)
            self.drainer.start(loop.time())
        if self._drain_task is None or self._drain_task.done():
            assert self._drained is not None
            self._drained.clear()
            self._drain_task = loop.create_task(self._watch_drain(), name="queue-proxy-drain")

    async def _watch_drain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            deadline = self.drainer.deadline()
            if deadline is None or self.drainer.drained(loop.time()):
                break
            await asyncio.sleep(max(0.0, deadline - loop.time()))
        assert self._drained is not None
        self._drained.set()

    async def wait_for_drain(self) -> Reply:
        """The user container's preStop: answers once the quiet period is over and no request
        is in flight, so the app gets its SIGTERM only after the last request it serves."""
        assert self._drained is not None and self._terminating is not None
        self.request_drain()
        await self._drained.wait()
        if self.proxy is not None:
            await self.proxy.wait_idle()
        if not self._terminating.is_set():
            await asyncio.sleep(1.0)  # a SIGTERM sent at the same time may still be on its way
            if not self._terminating.is_set():
                logger.info("drained without SIGTERM (app container restarting): serving again")
                self.drainer = Drainer(quiet_period=self.settings.drain_quiet_period_seconds)
                if self.proxy is not None:
                    self.proxy.drainer = self.drainer
        return Reply(200, b"")

    # --- side ports ----------------------------------------------------------------------
    def stats_reply(self) -> Reply:
        stat = self.stats.report(self.clock.time())
        return Reply(200, encode_stat(stat), "application/json")

    def stats_metrics_reply(self) -> Reply:
        stat = self.stats.report(self.clock.time())
        return Reply(200, render_stat(stat, base_labels=self.base_labels).encode(), METRICS_CONTENT_TYPE)

    def metrics_reply(self) -> Reply:
        depth = self.breaker.depth if not self.breaker.unlimited else None
        text = self.metrics.render(queue_depth=depth, in_flight=self.stats.concurrency)
        return Reply(200, text.encode(), METRICS_CONTENT_TYPE)

    # --- the process ---------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        settings = self.settings
        self._terminating = asyncio.Event()
        self._drained = asyncio.Event()
        self.started = self.started or asyncio.Event()
        pool = UpstreamPool(loop=loop, host=settings.user_host, port=settings.user_port)
        h2 = None
        if settings.h2c:
            from queueproxy.h2upstream import H2Upstream

            h2 = H2Upstream(loop=loop, host=settings.user_host, port=settings.user_port)
        proxy = self.proxy = Proxy(
            settings=settings, loop=loop, clock=self.clock, breaker=self.breaker, stats=self.stats,
            metrics=self.metrics, drainer=self.drainer, readiness=self.readiness, pool=pool, h2=h2,
        )
        host = settings.bind_host
        serving = await loop.create_server(proxy, sock=listening_socket(host, settings.serving_port))
        self.ports["serving"] = int(serving.sockets[0].getsockname()[1])
        side_servers = [
            # Only the pod and its node's kubelet may make the pod drain (and stop serving).
            (SideServer("admin", {WAIT_FOR_DRAIN_PATH: self.wait_for_drain},
                        allowed_peers=pod_and_node(settings.pod_ip)), settings.admin_port),
            (SideServer("stats", {networking.STATS_PATH: self.stats_reply, "/metrics": self.stats_metrics_reply}),
             settings.stats_port),
            (SideServer("metrics", {"/metrics": self.metrics_reply}), settings.metrics_port),
        ]
        for side, port in side_servers:
            self.ports[side.name] = await side.start(host, port)
        proxy.start_sweeping()
        prober = loop.create_task(ReadinessProber(self.readiness).run(), name="queue-proxy-readiness")
        logger.info(
            "queue-proxy serving on %s:%d (admin %d, stats %d, metrics %d) for app %s:%d, containerConcurrency=%d",
            host, self.ports["serving"], self.ports["admin"], self.ports["stats"], self.ports["metrics"],
            settings.user_host, settings.user_port, settings.container_concurrency,
        )
        self.started.set()
        try:
            await self._terminating.wait()
            await self._drained.wait()
            logger.info("quiet period over: closing the serving port and finishing %d requests", proxy.in_flight)
            serving.close()
            proxy.begin_closing()
            await proxy.wait_idle()
        finally:
            prober.cancel()
            serving.close()
            proxy.close_all()
            if h2 is not None:
                h2.close()
            await asyncio.sleep(0.05)  # let /wait-for-drain answers and last writes flush
            for side, _ in side_servers:
                side.close()
        logger.info("queue-proxy drained; exiting")
        return 0
