"""Pod addresses and the names of their network pieces: stable, unique, never the gateway's."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from node.addresses import Allocations, AllocationStore, block_addresses
from node.network import (
    bridge_name,
    candidate_blocks,
    claim_block,
    gateway_of,
    host_veth_name,
    namespace_address,
    namespace_name,
    pod_mac_address,
)

BLOCK = ipaddress.IPv4Network("10.244.4.0/24")


def test_addresses_skip_network_gateway_broadcast_and_host() -> None:
    loopback = list(block_addresses(ipaddress.IPv4Network("127.0.0.0/24")))
    assert "127.0.0.1" not in loopback
    assert loopback[0] == "127.0.0.2"
    assert gateway_of(BLOCK) == "10.244.4.1"
    assert list(block_addresses(BLOCK))[0] == "10.244.4.2"
    assert list(block_addresses(BLOCK))[-1] == "10.244.4.254"


def test_each_pod_gets_its_own_address_and_keeps_it() -> None:
    table = Allocations(block=BLOCK)
    first, second = table.address_for("a"), table.address_for("b")
    assert first != second
    assert table.address_for("a") == first
    table.release("a")
    assert table.address_for("c") == first  # freed addresses are reused


def test_store_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "allocations.json"
    address = AllocationStore(path, block=BLOCK).address_for("a")
    assert AllocationStore(path, block=BLOCK).address_for("a") == address


def test_store_forgets_addresses_of_another_block(tmp_path: Path) -> None:
    path = tmp_path / "allocations.json"
    AllocationStore(path, block=ipaddress.IPv4Network("10.244.9.0/24")).address_for("a")
    assert AllocationStore(path, block=BLOCK).address_for("a") == "10.244.4.2"


def test_network_names_fit_interface_limits_and_lead_back_to_the_address() -> None:
    address = "10.244.255.254"
    assert bridge_name(ipaddress.IPv4Network("10.244.255.0/24")) == "kns255"
    assert namespace_name(address) == "knserve-255-254"
    assert len(host_veth_name(address)) <= 15  # IFNAMSIZ - 1
    assert len(f"knsp{host_veth_name(address)[4:]}") <= 15
    assert namespace_address(namespace_name("10.244.4.9"), BLOCK) == "10.244.4.9"
    assert namespace_address(namespace_name(address), BLOCK) is None  # another node's block
    assert namespace_address("knserve-x-1", BLOCK) is None
    assert namespace_address("other-4-9", BLOCK) is None


def test_a_pod_address_always_gets_the_same_locally_administered_mac() -> None:
    # a reused IP keeps its MAC, so neighbour caches that still hold it stay right
    assert pod_mac_address("10.244.3.2") == "0a:58:0a:f4:03:02"
    assert pod_mac_address("10.244.3.2") == pod_mac_address("10.244.3.2")
    macs = {pod_mac_address(address) for address in block_addresses(BLOCK)}
    assert len(macs) == len(list(block_addresses(BLOCK)))
    first_byte = int(pod_mac_address("10.244.255.254").split(":")[0], 16)
    assert first_byte & 0b10 and not first_byte & 0b01  # locally administered, unicast


def test_blocks_are_claimed_once_per_machine(tmp_path: Path) -> None:
    network = ipaddress.IPv4Network("10.244.0.0/22")
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
