"""``knserve activator`` and ``knserve autoscaler`` close idle and half-sent connections.

A client that opens connections and sends nothing, or half a request head, must not keep
them for ever: both servers close them ``SERVER_IDLE_TIMEOUT_SECONDS`` after they opened.
Raw sockets against the real processes; the test takes about a minute.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import aiohttp

from knserve.networking import SERVER_IDLE_TIMEOUT_SECONDS
from tests.activator.main_functional import free_port, start, stop, wait_healthy

GRACE = 10.0


def open_idle_and_half_sent(port: int) -> list[socket.socket]:
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    half_sent = socket.create_connection(("127.0.0.1", port), timeout=5)
    half_sent.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return [idle, half_sent]


def wait_closed(connection: socket.socket, deadline: float) -> bool:
    """True once the server has closed ``connection`` (before ``deadline``, monotonic)."""
    while (remaining := deadline - time.monotonic()) > 0:
        connection.settimeout(remaining)
        try:
            if connection.recv(65536) == b"":
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


async def test_idle_and_half_sent_connections_are_closed(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("data", "activator_metrics", "stats", "autoscaler_metrics")}
    revisions = tmp_path / "revisions.json"
    revisions.write_text(json.dumps({"revisions": []}))
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(json.dumps({"podAutoscalers": [], "replicas": []}))
    autoscaler = await start("autoscaler", "--static", str(cluster), "--host", "127.0.0.1",
                             "--port", str(ports["stats"]), "--metrics-port", str(ports["autoscaler_metrics"]))
    activator = await start("activator", "--static", str(revisions), "--host", "127.0.0.1", "--drain-seconds", "1",
                            "--port", str(ports["data"]), "--metrics-port", str(ports["activator_metrics"]),
                            "--autoscaler-url", f"http://127.0.0.1:{ports['stats']}")
    connections: dict[str, list[socket.socket]] = {}
    try:
        async with aiohttp.ClientSession() as client:
            await wait_healthy(client, f"http://127.0.0.1:{ports['stats']}/healthz")
            await wait_healthy(client, f"http://127.0.0.1:{ports['data']}/healthz")
        deadline = time.monotonic() + SERVER_IDLE_TIMEOUT_SECONDS + GRACE
        connections = {name: open_idle_and_half_sent(port) for name, port in ports.items()}
        closed = {
            name: await asyncio.gather(*(asyncio.to_thread(wait_closed, one, deadline) for one in opened))
            for name, opened in connections.items()
        }
    finally:
        for opened in connections.values():
            for connection in opened:
                connection.close()
        await stop(activator)
        await stop(autoscaler)

    assert closed == {name: [True, True] for name in ports}, "[idle, half-sent] closed by the server, per port"
