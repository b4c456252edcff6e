"""The node's Service networking without sockets: which endpoints a Service port leads to, and
what cluster DNS hears of a Service, from the Services and EndpointSlices its informers keep."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from kube.endpoints import ready_addresses, ready_endpoints_at
from kube.fake import FakeKubeClient
from kube.resources import ENDPOINT_SLICES, KUBE_SERVICES
from node.api import ServerInfo
from node.dns import ServiceRecord
from node.services import ServicePort, ServiceProxy, cluster_ip, service_ports
from tests.support.eventually import eventually_async

SLICES = [
    {"ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
     "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}},
                   {"addresses": ["10.244.1.6"], "conditions": {"ready": False}},
                   {"addresses": ["10.244.1.7"]}]},  # ready unset counts as ready
    {"ports": [{"name": "http", "port": 8081}], "endpoints": [{"addresses": ["10.244.1.8"]}]},
]


def test_a_port_leads_to_the_ready_endpoints_at_their_own_port_numbers():
    assert ready_endpoints_at(SLICES, "http") == (("10.244.1.5", 8080), ("10.244.1.7", 8080), ("10.244.1.8", 8081))
    assert ready_endpoints_at(SLICES, "metrics") == (("10.244.1.5", 9090), ("10.244.1.7", 9090))
    assert ready_endpoints_at(SLICES, "grpc") == ()


def test_headless_names_list_ready_addresses_once():
    assert ready_addresses(SLICES) == ("10.244.1.5", "10.244.1.7", "10.244.1.8")


def test_only_services_with_a_cluster_ip_are_proxied_and_only_tcp_ports():
    assert cluster_ip({"spec": {"clusterIP": "10.96.0.12", "type": "ClusterIP"}}) == "10.96.0.12"
    assert cluster_ip({"spec": {"clusterIP": "None"}}) is None
    assert cluster_ip({"spec": {"type": "ExternalName", "externalName": "x.example.com"}}) is None
    ports = service_ports({"spec": {"ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53,
                                                                              "protocol": "UDP"}]}})
    assert [(p.name, p.port) for p in ports] == [("http", 80)]


def kube_service(namespace: str, name: str, **spec: object) -> dict:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": dict(spec)}


def endpoint_slice(namespace: str, name: str, service: str, port: int, *addresses: str) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"kubernetes.io/service-name": service}},
            "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}} for address in addresses]}


API_SERVER = ServerInfo(url="https://127.0.0.1:6443", ca_pem=None, host="127.0.0.1", port=6443)


@contextlib.asynccontextmanager
async def watching(proxy: ServiceProxy) -> AsyncIterator[None]:
    """The proxy's informers running (not its addresses and listeners, which need a bridge)."""
    tasks = [asyncio.create_task(informer.run()) for informer in (proxy.services, proxy.slices)]
    try:
        await proxy.services.wait_synced()
        await proxy.slices.wait_synced()
        yield
    finally:
        for task in tasks:
            task.cancel()


async def test_cluster_dns_records_follow_services_and_their_slices() -> None:
    fake = FakeKubeClient([
        (KUBE_SERVICES, kube_service("ns", "web", clusterIP="10.96.0.10", ports=[{"name": "http", "port": 80}])),
        (KUBE_SERVICES, kube_service("ns", "db", clusterIP="None")),
        (KUBE_SERVICES, kube_service("ns", "mail", type="ExternalName", externalName="mail.example.com")),
        (ENDPOINT_SLICES, endpoint_slice("ns", "web-1", "web", 8080, "10.244.0.5")),
        (ENDPOINT_SLICES, endpoint_slice("ns", "db-1", "db", 5432, "10.244.0.7")),
        (ENDPOINT_SLICES, endpoint_slice("other", "db-1", "db", 5432, "10.244.0.9")),  # same name, other namespace
    ])
    proxy = ServiceProxy(fake, bridge="knserve0", api_server=API_SERVER)
    async with watching(proxy):
        assert proxy.record("ns", "web") == ServiceRecord(cluster_ip="10.96.0.10", external_name=None,
                                                          endpoint_ips=("10.244.0.5",))
        assert proxy.record("ns", "db") == ServiceRecord(cluster_ip=None, external_name=None,
                                                         endpoint_ips=("10.244.0.7",))
        assert proxy.record("ns", "mail") == ServiceRecord(cluster_ip=None, external_name="mail.example.com",
                                                           endpoint_ips=())
        assert proxy.record("ns", "missing") is None
        assert proxy.endpoints("ns", "web", ServicePort("http", 80)) == [("10.244.0.5", 8080)]

        await fake.create(ENDPOINT_SLICES, endpoint_slice("ns", "web-2", "web", 8080, "10.244.0.6"))
        await fake.delete(KUBE_SERVICES, "ns", "mail")
        await eventually_async(lambda: proxy.record("ns", "mail") is None, what="the deleted Service forgotten")
        await eventually_async(lambda: len(proxy.endpoints("ns", "web", ServicePort("http", 80))) == 2,
                               what="the new slice's endpoint")
        assert proxy.endpoints("ns", "web", ServicePort("http", 80)) == [("10.244.0.5", 8080), ("10.244.0.6", 8080)]


async def test_the_kubernetes_service_leads_to_the_api_server() -> None:
    proxy = ServiceProxy(FakeKubeClient(), bridge="knserve0", api_server=API_SERVER)
    assert proxy.endpoints("default", "kubernetes", ServicePort("https", 443)) == [("127.0.0.1", 6443)]
