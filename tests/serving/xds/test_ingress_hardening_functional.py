"""The ingress against hostile and old clients: a real Envoy programmed by the xDS server.

- a slowloris client (idle and half-sent connections, raw sockets) fills the ingress's
  connection limit; a well-behaved client is still answered while it runs, and the memory
  its connections took comes back without waiting for it to leave;
- HTTP/1.0 clients (``ab``, ``curl -0``) are served;
- internal headers a client forges (``K-Network-Probe``, ``K-Original-Host``,
  ``Knative-Serving-*``, ``K-Proxy-Request``) never reach the app, on either listener.

Every test starts its own Envoy on free 127.0.0.1 ports through ``LocalIngress``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httptools
import pytest

from serving.xds.bootstrap import BootstrapSettings, make_bootstrap
from serving.xds.model import Endpoint, IngressModel, IngressRule, RevisionBackend, Split, Visibility
from serving.xds.resources import listener
from tests.support.xds_backends import NamedBackend
from tests.support.xds_runner import LocalIngress

NS = "default"
HOST = "hello.default.example.com"
LOCAL_HOST = "hello.default.svc.cluster.local"
SERVE_TIMEOUT = 30.0
CONNECTION_LIMIT = 120
"""The test Envoy's connection limit, small so that a slowloris of a few hundred sockets reaches it."""


# --- a backend that answers with the headers it got ------------------------------------------


class _EchoConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._headers: list[tuple[str, str]] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_message_begin(self) -> None:
        self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode(), value.decode()))

    def on_message_complete(self) -> None:
        assert self._transport is not None
        body = json.dumps(self._headers).encode()
        self._transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


@contextlib.asynccontextmanager
async def echo_backend() -> AsyncIterator[int]:
    server = await asyncio.get_running_loop().create_server(_EchoConnection, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


# --- the ingress ----------------------------------------------------------------------------------


def model(port: int) -> IngressModel:
    splits = (Split("hello-00001", NS, 100),)
    return IngressModel(
        rules=(
            IngressRule(namespace=NS, name="hello", hosts=(HOST,), generation=1,
                        visibility=Visibility.EXTERNAL_IP, splits=splits),
            IngressRule(namespace=NS, name="hello", hosts=(LOCAL_HOST,), generation=1,
                        visibility=Visibility.CLUSTER_LOCAL, splits=splits),
        ),
        backends=(RevisionBackend(NS, "hello-00001", (Endpoint("127.0.0.1", port),)),),
    )


@contextlib.asynccontextmanager
async def serving(work_dir: Path, backend_port: int, *, max_connections: int | None = None
                  ) -> AsyncIterator[LocalIngress]:
    ingress = LocalIngress(work_dir)
    if max_connections is not None:
        node = ingress.envoy.bootstrap["node"]
        xds = ingress.envoy.bootstrap["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
        ingress.envoy.bootstrap = make_bootstrap(BootstrapSettings(
            node_id=node["id"], node_cluster=node["cluster"], xds_host="127.0.0.1",
            xds_port=xds["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"],
            admin_port=0, max_connections=max_connections,
        ))
    async with ingress:
        version = ingress.controller.update(model(backend_port))
        await ingress.controller.wait_served(version, timeout=SERVE_TIMEOUT)
        yield ingress


def exchange(port: int, request: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``request`` on a new connection and read until Envoy closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
        return reply


# --- HTTP/1.0 ----------------------------------------------------------------------------------


async def test_http_10_clients_are_served(tmp_path: Path) -> None:
    async with echo_backend() as port, serving(tmp_path / "envoy", port) as ingress:
        external = ingress.settings.external_port

        def http_10_get(path: str) -> tuple[int, bytes, str]:
            connection = http.client.HTTPConnection("127.0.0.1", external, timeout=5)
            connection._http_vsn = 10  # what ab and curl -0 send
            connection._http_vsn_str = "HTTP/1.0"
            connection.request("GET", path, headers={"Host": HOST})
            response = connection.getresponse()
            try:
                return response.status, response.read(), response.getheader("Connection", "")
            finally:
                connection.close()

        status, body, connection_header = await asyncio.to_thread(http_10_get, "/")
        assert status == 200
        assert ["host", HOST] in json.loads(body)
        assert connection_header.lower() == "close"

        # ab's request, byte for byte: HTTP/1.0 with a Host header.
        reply = await asyncio.to_thread(
            exchange, external, f"GET / HTTP/1.0\r\nHost: {HOST}\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n"
            .encode())
        assert reply.startswith(b"HTTP/1.0 200 OK\r\n")

        # ab -k: HTTP/1.0 keep-alive, two requests on one connection.
        def keep_alive_twice() -> list[bytes]:
            with socket.create_connection(("127.0.0.1", external), timeout=5) as connection:
                replies = []
                for _ in range(2):
                    connection.sendall(f"GET / HTTP/1.0\r\nHost: {HOST}\r\nConnection: Keep-Alive\r\n\r\n".encode())
                    replies.append(connection.recv(65536))
                return replies

        replies = await asyncio.to_thread(keep_alive_twice)
        assert [reply.split(b"\r\n", 1)[0] for reply in replies] == [b"HTTP/1.0 200 OK"] * 2
        assert all(b"\r\nconnection: keep-alive\r\n" in reply.lower() for reply in replies)

        # Without a Host there is nothing to route by: 404, as for an unknown host.
        reply = await asyncio.to_thread(exchange, external, b"GET / HTTP/1.0\r\n\r\n")
        assert reply.startswith(b"HTTP/1.0 404")


# --- internal headers ------------------------------------------------------------------------

FORGED = {
    "K-Network-Probe": "queue",
    "K-Network-Hash": "override",
    "K-Original-Host": "evil.example.org",
    "K-Proxy-Request": "activator",
    "K-Kubelet-Probe": "queue",
    "Knative-Serving-Revision": "other-00001",
    "knative-serving-namespace": "kube-system",
    "Knative-Serving-Tag": "canary",
}


@pytest.mark.parametrize("visibility", ["external", "internal"])
async def test_internal_headers_from_a_client_never_reach_the_app(tmp_path: Path, visibility: str) -> None:
    async with echo_backend() as port, serving(tmp_path / "envoy", port) as ingress:
        listener_port, host = ((ingress.settings.external_port, HOST) if visibility == "external"
                               else (ingress.settings.internal_port, LOCAL_HOST))
        forged = "".join(f"{name}: {value}\r\n" for name, value in FORGED.items())
        reply = await asyncio.to_thread(
            exchange, listener_port,
            f"GET / HTTP/1.1\r\nHost: {host}\r\n{forged}X-Kept: yes\r\nConnection: close\r\n\r\n".encode())

    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply
    seen = {name.lower(): value for name, value in json.loads(body)}
    assert seen["host"] == host
    assert seen["x-kept"] == "yes"
    # Envoy's own revision headers, and nothing of the client's.
    assert seen["knative-serving-revision"] == "hello-00001"
    assert seen["knative-serving-namespace"] == NS
    leaked = {name: value for name, value in seen.items()
              if name.startswith(("k-network-", "knative-serving-t")) or name in (
                  "k-original-host", "k-proxy-request", "k-kubelet-probe")}
    assert leaked == {}


# --- slowloris ------------------------------------------------------------------------------


@dataclasses.dataclass
class Slowloris:
    """Idle and half-sent connections from one client, held until ``release``; raw sockets."""

    port: int
    idle: int
    half_sent: int
    head_bytes: int = 200
    sockets: list[socket.socket] = dataclasses.field(default_factory=list)
    half_open: list[socket.socket] = dataclasses.field(default_factory=list)

    def open(self) -> None:
        for index in range(self.idle + self.half_sent):
            connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if index >= self.idle:
                pad = b"X-Pad: " + b"a" * self.head_bytes + b"\r\n"
                connection.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n".encode() + pad)
                self.half_open.append(connection)
            self.sockets.append(connection)

    def trickle(self) -> None:
        """One more header line on every half-sent connection, as a slowloris keeps them busy."""
        for connection in self.half_open:
            with contextlib.suppress(OSError):
                connection.sendall(b"X-Still: here\r\n")

    def closed_by_envoy(self) -> int:
        """How many of the connections Envoy has answered (a 408) or closed."""
        closed = 0
        for connection in self.sockets:
            connection.setblocking(False)
            try:
                connection.recv(1, socket.MSG_PEEK)  # the close, or an answer before it
            except BlockingIOError:
                continue  # still open, nothing said
            except OSError:
                pass  # reset
            closed += 1
        return closed

    def release(self) -> None:
        for connection in self.sockets:
            connection.close()


@contextlib.contextmanager
def slowloris(port: int, *, idle: int, half_sent: int, head_bytes: int = 200) -> Iterator[Slowloris]:
    attack = Slowloris(port, idle, half_sent, head_bytes)
    try:
        attack.open()
        yield attack
    finally:
        attack.release()


def well_behaved_get(port: int, host: str, *, timeout: float) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


async def first_answer(port: int, *, within: float) -> float | None:
    """Seconds until a well-behaved client (retrying when refused, as users do) is answered."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            status, _ = await asyncio.to_thread(well_behaved_get, port, HOST, timeout=2.0)
        except (OSError, http.client.HTTPException):
            await asyncio.sleep(0.25)
            continue
        if status == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    return None


async def test_a_slowloris_at_the_connection_limit_does_not_lock_out_a_well_behaved_client(tmp_path: Path) -> None:
    # More connections than the limit: half that never send a byte, half that send their
    # request head a line at a time and never finish it.
    held_for = 40.0  # the slowloris lets go after this; the client must be answered before
    async with NamedBackend("hello-00001") as backend, \
            serving(tmp_path / "envoy", backend.port, max_connections=CONNECTION_LIMIT) as ingress:
        port = ingress.settings.external_port
        opened = time.monotonic()
        with slowloris(port, idle=CONNECTION_LIMIT // 2 + 20, half_sent=CONNECTION_LIMIT // 2 + 20) as attack:
            async def keep_trickling() -> None:
                while True:
                    await asyncio.sleep(2.0)
                    attack.trickle()

            trickler = asyncio.create_task(keep_trickling())
            try:
                answered_after = await first_answer(port, within=held_for)
                # By the time the last half-sent head has run out of time, Envoy has closed them all.
                timed_out = opened + listener.REQUEST_HEADERS_TIMEOUT.total_seconds() + 3
                await asyncio.sleep(max(0.0, timed_out - time.monotonic()))
                closed = attack.closed_by_envoy()
            finally:
                trickler.cancel()

    assert answered_after is not None, f"a well-behaved client got no answer in {held_for:.0f} s of slowloris"
    assert closed == len(attack.sockets)


async def test_memory_held_by_half_sent_requests_comes_back_while_the_client_still_holds_them(tmp_path: Path) -> None:
    # 150 connections, each with 40 KiB of request head that never ends: Envoy's heap grows
    # by several MiB. Envoy times them out, so its heap comes back without the client leaving.
    async with NamedBackend("hello-00001") as backend, serving(tmp_path / "envoy", backend.port) as ingress:
        before = await heap_in_use(ingress)
        with slowloris(ingress.settings.external_port, idle=0, half_sent=150, head_bytes=40 * 1024):
            await asyncio.sleep(1.0)
            during = await heap_in_use(ingress)
            deadline = time.monotonic() + listener.REQUEST_HEADERS_TIMEOUT.total_seconds() + 10
            after = during
            while time.monotonic() < deadline and after - before > (during - before) / 4:
                await asyncio.sleep(0.5)
                after = await heap_in_use(ingress)

    assert during - before > 4 << 20, (before, during)
    assert after - before <= (during - before) / 4, (before, during, after)


async def heap_in_use(ingress: LocalIngress) -> int:
    status, body = await ingress.envoy.admin("/memory")
    assert status == 200
    return int(json.loads(body)["allocated"])
