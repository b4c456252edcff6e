"""``knserve controller``: the whole controller process.

One process holds the reconcilers (``ControllerApp``), the xDS server that programs Envoy
(the reconcilers' ingress sink, so a Route is Ready only once Envoy has acknowledged it), a
health port and, unless ``--no-webhook`` (config/ runs it apart: ``knserve webhook``), the
admission webhook.

With ``--leader-elect`` several replicas can run: each waits for the Lease
``--lease-name`` in knative-serving (``kube.leaderelection``, as client-go's leaderelection),
answering its health port meanwhile; only the holder reconciles and serves xDS (Envoy's
retries find it: a standby refuses the connection). The leader releases the Lease when
stopped, and exits when it cannot renew it, so a standby takes over.

    knserve controller [--kubeconfig FILE] [--xds-address HOST:PORT]
                       [--ingress-external-address HOST:PORT] [--ingress-internal-address HOST:PORT]
                       [--webhook-address HOST:PORT] [--webhook-url URL]
                       [--webhook-cert-dir DIR] [--health-address HOST:PORT]
                       [--workers N] [--max-writes-in-flight N] [--reconcilers-only]
                       [--no-webhook] [--leader-elect [--lease-name NAME]] [--xds-insecure]

``--reconcilers-only`` runs the reconcilers alone: no xDS server (every Route counts as
served at once), no webhook, no health port; the controller's tests and its benchmark run it
that way, several at once. SIGUSR1 logs the API write statistics and where every task waits;
the statistics are logged at exit too.

xDS is served over mutual TLS: the CA, the server's certificate and Envoy's client
certificate live in the Secrets ``knserve-xds-certs`` and ``knserve-envoy-xds`` in
knative-serving, made by the first leader (``serving.xds.tls``); ``--xds-insecure`` serves
plain text to anyone instead. Envoy adds the ingress token (Secret ``knserve-ingress-token``)
to the requests it routes; the activator serves only those.

The webhook's serving certificate comes from ``--webhook-cert-dir`` (``ca.crt``,
``webhook.crt``, ``webhook.key``); when the directory holds no certificate the process makes
its own CA and certificate there. The webhook configurations it registers point at
``--webhook-url`` when given (local mode), else at the ``webhook`` Service in
``knative-serving``.

Side effects: network (API server, listening sockets), writes certificates, logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import logging
import signal
import socket
import sys
import tempfile
from pathlib import Path
import os
import uuid
from typing import Any

from aiohttp import web

from knserve.cli import cancel_on_signals
from knserve.networking import ACTIVATOR_SERVICE_NAME, SYSTEM_NAMESPACE
from kube.client import KubeClient, connect
from kube.errors import ApiError
from kube.leaderelection import LeaderElector, LeadershipLost
from serving.app import ControllerApp, configure_logging
from serving.reconciler.service.metrics_reader import DEFAULT_METRICS_URL, HttpRequestMetrics
from serving.webhook.install import register_webhooks, webhook_certificate
from serving.webhook.server import WebhookServer, server_ssl_context
from serving.xds.controller import XdsController
from serving.xds.model import EMPTY_MODEL, Endpoint, IngressModel
from serving.xds.tls import shared_certificates, shared_ingress_token
from serving.xds.translate import IngressSettings

log = logging.getLogger("knserve.controller")


# The informer caches hold many thousands of small dicts. With the interpreter's default
# thresholds a burst of changes (200 Services) ran six full collections of ~80 ms each over
# them: an eighth of the controller's CPU, and the event loop stalled meanwhile. What the
# controller keeps is JSON, without reference cycles: collect young objects less often, and
# leave what the first lists brought out of the scans.
GC_THRESHOLDS = (10_000, 10, 10)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knserve controller", description="The knserve serving controller.")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else the in-cluster account)")
    parser.add_argument("--namespace-scope", default=None,
                        help="reconcile only objects in this namespace (default: all namespaces)")
    parser.add_argument("--workers", type=int, default=256,
                        help="concurrent reconciles per kind (default 256; API writes are bounded separately)")
    parser.add_argument("--max-writes-in-flight", type=int, default=16,
                        help="API writes sent at once besides the creates on the way to a Deployment (default 16)")
    parser.add_argument("--reconcilers-only", action="store_true",
                        help="no xDS server, webhook or health port: the reconcilers alone (tests, benchmarks)")
    parser.add_argument("--xds-address", type=_host_port, default=("0.0.0.0", 18000),
                        help="where Envoy reaches the xDS server (default 0.0.0.0:18000)")
    parser.add_argument("--xds-insecure", action="store_true",
                        help="serve xDS in plain text to any client (default: mutual TLS with the certificates in "
                        "the Secrets knserve-xds-certs and knserve-envoy-xds, made at the first start)")
    parser.add_argument("--ingress-external-address", type=_host_port, default=("0.0.0.0", 8080),
                        help="Envoy's listener for public routes (default 0.0.0.0:8080)")
    parser.add_argument("--ingress-internal-address", type=_host_port, default=("0.0.0.0", 8081),
                        help="Envoy's listener for cluster-local routes (default 0.0.0.0:8081)")
    parser.add_argument("--activator-address", type=_host_port, action="append", default=[],
                        help="an activator's HOST:PORT; revisions at zero are routed there (repeatable; "
                        "default: the ready endpoints of --activator-service)")
    parser.add_argument("--activator-service", default=f"{SYSTEM_NAMESPACE}/{ACTIVATOR_SERVICE_NAME}",
                        help="NAMESPACE/NAME of the activator's Service, whose EndpointSlices say where the "
                        f"activators are (default {SYSTEM_NAMESPACE}/{ACTIVATOR_SERVICE_NAME})")
    parser.add_argument("--queue-service", default=f"{SYSTEM_NAMESPACE}/knserve-queue",
                        help="NAMESPACE/NAME of the call queue's Service; while it exists, requests with "
                        f"'Prefer: respond-async' go to its endpoints ('' for none; default {SYSTEM_NAMESPACE}/knserve-queue)")
    parser.add_argument("--autoscaler-metrics-url", default=DEFAULT_METRICS_URL,
                        help="where canary analysis reads Revisions' request summaries (the autoscaler's metrics "
                        "port; empty: nowhere, so analyses see no requests and roll back)")
    parser.add_argument("--webhook-address", type=_host_port, default=("0.0.0.0", 8443),
                        help="the admission webhook's HTTPS address (default 0.0.0.0:8443)")
    parser.add_argument("--webhook-url", help="URL the API server calls the webhook at (default: the webhook Service)")
    parser.add_argument("--webhook-cert-dir", type=Path, default=None,
                        help="ca.crt, webhook.crt and webhook.key (made there when missing)")
    parser.add_argument("--no-webhook", action="store_true", help="do not serve or register the webhook")
    parser.add_argument("--leader-elect", action="store_true",
                        help="reconcile and serve xDS only while holding the Lease --lease-name (several replicas)")
    parser.add_argument("--lease-name", default="knserve-controller",
                        help=f"the Lease in {SYSTEM_NAMESPACE} the replicas elect a leader by (default %(default)s)")
    # Longer than client-go's 15/10 s: a leader on a busy machine (a two-core node running the
    # API server too) must not give up over a few slow writes; a clean stop releases the Lease.
    parser.add_argument("--lease-duration", type=float, default=30.0,
                        help="seconds a standby waits for a silent leader before taking over (default 30)")
    parser.add_argument("--renew-deadline", type=float, default=20.0,
                        help="seconds the leader keeps trying to renew before it gives up (default 20)")
    parser.add_argument("--retry-period", type=float, default=2.0,
                        help="seconds between two looks at the Lease (default 2)")
    parser.add_argument("--health-address", type=_host_port, default=("0.0.0.0", 9094),
                        help="GET /healthz answers 200 once the caches are synced (default 0.0.0.0:9094)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


class StartupGate:
    """Holds ingress models back until the Route reconciler has seen every Route once.

    A restarted controller rebuilds its ingress model one Route at a time; handing Envoy the
    first partial model would withdraw every Route not yet reconciled, a blip for their users.
    Envoy keeps serving its last configuration meanwhile, so holding back costs nothing.
    """

    def __init__(self, sink: XdsController) -> None:
        self._sink = sink
        self._latest: IngressModel | None = None
        self._opened = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self._opened.is_set()

    def update(self, model: IngressModel) -> None:
        self._latest = model
        if self.is_open:
            self._sink.update(model)

    async def served(self, route_key: str, generation: int) -> None:
        # Until the gate opens the sink has not seen the Route; asking it now fails, and the Route
        # would wait for an ingress that never reports back.
        await self._opened.wait()
        await self._sink.served(route_key, generation)

    def open(self) -> None:
        self._opened.set()
        self._sink.update(self._latest or EMPTY_MODEL)

    async def open_after_first_pass(self, app: ControllerApp, *, settle: float = 0.1, limit: float = 30.0) -> None:
        await app.started.wait()
        routes = app.controller("route").queue
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            if routes.is_drained:
                await asyncio.sleep(settle)
                if routes.is_drained:
                    break
            await asyncio.sleep(0.02)
        else:
            log.warning("routes still reconciling after %.0fs; publishing the ingress anyway", limit)
        self.open()
        log.info("ingress published after the first pass over all Routes")
        await asyncio.Event().wait()


class Health:
    """What ``/healthz`` says: ok once the leader's caches synced; ok for a standby (alive,
    ready to take over)."""

    def __init__(self) -> None:
        self.app: ControllerApp | None = None
        self.standby = False

    def answer(self) -> tuple[int, str]:
        if self.app is not None and self.app.started.is_set():
            return 200, "ok"
        if self.app is None and self.standby:
            return 200, "standby"
        return 503, "caches not synced yet"


async def _serve_health(health: Health, address: tuple[str, int]) -> None:
    async def healthz(_: web.Request) -> web.Response:
        status, text = health.answer()
        return web.Response(status=status, text=text)

    server = web.Application()
    server.router.add_get("/healthz", healthz)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, *address).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _dump_tasks(client: Any) -> None:
    """SIGUSR1: log API write statistics and where every task is waiting (a stuck controller)."""
    stats = getattr(client, "write_stats", None)
    if stats is not None:
        log.warning("API writes: %s", stats.summary())
    for task in asyncio.all_tasks():
        out = io.StringIO()
        task.print_stack(limit=8, file=out)
        log.warning("task %s:\n%s", task.get_name(), out.getvalue())


def _cancel_on_signals(client: Any) -> None:
    cancel_on_signals()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump_tasks, client)


async def freeze_caches_once_synced(app: ControllerApp) -> None:
    """Move the objects the first lists brought (and everything else alive then) out of the
    garbage collector's scans; they are still freed by reference counting."""
    await app.started.wait()
    gc.collect()
    gc.freeze()


def _request_metrics(args: argparse.Namespace) -> HttpRequestMetrics | None:
    return HttpRequestMetrics(args.autoscaler_metrics_url) if args.autoscaler_metrics_url else None


async def run_reconcilers(args: argparse.Namespace, client: KubeClient) -> None:
    app = ControllerApp(client, namespace=args.namespace_scope, workers=args.workers,
                        request_metrics=_request_metrics(args))
    app.add_task("gc-freeze", lambda: freeze_caches_once_synced(app))
    _cancel_on_signals(client)
    log.info("knserve controller (reconcilers only) talking to %s", getattr(client, "host", "?"))
    await app.run()


async def run(args: argparse.Namespace) -> None:
    client = await connect(args.kubeconfig, max_writes_in_flight=args.max_writes_in_flight)
    try:
        if args.reconcilers_only:
            await run_reconcilers(args, client)
        else:
            await run_serving(args, client)
    finally:
        log.info("API writes: %s", client.write_stats.summary())
        await client.close()


def _identity() -> str:
    """This candidate's name in the Lease: the pod's name and a unique suffix (a restarted
    container is a new candidate)."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


async def run_serving(args: argparse.Namespace, client: KubeClient) -> None:
    health = Health()
    loop = asyncio.get_running_loop()
    health_task = loop.create_task(_serve_health(health, args.health_address), name="health")
    elector: LeaderElector | None = None
    _cancel_on_signals(client)
    try:
        if args.leader_elect:
            elector = LeaderElector(client, namespace=SYSTEM_NAMESPACE, name=args.lease_name, identity=_identity(),
                                    lease_duration=args.lease_duration, renew_deadline=args.renew_deadline,
                                    retry_period=args.retry_period)
            health.standby = True
            await elector.acquire()
        await _lead(args, client, health, elector)
    except* LeadershipLost as lost:
        log.error("stopping: %s", lost.exceptions[0])
        raise SystemExit(1) from None
    finally:
        if elector is not None:
            await elector.release()
        health_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await health_task


async def _lead(args: argparse.Namespace, client: KubeClient, health: Health, elector: LeaderElector | None) -> None:
    (external_host, external_port), (internal_host, internal_port) = (args.ingress_external_address,
                                                                      args.ingress_internal_address)
    certificates = None if args.xds_insecure else await shared_certificates(client)
    ingress_token = await shared_ingress_token(client)
    xds = XdsController(settings=IngressSettings(external_host=external_host, external_port=external_port,
                                                  internal_host=internal_host, internal_port=internal_port,
                                                  ingress_token=ingress_token),
                        certificates=certificates)
    xds_host, xds_port = args.xds_address
    await xds.start(f"{xds_host}:{xds_port}")
    webhook: WebhookServer | None = None
    try:
        gate = StartupGate(xds)
        activator = tuple(Endpoint(host, port) for host, port in args.activator_address)
        app = ControllerApp(client, namespace=args.namespace_scope, workers=args.workers, ingress_sink=gate,
                            activator=activator, activator_service=None if activator else args.activator_service,
                            queue_service=args.queue_service or None, request_metrics=_request_metrics(args))
        health.app = app
        if elector is not None:
            app.add_task("leader-lease", elector.hold)
        app.add_task("ingress-gate", lambda: gate.open_after_first_pass(app))
        app.add_task("gc-freeze", lambda: freeze_caches_once_synced(app))
        if not args.no_webhook:
            cert_dir = args.webhook_cert_dir or Path(tempfile.mkdtemp(prefix="knserve-webhook-"))
            host, port = args.webhook_address
            pair = webhook_certificate(cert_dir, host)
            webhook = WebhookServer(app.config.snapshot, host=host, port=port, client=client,
                                    ssl_context=server_ssl_context(str(pair.cert), str(pair.key)))
            await webhook.start()
            await register_webhooks(client, ca_pem=(cert_dir / "ca.crt").read_bytes(), url=args.webhook_url)
        log.info("knserve controller talking to %s; xDS on %s:%d", getattr(client, "host", "?"), xds_host, xds.port)
        await app.run()
    finally:
        if webhook is not None:
            await webhook.stop()
        await xds.stop(grace=1.0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging(args.log_format, args.log_level)
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    except ApiError as error:
        print(f"knserve controller: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
