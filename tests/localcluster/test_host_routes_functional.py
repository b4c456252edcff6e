"""Nothing the local cluster dials leaves the machine: with the cluster running, a Service IP
or pod IP that nothing serves is unreachable on the host, not sent along the default route.
(``ip route get`` only asks the kernel; it sends nothing.)"""

from __future__ import annotations

import ipaddress
import subprocess
import time

from localcluster.controlplane import POD_NETWORK, SERVICE_CLUSTER_IP_RANGE


def route_to(address: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "route", "get", address], capture_output=True, text=True, timeout=10)


def last_address(network: str) -> str:
    return str(ipaddress.IPv4Network(network).broadcast_address - 1)


def test_a_service_ip_nobody_serves_is_unreachable(cluster):
    unused = last_address(SERVICE_CLUSTER_IP_RANGE)  # 10.96.255.254: the allocator hands it out last
    route = route_to(unused)
    assert " via " not in route.stdout, route.stdout
    assert route.returncode != 0 and "No route to host" in route.stderr, (route.stdout, route.stderr)


def test_a_pod_ip_nobody_has_is_unreachable_but_the_nodes_own_block_is_on_its_bridge(cluster):
    unused = last_address(POD_NETWORK)  # 10.244.255.254: in the last /24 block a node agent would take
    route = route_to(unused)
    assert " via " not in route.stdout, route.stdout
    assert route.returncode != 0 and "No route to host" in route.stderr, (route.stdout, route.stderr)

    node = cluster.kubectl("get", "node", "knserve-node", "-o",
                           "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}").stdout
    gateway = route_to(node)
    assert gateway.returncode == 0 and " via " not in gateway.stdout, gateway.stdout


def test_a_service_ip_the_node_serves_stays_reachable(cluster, namespace):
    cluster.kubectl("create", "service", "clusterip", "kept", "--tcp=80:8080", "-n", namespace)
    address = cluster.kubectl("get", "service", "kept", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}").stdout
    assert ipaddress.IPv4Address(address) in ipaddress.IPv4Network(SERVICE_CLUSTER_IP_RANGE)
    deadline = time.monotonic() + 30
    while (route := route_to(address)).returncode != 0:
        assert time.monotonic() < deadline, f"the node never put {address} on its bridge: {route.stderr}"
        time.sleep(0.2)
    assert route.stdout.startswith(f"local {address} "), route.stdout
