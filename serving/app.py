"""The serving controller's reconcilers in one object, and the process's logging setup.

``ControllerApp`` owns the shared informers, the ConfigMap-backed configuration, the
ingress state and one ``Controller`` per reconciler, all run in one TaskGroup. Hooks for
the rest of the process (``serving.main``, the ``knserve controller`` entry
point):

* ``ControllerApp(client, ingress_sink=...)``: the sink that receives every new ingress model
  (the xDS server);
* ``app.add_task(name, coroutine_factory)``: another long-lived task run in the same
  TaskGroup (the xDS gRPC server, the webhook's HTTPS server).

Side effects: network (API server) once run; logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from knserve.clock import Clock, SystemClock
from knserve.networking import SYSTEM_NAMESPACE
from kube.client import KubeClient
from kube.events import EventRecorder, EventSink
from kube.informer import InformerFactory
from kube.resources import CONFIGMAPS
from serving.reconciler.config_store import ConfigStore
from serving.reconciler.configuration import wiring as configuration_wiring
from serving.reconciler.gc import wiring as gc_wiring
from serving.reconciler.loop import Controller
from serving.reconciler.revision import wiring as revision_wiring
from serving.reconciler.route import wiring as route_wiring
from serving.reconciler.route.ingress_state import IngressSink, IngressState, LatestModelSink
from serving.reconciler.service import wiring as service_wiring
from serving.reconciler.service.metrics_reader import RequestMetricsReader
from serving.reconciler.wiring import Collaborators
from serving.xds.model import Endpoint

log = logging.getLogger("knserve.controller")


class ControllerApp:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str | None = None,
        ingress_sink: IngressSink | None = None,
        clock: Clock | None = None,
        events: EventSink | None = None,
        workers: int = 256,
        system_namespace: str = SYSTEM_NAMESPACE,
        watch_timeout_seconds: int = 290,
        resync_seconds: float = 600.0,
        activator: tuple[Endpoint, ...] = (),
        activator_service: str | None = None,
        queue_service: str | None = None,
        request_metrics: RequestMetricsReader | None = None,
    ) -> None:
        self.client = client
        self.informers = InformerFactory(client, namespace=namespace, watch_timeout_seconds=watch_timeout_seconds)
        self.config = ConfigStore()
        self.ingress = IngressState(ingress_sink or LatestModelSink())
        collaborators = Collaborators(
            client=client, informers=self.informers, config=self.config, clock=clock or SystemClock(),
            events=events or EventRecorder(client), workers=workers, activator=activator,
            activator_service=activator_service, queue_service=queue_service, request_metrics=request_metrics,
        )
        configmaps = self.informers.informer(CONFIGMAPS, namespace=system_namespace)
        configmaps.add_handler(self.config.handle)
        self.controllers: list[Controller] = [
            service_wiring.wire(collaborators),
            configuration_wiring.wire(collaborators),
            gc_wiring.wire(collaborators),
            revision_wiring.wire(collaborators),
            route_wiring.wire(collaborators, self.ingress),
        ]
        self.config.on_change(self._config_changed)
        self._tasks: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        self._resync_seconds = resync_seconds
        self.started = asyncio.Event()

    def _config_changed(self, name: str) -> None:
        log.info("configuration %s changed; reconciling everything again", name)
        for controller in self.controllers:
            controller.resync()

    def add_task(self, name: str, factory: Callable[[], Awaitable[Any]]) -> None:
        """Run ``factory()`` as a long-lived task next to the controllers (before ``run``)."""
        self._tasks.append((name, factory))

    def controller(self, name: str) -> Controller:
        return next(controller for controller in self.controllers if controller.name == name)

    async def run(self) -> None:
        """Run until cancelled; the reconcilers start once every informer has listed."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.informers.run(), name="informers")
            for name, factory in self._tasks:
                group.create_task(factory(), name=name)  # type: ignore[arg-type]
            await self.informers.wait_synced()
            log.info("caches synced; starting %d reconcilers", len(self.controllers))
            for controller in self.controllers:
                group.create_task(controller.run(), name=f"controller:{controller.name}")
            group.create_task(self._resync_forever(), name="resync")
            self.started.set()

    async def _resync_forever(self) -> None:
        """Look at everything again now and then: a safety net under the watches (level-based)."""
        while True:
            await asyncio.sleep(self._resync_seconds)
            for controller in self.controllers:
                controller.resync()


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
                 "ts": self.formatTime(record)}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
