"""``knserve activator``: parse settings, build the activator, serve until SIGTERM/SIGINT.

Revisions and their pods come from the API server (``activator.kube_source``) or, with
``--static FILE``, from a file (see ``StaticRevisionSource.from_file``).
On SIGTERM the activator keeps serving until no request has come for ``--drain-seconds``,
then stops accepting, lets requests in flight finish, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from activator.app import DEFAULT_QUEUE_DEPTH, Activator
from activator.reporter import default_token_path
from activator.revisions import RevisionSource, StaticRevisionSource
from knserve.cli import cancel_on_signals
from knserve.networking import AUTOSCALER_PORT, AUTOSCALER_SERVICE_NAME, QUEUE_HTTP_PORT, SYSTEM_NAMESPACE
from knserve.tokenfile import TokenFile

DEFAULT_AUTOSCALER_URL = f"http://{AUTOSCALER_SERVICE_NAME}.{SYSTEM_NAMESPACE}.svc.cluster.local:{AUTOSCALER_PORT}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="knserve activator", description="Buffers requests for revisions without (enough) ready pods."
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=QUEUE_HTTP_PORT, help="data port (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=9090, help="Prometheus port (default: %(default)s)")
    parser.add_argument(
        "--autoscaler-url",
        default=os.environ.get("AUTOSCALER_URL", DEFAULT_AUTOSCALER_URL),
        help="where stats go (default: $AUTOSCALER_URL or %(default)s)",
    )
    parser.add_argument("--stats-token-file", type=Path, default=None,
                        help="the token sent with stats (default: the pod's service-account token)")
    parser.add_argument("--ingress-token-file", type=Path, default=None,
                        help="serve only requests carrying the token in this file (K-Network-Ingress-Token, added "
                        "by the ingress; config/ mounts the Secret knserve-ingress-token; default: no check)")
    parser.add_argument("--queue-depth", type=int, default=DEFAULT_QUEUE_DEPTH, help="requests a revision may queue")
    parser.add_argument(
        "--drain-seconds", type=float, default=10.0,
        help="on SIGTERM, the listeners close once no request has come for this many seconds "
        "(default: %(default)s)",
    )
    parser.add_argument("--pod-name", default=os.environ.get("POD_NAME", socket.gethostname()))
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    parser.add_argument("--namespace", help="only this namespace's revisions (default: all namespaces)")
    parser.add_argument("--static", metavar="FILE", help="serve the revisions listed in FILE instead of the cluster's")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


@contextlib.asynccontextmanager
async def kube_source(kubeconfig: str | None, namespace: str | None) -> AsyncIterator[RevisionSource | None]:
    """Revisions and pods from the API server; None (after saying why) when it cannot connect."""
    from activator.kube_source import KubeRevisionSource
    from kube.client import connected

    async with connected(kubeconfig, field_manager="knserve-activator", program="knserve activator") as client:
        yield None if client is None else KubeRevisionSource(client, namespace=namespace)


async def serve(args: argparse.Namespace, source: RevisionSource | None) -> int:
    cancel_on_signals()
    async with contextlib.AsyncExitStack() as resources:
        if source is None:
            source = await resources.enter_async_context(kube_source(args.kubeconfig, args.namespace))
            if source is None:
                return 2
        activator = Activator(
            source=source,
            autoscaler_url=args.autoscaler_url,
            pod_name=args.pod_name,
            queue_depth=args.queue_depth,
            quiet_seconds=args.drain_seconds,
            stats_token=TokenFile(args.stats_token_file or default_token_path()),
            ingress_token=TokenFile(args.ingress_token_file) if args.ingress_token_file else None,
        )
        try:
            await activator.run(host=args.host, port=args.port, metrics_port=args.metrics_port)
        except asyncio.CancelledError:
            logging.getLogger("activator").info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    source: RevisionSource | None = None
    if args.static:
        try:
            source = StaticRevisionSource.from_file(args.static)
        except (OSError, ValueError) as error:
            print(f"knserve activator: cannot read {args.static}: {error}", file=sys.stderr)
            return 2
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(serve(args, source))


if __name__ == "__main__":
    sys.exit(main())
