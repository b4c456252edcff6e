"""``knserve controller``: the serving controller (and, once mounted by the caller, the xDS
server and the admission webhook) in one process.

``main(argv)`` parses flags, connects to the API server (``--kubeconfig``, else
``$KUBECONFIG``, else the in-cluster service account), builds a ``ControllerApp`` and runs
it until SIGTERM/SIGINT. ``ControllerApp`` owns the shared informers, the ConfigMap-backed
configuration, the ingress state and one ``Controller`` per reconciler, all run in one
TaskGroup. Hooks for the rest of the process:

* ``ControllerApp(client, ingress_sink=...)``: the sink that receives every new ingress model
  (the xDS server);
* ``app.add_task(name, coroutine_factory)``: another long-lived task run in the same
  TaskGroup (the xDS gRPC server, the webhook's HTTPS server).

Side effects: network (API server), logs, signal handlers in ``main``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from serving.config.errors import SYSTEM_NAMESPACE
from serving.kube.client import KubeClient, connect
from serving.kube.errors import ApiError
from serving.kube.events import EventRecorder, EventSink
from serving.kube.informer import InformerFactory
from serving.kube.resources import CONFIGMAPS
from serving.reconciler.clock import Clock, SystemClock
from serving.reconciler.config_store import ConfigStore
from serving.reconciler.configuration import wiring as configuration_wiring
from serving.reconciler.gc import wiring as gc_wiring
from serving.reconciler.loop import Controller
from serving.reconciler.revision import wiring as revision_wiring
from serving.reconciler.route import wiring as route_wiring
from serving.reconciler.route.ingress_state import IngressSink, IngressState, LatestModelSink
from serving.reconciler.service import wiring as service_wiring
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
    ) -> None:
        self.client = client
        self.informers = InformerFactory(client, namespace=namespace, watch_timeout_seconds=watch_timeout_seconds)
        self.config = ConfigStore()
        self.ingress = IngressState(ingress_sink or LatestModelSink())
        collaborators = Collaborators(
            client=client, informers=self.informers, config=self.config, clock=clock or SystemClock(),
            events=events or EventRecorder(client), workers=workers, activator=activator,
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


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knserve controller", description="The knserve serving controller.")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else the in-cluster account)")
    parser.add_argument("--namespace-scope", default=None,
                        help="reconcile only objects in this namespace (default: all namespaces)")
    parser.add_argument("--workers", type=int, default=256,
                        help="concurrent reconciles per kind (default 256; API writes are bounded separately)")
    parser.add_argument("--max-writes-in-flight", type=int, default=16,
                        help="API writes sent at once; the rest wait, creates first (default 16)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def _dump_tasks(client: Any = None) -> None:
    """SIGUSR1: log API write statistics and where every task is waiting (diagnosing a stuck controller)."""
    import io

    stats = getattr(client, "write_stats", None)
    if stats is not None:
        log.warning("API writes: %s", stats.summary())
    for task in asyncio.all_tasks():
        out = io.StringIO()
        task.print_stack(limit=8, file=out)
        log.warning("task %s:\n%s", task.get_name(), out.getvalue())


async def _run(args: argparse.Namespace) -> None:
    client = await connect(args.kubeconfig, max_writes_in_flight=args.max_writes_in_flight)
    try:
        app = ControllerApp(client, namespace=args.namespace_scope, workers=args.workers)
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            if task is not None:
                loop.add_signal_handler(signum, task.cancel)
        loop.add_signal_handler(signal.SIGUSR1, _dump_tasks, client)
        log.info("knserve controller talking to %s", client.host)
        await app.run()
    finally:
        log.info("API writes: %s", client.write_stats.summary())
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging(args.log_format, args.log_level)
    try:
        asyncio.run(_run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    except ApiError as error:
        print(f"knserve controller: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
