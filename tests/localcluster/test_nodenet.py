"""A containerd node's addresses and the commands that make and remove its network."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

from localcluster.nodenet import NodeAddresses, NodeNetwork, node_blocks

BLOCK = ipaddress.IPv4Network("10.244.130.0/24")


def test_addresses_of_a_block() -> None:
    a = NodeAddresses(BLOCK)
    assert (a.gateway, a.range_end, a.host_address, a.node_address) == (
        "10.244.130.1", "10.244.130.251", "10.244.130.253", "10.244.130.254")
    assert (a.namespace, a.host_veth, str(a.namespace_path)) == ("knsnode-130", "knsnh130", "/run/netns/knsnode-130")
    bridge = a.cni_config(Path("/state/ipam"))["plugins"][0]  # type: ignore[index]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.130.0/24", "rangeEnd": "10.244.130.251",
                                          "gateway": "10.244.130.1"}]]
    assert bridge["ipam"]["dataDir"] == "/state/ipam"
    assert bridge["ipMasq"] is False


def test_node_blocks_leave_the_bottom_half_to_process_nodes() -> None:
    blocks = node_blocks()
    assert blocks[0] == ipaddress.IPv4Network("10.244.128.0/24")
    assert all(int(b.network_address.packed[2]) >= 128 for b in blocks)
    assert ipaddress.IPv4Network("10.244.255.0/24") not in blocks


class FakeIp:
    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> tuple[int, str]:
        self.commands.append(list(command))
        return (1, "Device does not exist") if command[:3] == ["ip", "link", "show"] else (0, "")


def test_setup_blocks_the_ranges_inside_and_routes_only_the_block_from_the_host() -> None:
    ip = FakeIp()
    network = NodeNetwork(NodeAddresses(BLOCK), blocked=("10.96.0.0/16", "10.244.0.0/16"), service_range="10.96.0.0/16",
                          run=ip)
    network.setup()
    ns = ["ip", "-n", "knsnode-130"]
    assert [*ns, "route", "replace", "unreachable", "10.96.0.0/16"] in ip.commands
    assert [*ns, "route", "replace", "unreachable", "10.244.0.0/16"] in ip.commands
    host_routes = [c for c in ip.commands if c[:3] == ["ip", "route", "replace"]]
    assert host_routes == [["ip", "route", "replace", "10.244.130.0/24", "via", "10.244.130.254", "dev", "knsnh130"]]
    assert not any("default" in c for c in ip.commands)
    forward = ["nsenter", "--net=/run/netns/knsnode-130", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]
    assert forward in ip.commands


def test_teardown_removes_route_veth_and_namespace() -> None:
    ip = FakeIp()
    NodeNetwork(NodeAddresses(BLOCK), blocked=(), service_range="10.96.0.0/16", run=ip).teardown()
    assert ["ip", "route", "del", "10.244.130.0/24", "via", "10.244.130.254"] in ip.commands
    assert ["ip", "link", "del", "knsnh130"] in ip.commands


def test_join_routes_other_blocks_through_the_host_and_forwards_only_on_the_veth() -> None:
    ip = FakeIp()
    first = NodeAddresses(ipaddress.IPv4Network("10.244.128.0/24"))
    second = NodeAddresses(BLOCK)
    NodeNetwork(second, blocked=(), service_range="10.96.0.0/16", run=ip).join(
        [first, second], shared_host_address=first.host_address)
    ns = ["ip", "-n", "knsnode-130"]
    assert ip.commands == [
        [*ns, "route", "replace", "10.244.128.0/24", "via", "10.244.130.253", "dev", "eth0"],
        [*ns, "route", "replace", "10.244.128.253/32", "via", "10.244.130.253", "dev", "eth0"],
        ["sysctl", "-q", "-w", "net.ipv4.conf.knsnh130.forwarding=1"],
    ]


def test_a_single_node_joins_nothing_and_the_host_forwards_nothing() -> None:
    ip = FakeIp()
    only = NodeAddresses(BLOCK)
    NodeNetwork(only, blocked=(), service_range="10.96.0.0/16", run=ip).join([only], shared_host_address=only.host_address)
    assert ip.commands == []
