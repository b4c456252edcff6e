"""``knserve dashboard``: the web dashboard on ``--port`` (8070), edits off unless ``--edits``.

Settings: ``--ingress`` where Knative Services answer (default ``$KNSERVE_INGRESS``, else the
ingress Service in ``knative-serving``), ``--metrics`` the autoscaler's request metrics API (an
``http://`` URL, default the ``autoscaler`` Service's metrics port, or
``endpoints:NAMESPACE/SERVICE:PORT_NAME`` for a pod on the host's network), ``--queue-metrics``
the call queue's metrics port in the same forms (queued calls), ``--namespace`` the list opens on, ``--kubeconfig`` (default ``$KUBECONFIG``, else the pod's service account).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import aiohttp
from aiohttp import web

from dashboard.app import Dashboard, DashboardSettings, make_app, missing_assets
from dashboard.invoke import Ingress
from dashboard.metrics import HttpMetrics, parse_locator
from dashboard.queue import HttpQueue
from knserve.cli import cancel_on_signals
from knserve.clock import SystemClock
from kube.client import connected

DEFAULT_INGRESS = "http://knserve-ingress.knative-serving.svc.cluster.local:80"
DEFAULT_METRICS = "http://autoscaler.knative-serving.svc.cluster.local:9090"
DEFAULT_QUEUE_METRICS = "http://knserve-queue.knative-serving.svc.cluster.local:9090"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knserve dashboard", description="A web dashboard of Knative Services.")
    parser.add_argument("--port", type=int, default=8070)
    parser.add_argument("--address", default="0.0.0.0")
    parser.add_argument("--ingress", default=os.environ.get("KNSERVE_INGRESS", DEFAULT_INGRESS))
    parser.add_argument("--metrics", default=DEFAULT_METRICS)
    parser.add_argument("--queue-metrics", default=DEFAULT_QUEUE_METRICS,
                        help="the call queue's metrics port (queued calls per Service), in --metrics' forms")
    parser.add_argument("--namespace", default="default", help="the namespace the list opens on")
    parser.add_argument("--edits", action="store_true", help="allow changing traffic, rollbacks and invoking")
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--log-format", default="text")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    cancel_on_signals()
    logger = logging.getLogger("knserve.dashboard")
    missing = missing_assets()
    if missing:
        print(f"knserve dashboard: the page libraries {', '.join(missing)} are missing from dashboard/static/vendor; "
              "run `make up` (or `python -m dashboard.assets`) first.", file=sys.stderr)
        return 1
    async with connected(args.kubeconfig, field_manager="knserve-dashboard", program="knserve dashboard") as client:
        if client is None:
            return 1
        try:
            locator = parse_locator(args.metrics, client)
            queue_locator = parse_locator(args.queue_metrics, client)
        except ValueError as error:
            print(f"knserve dashboard: {error}", file=sys.stderr)
            return 2
        clock = SystemClock()
        async with aiohttp.ClientSession(auto_decompress=True) as session:
            dashboard = Dashboard(client, HttpMetrics(locator, session, clock), Ingress(args.ingress, session, clock),
                                  clock, DashboardSettings(edits=args.edits, default_namespace=args.namespace),
                                  queue=HttpQueue(queue_locator, session, clock))
            runner = web.AppRunner(make_app(dashboard), access_log=None, shutdown_timeout=2)
            await runner.setup()
            try:
                await web.TCPSite(runner, args.address, args.port).start()
                logger.info("dashboard on http://%s:%d/ (edits %s; ingress %s; metrics %s)", args.address, args.port,
                            "on" if args.edits else "off", args.ingress, args.metrics)
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                pass
            finally:
                await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
