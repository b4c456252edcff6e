"""``knserve autoscaler``: parse settings, build the service, serve until SIGTERM/SIGINT.

PodAutoscalers, pods and ``/scale`` are the API server's (``autoscaler.kube_cluster``) or,
with ``--static FILE``, an in-memory cluster loaded from FILE (replica writes are only
logged). ``--config FILE`` reads ``config-autoscaler`` keys (a ConfigMap manifest or a plain
mapping).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import yaml
from aiohttp import web

from autoscaler.kube import Cluster, FakeCluster, PodInfo
from autoscaler.scraper import HttpStatsFetcher
from autoscaler.server import metrics_app, stats_app
from autoscaler.service import AutoscalerService
from knserve.cli import cancel_on_signals
from knserve.networking import AUTOSCALER_PORT, SERVER_IDLE_TIMEOUT_SECONDS
from serving.config.autoscaler import AutoscalerConfig
from serving.config.parsers import ConfigError

if TYPE_CHECKING:
    from autoscaler.auth import StatsAuth

log = logging.getLogger("autoscaler")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knserve autoscaler", description="The KPA autoscaler.")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=AUTOSCALER_PORT, help="stats port (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=9090, help="Prometheus port (default: %(default)s)")
    parser.add_argument("--config", metavar="FILE", help="config-autoscaler keys (ConfigMap manifest or mapping)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    parser.add_argument("--namespace", help="only this namespace's revisions (default: all namespaces)")
    parser.add_argument("--stats-auth", choices=("tokenreview", "none"), default="tokenreview",
                        help="POST /stats needs the activator's service-account token, checked by TokenReview "
                        "(default), or nothing ('none'; always so with --static)")
    parser.add_argument("--static", metavar="FILE", help="autoscale the PodAutoscalers and pods listed in FILE")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def _load(path: str) -> Any:
    return yaml.safe_load(Path(path).read_text())


def load_config(path: str | None) -> AutoscalerConfig:
    if path is None:
        return AutoscalerConfig()
    document = _load(path) or {}
    data = document.get("data", document) if isinstance(document, Mapping) else {}
    return AutoscalerConfig.from_data({str(k): str(v) for k, v in (data or {}).items()})


def load_static(path: str) -> FakeCluster:
    """``podAutoscalers`` (API objects), ``pods`` and ``replicas`` lists, as YAML or JSON."""
    document = _load(path) or {}
    cluster = FakeCluster()
    for obj in document.get("podAutoscalers") or ():
        cluster.apply(obj)
    by_revision: dict[tuple[str, str], list[PodInfo]] = {}
    for pod in document.get("pods") or ():
        key = (str(pod.get("namespace", "default")), str(pod["revision"]))
        by_revision.setdefault(key, []).append(
            PodInfo(str(pod["name"]), str(pod.get("ip", "")), ready=bool(pod.get("ready", True)))
        )
    for (namespace, revision), pods in by_revision.items():
        cluster.set_pods(namespace, revision, pods)
    for entry in document.get("replicas") or ():
        cluster.replicas[(str(entry.get("namespace", "default")), str(entry["deployment"]))] = int(entry["replicas"])
    return cluster


@contextlib.asynccontextmanager
async def kube_cluster(kubeconfig: str | None, namespace: str | None) -> AsyncIterator[Cluster | None]:
    """PodAutoscalers, pods and /scale on the API server; None (after saying why) without one."""
    from autoscaler.kube_cluster import KubeCluster
    from kube.client import connected

    async with connected(kubeconfig, field_manager="knserve-autoscaler", program="knserve autoscaler") as client:
        yield None if client is None else KubeCluster(client, namespace=namespace)


def stats_auth(cluster: Cluster, args: argparse.Namespace) -> StatsAuth | None:
    """Who may push stats: the activator's account, when the stats come from a real cluster."""
    from autoscaler.auth import KubeTokenReviewer, StatsAuth
    from autoscaler.kube_cluster import KubeCluster

    if args.stats_auth == "none" or not isinstance(cluster, KubeCluster):
        return None
    return StatsAuth(KubeTokenReviewer(cluster.client))


async def serve(cluster: Cluster | None, config: AutoscalerConfig, args: argparse.Namespace) -> int:
    cancel_on_signals()
    async with contextlib.AsyncExitStack() as resources:
        if cluster is None:
            cluster = await resources.enter_async_context(kube_cluster(args.kubeconfig, args.namespace))
            if cluster is None:
                return 2
        session = await resources.enter_async_context(aiohttp.ClientSession())
        service = AutoscalerService(
            watch=cluster, pods=cluster, scale=cluster, status=cluster, fetcher=HttpStatsFetcher(session), config=config
        )
        runners = []
        try:
            pushes = stats_app(service, stats_auth(cluster, args))
            for app, port in ((pushes, args.port), (metrics_app(service), args.metrics_port)):
                runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                       keepalive_timeout=SERVER_IDLE_TIMEOUT_SECONDS)
                await runner.setup()
                await web.TCPSite(runner, args.host, port, reuse_address=True).start()
                runners.append(runner)
                log.info("listening on %s:%d", args.host, port)
            watching = cluster.watch_config(service.update_config)
            config_watch = asyncio.get_running_loop().create_task(watching, name="autoscaler-config")
            try:
                await service.run()
            finally:
                config_watch.cancel()
                await asyncio.gather(config_watch, return_exceptions=True)
        except asyncio.CancelledError:
            log.info("stopped")
        finally:
            for runner in runners:
                await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except (OSError, yaml.YAMLError, ConfigError) as error:
        print(f"knserve autoscaler: cannot use --config {args.config}: {error}", file=sys.stderr)
        return 2
    cluster: Cluster | None = None
    if args.static:
        try:
            cluster = load_static(args.static)
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
            print(f"knserve autoscaler: cannot read {args.static}: {error!r}", file=sys.stderr)
            return 2
    return asyncio.run(serve(cluster, config, args))


if __name__ == "__main__":
    sys.exit(main())
