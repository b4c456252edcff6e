"""Who may use the admin port: the pod itself and its node, never another pod."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from queueproxy.admin import Reply, SideServer, default_gateways, pod_and_node

ROUTE_TABLE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100F40A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0000F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def test_the_default_gateway_is_read_from_the_routing_table(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(ROUTE_TABLE)
    assert default_gateways(str(table)) == {"10.244.0.1"}
    assert default_gateways(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize(("peer", "admitted"), [
    pytest.param("127.0.0.1", True, id="loopback"),
    pytest.param("::1", True, id="loopback-v6"),
    pytest.param("10.244.0.7", True, id="the-pod-itself"),
    pytest.param("::ffff:10.244.0.7", True, id="the-pod-itself-v4-mapped"),
    pytest.param("10.244.0.1", True, id="its-node-the-kubelet"),
    pytest.param("10.244.0.9", False, id="another-pod"),
    pytest.param("10.96.0.10", False, id="a-service-address"),
    pytest.param("not an address", False, id="garbage"),
])
def test_only_the_pod_and_its_node_are_admitted(peer: str, admitted: bool) -> None:
    admits = pod_and_node("10.244.0.7", gateways=frozenset({"10.244.0.1"}))
    assert admits(peer) is admitted


async def _get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_a_peer_that_is_not_admitted_gets_403_and_the_handler_never_runs() -> None:
    calls: list[str] = []

    def drain() -> Reply:
        calls.append("drain")
        return Reply(200, b"drained\n")

    refusing = SideServer("admin", {"/wait-for-drain": drain}, allowed_peers=lambda peer: False)
    admitting = SideServer("admin", {"/wait-for-drain": drain}, allowed_peers=pod_and_node("10.244.0.7"))
    refused_port, admitted_port = await refusing.start("127.0.0.1", 0), await admitting.start("127.0.0.1", 0)
    try:
        answer = await _get(refused_port, "/wait-for-drain")
        assert answer.startswith(b"HTTP/1.1 403 ") and b"only the pod itself and its node" in answer
        assert calls == []
        assert (await _get(admitted_port, "/wait-for-drain")).startswith(b"HTTP/1.1 200 ")
        assert calls == ["drain"]
    finally:
        refusing.close()
        admitting.close()
