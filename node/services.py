"""Service networking on the local node: cluster IPs that answer, and the names cluster DNS gives.

On a cluster, kube-proxy makes each Service's cluster IP reach the Service's ready endpoints
and cluster DNS answers ``<service>.<namespace>.svc.cluster.local``. The local node does both
itself. ``ServiceProxy`` keeps the Services and EndpointSlices of the cluster (an informer
each, over the agent's ``KubeClient``) and, for each Service with a cluster IP:

* puts the IP on the node's bridge as a /32, so pods reach it through their gateway;
* listens on each TCP port of the Service at that IP, the socket bound to the bridge
  (``SO_BINDTODEVICE``): local clusters sharing a machine hand out the same Service IPs, each
  on its own bridge;
* forwards every connection to a ready endpoint of that port (picked at random) from the
  Service's EndpointSlices, or closes it when there is none; the forwarded connection comes
  from the Service's IP (as kube-proxy's never come from the node), so a pod cannot pass for
  the node by going through a Service. The ``kubernetes`` Service in
  ``default`` leads to the API server (the local control plane publishes no endpoints for it).

``record`` tells cluster DNS (``node.dns``) what a Service name stands for: its
cluster IP, the ready addresses of a headless Service, or an ExternalName's target. UDP ports
are not forwarded. Requests from ``hostNetwork`` pods to cluster IPs are not either (they do
not arrive on the bridge).

Side effects: addresses on the bridge (``ip``), listening sockets, forwarded connections,
list and watch requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import socket

from kube.cache import by_label
from kube.client import KubeClient
from kube.endpoints import ready_addresses, ready_endpoints_at
from kube.informer import Change, Informer
from kube.objects import JSON, name_of, namespace_of
from kube.resources import ENDPOINT_SLICES, KUBE_SERVICES
from node.api import ServerInfo
from node.dns import ServiceRecord
from node.network import run_ip

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
BY_SERVICE = "service"  # index of EndpointSlices by "<namespace>/<their Service's name>"
WATCH_TIMEOUT_SECONDS = 300
RESYNC_SECONDS = 300.0
CONNECT_TIMEOUT_SECONDS = 5.0
COPY_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class ServicePort:
    name: str
    port: int


def service_ports(service: JSON) -> list[ServicePort]:
    """The TCP ports of a Service."""
    return [ServicePort(str(p.get("name") or ""), int(p["port"])) for p in (service.get("spec") or {}).get("ports") or []
            if (p.get("protocol") or "TCP") == "TCP" and p.get("port")]


def cluster_ip(service: JSON) -> str | None:
    """The Service's cluster IP, or None (headless, ExternalName, not yet allocated)."""
    spec = service.get("spec") or {}
    address = spec.get("clusterIP")
    if spec.get("type") == "ExternalName" or not address or address == "None":
        return None
    return str(address)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(COPY_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class ServiceProxy:
    def __init__(self, client: KubeClient, *, bridge: str, api_server: ServerInfo) -> None:
        self.bridge = bridge
        self.api_server = api_server
        self.services = Informer(client, KUBE_SERVICES, watch_timeout_seconds=WATCH_TIMEOUT_SECONDS)
        self.slices = Informer(client, ENDPOINT_SLICES, indexers={BY_SERVICE: by_label(SERVICE_NAME_LABEL)},
                               watch_timeout_seconds=WATCH_TIMEOUT_SECONDS)
        self._listeners: dict[tuple[str, int], asyncio.Server] = {}  # (ip, port) -> server
        self._addresses: set[str] = set()
        self._changed = asyncio.Event()
        self.services.add_handler(self._on_change)
        self.slices.add_handler(self._on_change)

    def _on_change(self, change: Change) -> None:
        self._changed.set()

    # --- what cluster DNS asks -------------------------------------------------------------
    def record(self, namespace: str, name: str) -> ServiceRecord | None:
        service = self.services.store.get(namespace, name)
        if service is None:
            return None
        spec = service.get("spec") or {}
        external = spec.get("externalName") if spec.get("type") == "ExternalName" else None
        return ServiceRecord(cluster_ip=cluster_ip(service), external_name=external,
                             endpoint_ips=ready_addresses(self._slices_of(namespace, name)))

    def _slices_of(self, namespace: str, name: str) -> list[JSON]:
        return self.slices.store.by_index(BY_SERVICE, f"{namespace}/{name}")

    def endpoints(self, namespace: str, name: str, port: ServicePort) -> list[tuple[str, int]]:
        if (namespace, name) == ("default", "kubernetes"):
            return [(self.api_server.host, self.api_server.port)]
        return list(ready_endpoints_at(self._slices_of(namespace, name), port.name))

    # --- running ---------------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.services.run(), name="services")
            group.create_task(self.slices.run(), name="endpoint slices")
            group.create_task(self._sync_loop(), name="service addresses")

    async def close(self) -> None:
        for server in self._listeners.values():
            server.close()
        self._listeners.clear()
        for address in sorted(self._addresses):
            await run_ip("addr", "del", f"{address}/32", "dev", self.bridge)
        self._addresses.clear()

    async def _sync_loop(self) -> None:
        """Sync on every change, and at least every ``RESYNC_SECONDS`` so that an address or a
        listener that could not be made is tried again."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), RESYNC_SECONDS)
            self._changed.clear()
            await self.sync()

    async def sync(self) -> None:
        """Make the addresses and listeners match the Services."""
        wanted: dict[tuple[str, int], tuple[str, str, ServicePort]] = {}
        for service in self.services.store.list():
            address = cluster_ip(service)
            if address is None:
                continue
            for port in service_ports(service):
                wanted[(address, port.port)] = (namespace_of(service), name_of(service), port)
        addresses = {address for address, _ in wanted}
        for address in sorted(addresses - self._addresses):
            code, output = await run_ip("addr", "replace", f"{address}/32", "dev", self.bridge)
            if code != 0:
                log.warning("could not put Service IP %s on %s: %s", address, self.bridge, output)
                continue
            self._addresses.add(address)
        for listen in sorted(set(self._listeners) - set(wanted)):
            self._listeners.pop(listen).close()
        for listen in sorted(set(wanted) - set(self._listeners)):
            if listen[0] not in self._addresses:
                continue
            namespace, name, port = wanted[listen]
            try:
                self._listeners[listen] = await self._listen(listen, namespace, name, port)
            except OSError as error:
                log.warning("Service %s/%s: cannot listen on %s:%d: %s", namespace, name, *listen, error)
        for address in sorted(self._addresses - addresses):
            await run_ip("addr", "del", f"{address}/32", "dev", self.bridge)
            self._addresses.discard(address)

    async def _listen(self, listen: tuple[str, int], namespace: str, name: str, port: ServicePort) -> asyncio.Server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.bridge.encode())
            sock.bind(listen)
            sock.listen(512)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._forward(namespace, name, port, reader, writer, source=listen[0])

        return await asyncio.start_server(forward, sock=sock)

    async def _forward(self, namespace: str, name: str, port: ServicePort,
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, source: str = "") -> None:
        targets = self.endpoints(namespace, name, port)
        try:
            if not targets:
                log.debug("Service %s/%s port %d: no ready endpoint", namespace, name, port.port)
                return
            host, number = random.choice(targets)
            try:
                # From the Service's IP, not the node's: a pod must not pass for the node (the
                # kubelet) by going through a Service (the queue-proxy's drain port trusts the node).
                local = (source, 0) if source and not host.startswith("127.") else None
                upstream_reader, upstream_writer = await asyncio.wait_for(
                    asyncio.open_connection(host, number, local_addr=local), CONNECT_TIMEOUT_SECONDS)
            except (OSError, asyncio.TimeoutError) as error:
                log.debug("Service %s/%s: connecting to %s:%d failed: %s", namespace, name, host, number, error)
                return
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                upstream_writer.close()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
