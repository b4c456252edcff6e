"""Pod addresses and remapped ports: stable, unique, never the host's."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from serving.local.node.addresses import AllocationStore, Allocations, block_addresses
from serving.local.node.network import candidate_blocks, claim_block
from serving.local.node.pod import declared_ports

BLOCK = ipaddress.IPv4Network("198.19.4.0/24")


def test_addresses_skip_network_broadcast_and_host() -> None:
    loopback = list(block_addresses(ipaddress.IPv4Network("127.0.0.0/24")))
    assert "127.0.0.1" not in loopback
    assert loopback[0] == "127.0.0.2"
    assert list(block_addresses(BLOCK))[0] == "198.19.4.1"
    assert list(block_addresses(BLOCK))[-1] == "198.19.4.254"


def test_each_pod_gets_its_own_address_and_keeps_it() -> None:
    table = Allocations(block=BLOCK)
    first, second = table.address_for("a"), table.address_for("b")
    assert first != second
    assert table.address_for("a") == first
    table.release("a")
    assert table.address_for("c") == first  # freed addresses are reused


def test_ports_are_unique_across_pods_and_skip_busy_ones() -> None:
    table = Allocations(block=BLOCK, port_range=(30000, 30009))
    table.address_for("a")
    table.address_for("b")
    busy = {30000, 30001, 30002, 30003, 30004, 30005}
    port_a = table.port_for("a", 8080, lambda port: port not in busy)
    port_b = table.port_for("b", 8080, lambda port: port not in busy)
    assert port_a != port_b
    assert not {port_a, port_b} & busy
    assert table.port_for("a", 8080, lambda port: False) == port_a  # kept once given


def test_store_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "allocations.json"
    store = AllocationStore(path, block=BLOCK)
    address = store.address_for("a")
    port = store.port_for("a", 8080)
    again = AllocationStore(path, block=BLOCK)
    assert again.address_for("a") == address
    assert again.port_for("a", 8080) == port


def test_declared_ports_are_literal_port_values() -> None:
    pod = {"spec": {"containers": [
        {"env": [{"name": "PORT", "value": "8080"}]},
        {"env": [{"name": "PORT", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
        {"env": [{"name": "USER_PORT", "value": "8080"}]},
    ]}}
    assert declared_ports(pod) == [8080]


def test_blocks_are_claimed_once_per_machine(tmp_path: Path) -> None:
    network = ipaddress.IPv4Network("198.19.0.0/22")
    first, lock = claim_block(network, preferred=None, directory=tmp_path)
    second, other_lock = claim_block(network, preferred=str(first), directory=tmp_path)
    assert first != second  # the preferred block is held by the first claim
    lock.close()
    again, again_lock = claim_block(network, preferred=str(first), directory=tmp_path)
    assert again == first
    other_lock.close()
    again_lock.close()


def test_loopback_blocks_never_include_the_host_address() -> None:
    blocks = candidate_blocks(ipaddress.IPv4Network("127.0.0.0/22"), None)
    assert ipaddress.IPv4Network("127.0.0.0/24") not in blocks
