"""The pure parts of the node's Service networking: which endpoints a Service port leads to."""

from __future__ import annotations

from kube.endpoints import ready_addresses, ready_endpoints_at
from node.services import cluster_ip, service_ports

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
