"""``knserve queue``: parse settings, connect, serve calls until SIGTERM/SIGINT.

Which Services exist (their hosts and async annotations) comes from the API server (an
informer on Knative Services) or, with ``--static FILE``, from a file of
``host: namespace/service [annotation=value ...]`` lines (dispatched with the same Host).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from callqueue.app import QueueProcess
from callqueue.demand import DemandReporter
from callqueue.directory import Directory, MapDirectory, StaticDirectory, Target, follow
from callqueue.server import DEFAULT_BODY_LIMIT
from callqueue.store import JetStreamStore
from knserve.callpolicy import parse_policy
from knserve.networking import SYSTEM_NAMESPACE
from knserve.tokenfile import TokenFile

DEFAULT_NATS_URL = f"nats://nats.{SYSTEM_NAMESPACE}.svc.cluster.local:4222"
DEFAULT_INGRESS_URL = f"http://knserve-internal.{SYSTEM_NAMESPACE}.svc.cluster.local"
DEFAULT_AUTOSCALER_URL = f"http://autoscaler.{SYSTEM_NAMESPACE}.svc.cluster.local:8080"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knserve queue", description="Durable asynchronous calls over NATS JetStream.")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=8080, help="accept and status port (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=9090, help="/metrics and /healthz (default: %(default)s)")
    parser.add_argument("--nats-url", action="append", default=[],
                        help=f"a NATS server (repeatable; default $NATS_URL or {DEFAULT_NATS_URL})")
    parser.add_argument("--stream-replicas", type=int, default=int(os.environ.get("NATS_REPLICAS", "1")),
                        help="JetStream replicas of the stream and buckets: 1, or 3 on a three-server cluster")
    parser.add_argument("--ingress-url", default=os.environ.get("INGRESS_URL", DEFAULT_INGRESS_URL),
                        help="where calls are dispatched (default: %(default)s)")
    parser.add_argument("--ingress-token-file", type=Path, default=None,
                        help="the ingress token (Secret knserve-ingress-token), sent as K-Call-Dispatch on dispatches "
                        "so Services with knserve.dev/async: always take them; config/ mounts it (default: none sent)")
    parser.add_argument("--body-limit", type=int, default=DEFAULT_BODY_LIMIT,
                        help="largest request body accepted, in bytes (default: %(default)s)")
    parser.add_argument("--autoscaler-url", default=os.environ.get("AUTOSCALER_URL", DEFAULT_AUTOSCALER_URL),
                        help="where the backlog is pushed as demand ('' for nowhere; default %(default)s)")
    parser.add_argument("--pod-name", default=os.environ.get("POD_NAME", socket.gethostname()))
    parser.add_argument("--no-dispatch", dest="dispatch", action="store_false",
                        help="accept and answer status only; other replicas dispatch")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    parser.add_argument("--static", metavar="FILE", help="serve the hosts listed in FILE instead of the cluster's")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    parser.add_argument("--log-format", default="text", choices=("text", "json"))
    return parser.parse_args(argv)


def static_directory(path: str) -> StaticDirectory:
    targets = {}
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            host, _, rest = (part.strip() for part in line.partition(":"))
            key, *settings = rest.split()
            namespace, _, service = key.partition("/")
            annotations = dict(setting.partition("=")[::2] for setting in settings)
            if not (host and namespace and service) or not all(annotations.values()):
                raise ValueError(f"{path}:{number}: expected 'host: namespace/service [annotation=value ...]', "
                                 f"got {line!r}")
            targets[host] = Target(namespace, service, host, parse_policy(annotations))
    return StaticDirectory(targets)


async def serve(args: argparse.Namespace, directory: Directory | None) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    started: list[QueueProcess] = []

    def on_signal() -> None:  # the first asks for a graceful stop, a second cancels
        if started and not started[0].stopping:
            started[0].stop()
        else:
            task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    servers = args.nats_url or os.environ.get("NATS_URL", DEFAULT_NATS_URL).split(",")
    store = JetStreamStore(servers, replicas=args.stream_replicas)
    async with contextlib.AsyncExitStack() as resources:
        informers = None
        if directory is None:
            from kube.client import connected
            from kube.informer import InformerFactory
            from kube.resources import SERVICES

            client = await resources.enter_async_context(
                connected(args.kubeconfig, field_manager="knserve-queue", program="knserve queue"))
            if client is None:
                return 2
            mapped = MapDirectory()
            informers = InformerFactory(client)
            informers.informer(SERVICES).add_handler(follow(mapped))
            directory = mapped
        demand = DemandReporter(store=store, directory=directory, autoscaler_url=args.autoscaler_url,
                                pod_name=args.pod_name) if args.autoscaler_url and not args.static else None
        process = QueueProcess(store=store, directory=directory, ingress_url=args.ingress_url,
                               body_limit=args.body_limit, dispatch=args.dispatch, demand=demand,
                               dispatch_token=TokenFile(args.ingress_token_file) if args.ingress_token_file else None)
        started.append(process)
        try:
            async with asyncio.TaskGroup() as group:
                informing = None
                if informers is not None:
                    informing = group.create_task(informers.run(), name="informers")
                    await informers.wait_synced()
                await process.run(host=args.host, port=args.port, metrics_port=args.metrics_port)
                if informing is not None:
                    informing.cancel()
        except asyncio.CancelledError:
            logging.getLogger("callqueue").info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    fmt = ('{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","message":"%(message)s"}'
           if args.log_format == "json" else "%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.basicConfig(level=args.log_level.upper(), format=fmt)
    directory: Directory | None = None
    if args.static:
        try:
            directory = static_directory(args.static)
        except (OSError, ValueError) as error:
            print(f"knserve queue: cannot read {args.static}: {error}", file=sys.stderr)
            return 2
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(serve(args, directory))


if __name__ == "__main__":
    sys.exit(main())
