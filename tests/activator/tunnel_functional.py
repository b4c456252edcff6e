"""WebSockets through the activator on real sockets: the upgrade goes to the pod, the pod's 101
comes back, then messages flow both ways for as long as either side wants."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.activator.proxy_functional import NS, Harness, harness, revision_headers

__all__ = ["harness"]


async def test_a_websocket_opened_at_zero_is_held_then_joined_to_the_first_pod(harness: Harness) -> None:
    harness.revision("chat", timeout=1.0)
    opening = asyncio.create_task(harness.client.ws_connect(harness.url + "/ws", headers=revision_headers("chat")))
    await harness.autoscaler.wait_for("chat", timeout=2.0)
    await asyncio.sleep(0.2)
    assert not opening.done()
    pod = await harness.pod("pod-a")
    harness.endpoints("chat", ready=[pod])
    socket = await asyncio.wait_for(opening, 5.0)
    try:
        for word in ("hello", "again"):
            await socket.send_str(word)
            assert (await socket.receive_str(timeout=5.0)) == f"pod-a: {word}"
        # The revision's timeout (1 s) bounds the wait for the switch, not the conversation.
        await asyncio.sleep(1.5)
        await socket.send_str("still there")
        assert (await socket.receive_str(timeout=5.0)) == "pod-a: still there"
        headers = {name.lower(): value for name, value in pod.seen_headers[-1].items()}
        assert headers["upgrade"].lower() == "websocket" and headers["k-proxy-request"] == "activator"
        assert headers["knative-serving-revision"] == "chat"
    finally:
        await socket.close()


async def test_the_pod_closing_the_socket_closes_it_for_the_client(harness: Harness) -> None:
    pod = await harness.pod("pod-a")
    harness.revision("chat")
    harness.endpoints("chat", ready=[pod])
    async with harness.client.ws_connect(harness.url + "/ws", headers=revision_headers("chat")) as socket:
        await socket.send_str("close")
        message = await socket.receive(timeout=5.0)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    # The slot the socket held is free again: an ordinary request goes through.
    assert (await harness.get("chat"))[0] == 200
    assert harness.backends.healthy(NS, "chat") == {pod.dest}


async def test_an_upgrade_the_pod_refuses_gets_the_pods_answer(harness: Harness) -> None:
    pod = await harness.pod("pod-a")
    harness.revision("plain")
    harness.endpoints("plain", ready=[pod])
    headers = {**revision_headers("plain"), "Connection": "Upgrade", "Upgrade": "websocket"}
    async with harness.client.get(harness.url + "/not-a-socket", headers=headers) as response:
        assert response.status == 200
        assert '"path": "/not-a-socket"' in await response.text()
