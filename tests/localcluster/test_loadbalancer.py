"""The containerd cluster's load balancer: which ports it serves for which Service (pure), and
its forwarding and status on loopback with a fake API server."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from kube.fake import FakeKubeClient
from kube.resources import KUBE_SERVICES, NODES
from localcluster import loadbalancer
from localcluster.loadbalancer import Balancer, plan
from tests.support.ports import free_port

NETWORK = ipaddress.IPv4Network("10.244.0.0/16")


def service(name: str, *ports: tuple[int, int | None], kind: str = "LoadBalancer", created: str = "2026-01-01T00:00:00Z",
            protocol: str = "TCP", namespace: str = "knative-serving") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
            "spec": {"type": kind, "ports": [{"port": port, "protocol": protocol, **({"nodePort": node_port}
                                                                                   if node_port else {})}
                                             for port, node_port in ports]}}


def node(name: str, address: str, *, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]}}


NODES_SEEN = [node("knserve-node-1", "10.244.129.254"), node("knserve-node-0", "10.244.128.254"),
              node("knserve-node-2", "10.244.130.254", ready=False), node("elsewhere", "192.0.2.7")]


def test_each_port_of_a_load_balancer_service_goes_to_the_ready_nodes_in_the_cluster_at_its_node_port() -> None:
    wanted = plan([service("knserve-ingress", (80, 31080), (443, 31443)), service("webhook", (443, None), kind="ClusterIP")],
                  NODES_SEEN, NETWORK)
    targets = ("10.244.128.254", "10.244.129.254")  # by node name; not the NotReady one, never outside the network
    assert wanted.listeners == {80: loadbalancer.Listener("knative-serving", "knserve-ingress", 31080, targets),
                                443: loadbalancer.Listener("knative-serving", "knserve-ingress", 31443, targets)}
    assert wanted.served == (("knative-serving", "knserve-ingress"),)


def test_a_port_two_services_claim_stays_with_the_older_and_the_other_gets_no_address() -> None:
    wanted = plan([service("newer", (80, 32000), namespace="default", created="2026-02-01T00:00:00Z"),
                   service("older", (80, 31000), created="2026-01-01T00:00:00Z")], NODES_SEEN, NETWORK)
    assert wanted.listeners[80].service == "older"
    assert wanted.served == (("knative-serving", "older"),)
    assert wanted.conflicts == ("port 80 of default/newer is knative-serving/older's",)


def test_a_service_without_node_ports_yet_or_with_udp_only_is_not_served() -> None:
    wanted = plan([service("pending", (80, None)), service("dns", (53, 30053), protocol="UDP")], NODES_SEEN, NETWORK)
    assert wanted.listeners == {}
    assert wanted.served == ()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"echo:" + await reader.read())  # until the client's half close
    await writer.drain()
    writer.close()


async def test_connections_are_forwarded_to_the_first_node_that_takes_them_and_the_service_gets_the_address() -> None:
    backend_port = free_port()
    backend = await asyncio.start_server(_echo, "127.0.0.1", backend_port)
    address = "127.77.0.1"
    port = free_port(address)
    client = FakeKubeClient()
    await client.create(KUBE_SERVICES, service("knserve-ingress", (port, backend_port)))
    # the first "node" refuses (nothing listens at its address), the second is the backend
    await client.create(NODES, node("a-dead", "127.0.0.2"))
    await client.create(NODES, node("b-live", "127.0.0.1"))
    balancer = Balancer(address, ipaddress.IPv4Network("127.0.0.0/8"))
    try:
        await balancer.sync(client)
        reader, writer = await asyncio.open_connection(address, port)
        writer.write(b"hello")
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 5) == b"echo:hello"
        writer.close()
        ingress = client.peek(KUBE_SERVICES, "knative-serving", "knserve-ingress")["status"]["loadBalancer"]["ingress"]
        assert ingress == [{"ip": address, "ipMode": "Proxy"}]

        await client.delete(KUBE_SERVICES, "knative-serving", "knserve-ingress")
        await balancer.sync(client)
        try:
            await asyncio.open_connection(address, port)
            raise AssertionError("the balancer still listens for a deleted Service")
        except ConnectionRefusedError:
            pass
    finally:
        await balancer.apply({})
        backend.close()
