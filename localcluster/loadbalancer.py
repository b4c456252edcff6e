"""``python -m localcluster.loadbalancer``: the containerd cluster's load balancer, what a cloud's
is to a Service of type LoadBalancer, on a loopback address of the cluster's own.

Each TCP port of every LoadBalancer Service listens on ``--address`` (one of 127.0.0.0/8, picked
per cluster from its first node's block, so that clusters side by side do not collide) at the
Service's port, and each connection goes on to a Ready node's InternalIP at the port's
nodePort, where kube-proxy takes it to a pod (the next node if one refuses). The Service's
``status.loadBalancer.ingress`` then names the address (``ipMode: Proxy``), so ``kubectl get
service`` shows it as EXTERNAL-IP and config/README.md's ``INGRESS=$(kubectl get service
knserve-ingress -o jsonpath=...)`` then ``curl http://$INGRESS/`` works as on a cloud.

A port two Services claim stays with the older one (the other gets no address). Only node
addresses inside ``--node-network`` (the cluster's pod range, routed into its own namespaces)
are ever connected to. Services and nodes are listed every second (a local cluster has few).

``plan`` is the pure part; the rest is the asyncio shell.

Side effects: listens on ``--address``; API reads (Services, Nodes) and status writes
(``services/status``) with the admin kubeconfig; connections to node addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import logging
import sys
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from kube.client import KubeClient, connect
from kube.errors import ApiError
from kube.resources import KUBE_SERVICES, NODES

log = logging.getLogger("localcluster.loadbalancer")

HEALTH_PORT = 10254
"""``GET /healthz`` on the balancer's address: 200 once the first pass is done."""
SYNC_SECONDS = 1.0
CONNECT_TIMEOUT = 3.0


@dataclasses.dataclass(frozen=True)
class Listener:
    """One port on the balancer's address: the Service it serves and where its connections go."""

    namespace: str
    service: str
    node_port: int
    targets: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Plan:
    listeners: dict[int, Listener]
    served: tuple[tuple[str, str], ...]
    """(namespace, name) of the Services every TCP port of which has a listener."""
    conflicts: tuple[str, ...]


def _ready_addresses(nodes: Iterable[dict[str, Any]], network: ipaddress.IPv4Network) -> tuple[str, ...]:
    found = []
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        status = node.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        for address in status.get("addresses") or []:
            if ready and address.get("type") == "InternalIP" and ipaddress.ip_address(address["address"]) in network:
                found.append(address["address"])
    return tuple(found)


def plan(services: Iterable[dict[str, Any]], nodes: Iterable[dict[str, Any]],
         network: ipaddress.IPv4Network) -> Plan:
    """The listeners the LoadBalancer Services ask for, oldest Service first on a shared port."""
    targets = _ready_addresses(nodes, network)
    listeners: dict[int, Listener] = {}
    served, conflicts = [], []
    balanced = [s for s in services if (s.get("spec") or {}).get("type") == "LoadBalancer"]
    for service in sorted(balanced, key=lambda s: (s["metadata"].get("creationTimestamp", ""),
                                                   s["metadata"]["namespace"], s["metadata"]["name"])):
        namespace, name = service["metadata"]["namespace"], service["metadata"]["name"]
        ports = [p for p in service["spec"].get("ports") or [] if p.get("protocol", "TCP") == "TCP"]
        claimed = True
        for port in ports:
            number, node_port = int(port["port"]), port.get("nodePort")
            if not node_port:
                claimed = False
            elif number in listeners and (listeners[number].namespace, listeners[number].service) != (namespace, name):
                conflicts.append(f"port {number} of {namespace}/{name} is {listeners[number].namespace}/"
                                 f"{listeners[number].service}'s")
                claimed = False
            else:
                listeners[number] = Listener(namespace, name, int(node_port), targets)
        if ports and claimed:
            served.append((namespace, name))
    return Plan(listeners, tuple(served), tuple(conflicts))


def ingress_status(address: str) -> list[dict[str, str]]:
    return [{"ip": address, "ipMode": "Proxy"}]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class Balancer:
    def __init__(self, address: str, network: ipaddress.IPv4Network) -> None:
        self.address = address
        self.network = network
        self.listeners: dict[int, Listener] = {}
        self.servers: dict[int, asyncio.Server] = {}
        self.synced = False

    async def _forward(self, port: int, client_reader: asyncio.StreamReader,
                       client_writer: asyncio.StreamWriter) -> None:
        listener = self.listeners.get(port)
        if listener is None:
            client_writer.close()
            return
        for target in listener.targets:
            try:
                upstream_reader, upstream_writer = await asyncio.wait_for(
                    asyncio.open_connection(target, listener.node_port), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                continue
            try:
                await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
            finally:
                upstream_writer.close()
                client_writer.close()
            return
        client_writer.close()

    async def apply(self, wanted: dict[int, Listener]) -> None:
        """Listen on the ports ``wanted`` names and no others."""
        self.listeners = wanted
        for port in set(self.servers) - set(wanted):
            self.servers.pop(port).close()
            log.info("stopped listening on %s:%d", self.address, port)
        for port, listener in wanted.items():
            if port in self.servers:
                continue
            try:
                self.servers[port] = await asyncio.start_server(functools.partial(self._forward, port),
                                                                self.address, port)
                log.info("%s:%d -> %s/%s (nodePort %d)", self.address, port, listener.namespace, listener.service,
                         listener.node_port)
            except OSError as error:
                log.warning("cannot listen on %s:%d for %s/%s: %s", self.address, port, listener.namespace,
                            listener.service, error)

    async def sync(self, client: KubeClient) -> None:
        services = (await client.list(KUBE_SERVICES)).items
        wanted = plan(services, (await client.list(NODES)).items, self.network)
        for conflict in wanted.conflicts:
            log.warning("%s", conflict)
        await self.apply(wanted.listeners)
        listening = {(l.namespace, l.service) for port, l in wanted.listeners.items() if port in self.servers}
        by_key = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in services}
        for key in wanted.served:
            if key not in listening:
                continue
            current = ((by_key[key].get("status") or {}).get("loadBalancer") or {}).get("ingress")
            if current != ingress_status(self.address):
                await client.patch(KUBE_SERVICES, key[0], key[1],
                                   {"status": {"loadBalancer": {"ingress": ingress_status(self.address)}}},
                                   subresource="status")
                log.info("%s/%s: external address %s", key[0], key[1], self.address)
        self.synced = True


async def run(address: str, network: ipaddress.IPv4Network, kubeconfig: str) -> None:
    balancer = Balancer(address, network)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(status=200 if balancer.synced else 503, text="ok" if balancer.synced else "starting")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, address, HEALTH_PORT).start()
    client = await connect(kubeconfig, field_manager="knserve-local-loadbalancer")
    try:
        while True:
            try:
                await balancer.sync(client)
            except (ApiError, OSError) as error:
                log.warning("sync failed: %s", error)
            await asyncio.sleep(SYNC_SECONDS)
    finally:
        await client.close()
        await runner.cleanup()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster.loadbalancer")
    parser.add_argument("--address", required=True, help="the loopback address to listen on (127.0.0.0/8)")
    parser.add_argument("--node-network", required=True, help="node addresses outside it are never connected to")
    parser.add_argument("--kubeconfig", required=True)
    args = parser.parse_args(argv)
    if not ipaddress.ip_address(args.address).is_loopback:
        parser.error(f"--address {args.address} is not a loopback address")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.address, ipaddress.IPv4Network(args.node_network), args.kubeconfig))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
