"""Pure parts of the pod network: names, MACs and the sweep of addresses older agents left."""

from __future__ import annotations

import ipaddress

from node.network import legacy_loopback_addresses, namespace_address, namespace_name, pod_mac_address

IP_OUTPUT = "\n".join([
    r"1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever",
    r"1: lo    inet 198.19.0.1/32 scope global lo:knserve\       valid_lft forever preferred_lft forever",
    r"1: lo    inet 198.19.0.74/32 scope global lo:knserve\       valid_lft forever preferred_lft forever",
    r"1: lo    inet 198.19.7.7/32 scope global lo:other\       valid_lft forever preferred_lft forever",
    r"1: lo    inet 10.1.2.3/32 scope global lo:knserve\       valid_lft forever preferred_lft forever",
])


def test_sweep_finds_only_legacy_pod_addresses_with_the_agents_label():
    assert legacy_loopback_addresses(IP_OUTPUT) == [
        ipaddress.IPv4Interface("198.19.0.1/32"), ipaddress.IPv4Interface("198.19.0.74/32")]


def test_namespace_names_round_trip_within_the_block():
    block = ipaddress.IPv4Network("10.244.7.0/24")
    assert namespace_name("10.244.7.23") == "knserve-7-23"
    assert namespace_address("knserve-7-23", block) == "10.244.7.23"
    assert namespace_address("knserve-8-23", block) is None
    assert namespace_address("other-7-23", block) is None


def test_a_pods_mac_derives_from_its_ip():
    assert pod_mac_address("10.244.7.23") == "0a:58:0a:f4:07:17"
