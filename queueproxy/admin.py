"""A small HTTP/1.1 server for the side ports: admin (8022), stats (9090), metrics (9091).

These ports carry a request a second at most, so they are plain: httptools parses, a
route table maps ``(method, path)`` to a handler returning a ``Reply`` (or a coroutine
of one, for ``/wait-for-drain`` which blocks). aiohttp would do too, but costs the
sidecar 16 MB of RSS.

A side server may admit only some peers (``allowed_peers``): the admin port takes
``/wait-for-drain`` from the pod itself (loopback, the pod's own address) and from the node's
side of the pod network (the pod's default gateway: the address the kubelet's ``httpGet``
preStop hook comes from on the local node and on bridge networks), never from another pod:
:func:`pod_and_node`. Anyone else gets ``403`` for every request on the connection.

Side effects: socket I/O; :func:`default_gateways` reads the routing table once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple

import httptools

from queueproxy.framing import reason_phrase

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024


class Reply(NamedTuple):
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"

    def encode(self, *, keep_alive: bool, head_only: bool = False) -> bytes:
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
            self.status, reason_phrase(self.status), self.content_type.encode("latin-1"), len(self.body),
            b"" if keep_alive else b"Connection: close\r\n",
        )
        return head if head_only else head + self.body


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host`` (an IP address) and ``port``.

    Bound here rather than by ``loop.create_server(host=...)``, which resolves even an
    address through getaddrinfo on a thread pool and the IDNA codec: work a sidecar
    would do before its first answer, for nothing.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise OSError(error.errno, f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


def default_gateways(route_table: str = "/proc/net/route") -> frozenset[str]:
    """The IPv4 gateways of the default routes of this network namespace (none if unreadable)."""
    gateways = set()
    try:
        with open(route_table, encoding="ascii") as table:
            next(table, None)
            for line in table:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000" and fields[2] != "00000000":
                    gateways.add(str(ipaddress.IPv4Address(int(fields[2], 16).to_bytes(4, "little"))))
    except (OSError, ValueError):
        return frozenset()
    return frozenset(gateways)


def pod_and_node(pod_ip: str, *, gateways: frozenset[str] | None = None) -> Callable[[str], bool]:
    """Admits loopback, ``pod_ip`` and the pod's default gateways (the node, where the kubelet is)."""
    allowed = {pod_ip} if pod_ip else set()
    allowed |= default_gateways() if gateways is None else gateways

    def admits(peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback or str(address) in allowed

    return admits


FORBIDDEN_REPLY = Reply(403, b"only the pod itself and its node (the kubelet's preStop hook) may use this port\n")

Handler = Callable[[], "Reply | Awaitable[Reply]"]
Routes = Mapping[str, Handler]  # path -> handler (GET and HEAD only)


class SideProtocol(asyncio.Protocol):
    def __init__(self, routes: Routes, connections: set[SideProtocol],
                 allowed_peers: Callable[[str], bool] | None = None) -> None:
        self._routes = routes
        self._connections = connections
        self._allowed_peers = allowed_peers
        self._forbidden = False
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._size = 0
        self._busy = False
        self._queue: list[tuple[bytes, bytes, bool]] = []
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._connections.add(self)
        if self._allowed_peers is not None:
            peer = transport.get_extra_info("peername")
            self._forbidden = not (isinstance(peer, tuple) and self._allowed_peers(str(peer[0])))
            if self._forbidden:
                logger.warning("refused a connection from %s: neither this pod nor its node", peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > MAX_REQUEST_BYTES:
            self._send(Reply(431, b"request too large\n"), keep_alive=False)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(Reply(400, b"malformed request\n"), keep_alive=False)

    def on_message_begin(self) -> None:
        self._url = b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_message_complete(self) -> None:
        self._size = 0
        self._queue.append((self._parser.get_method(), self._url, self._parser.should_keep_alive()))
        if not self._busy:
            self._next()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _next(self) -> None:
        if not self._queue:
            return
        method, url, keep_alive = self._queue.pop(0)
        path = httptools.parse_url(url).path.decode("latin-1") if url else "/"
        handler = self._routes.get(path)
        if self._forbidden:
            reply: Reply | Awaitable[Reply] = FORBIDDEN_REPLY
            keep_alive = False
        elif method not in (b"GET", b"HEAD", b"POST"):
            reply = Reply(405, b"method not allowed\n")
        elif handler is None:
            reply = Reply(404, b"not found\n")
        else:
            try:
                reply = handler()
            except Exception:  # a handler bug must not take the port down
                logger.exception("handler for %s failed", path)
                reply = Reply(500, b"internal error\n")
        if isinstance(reply, Reply):
            self._send(reply, keep_alive=keep_alive, head_only=method == b"HEAD")
            self._next()
            return
        self._busy = True
        self._task = asyncio.ensure_future(self._await(reply, keep_alive, method == b"HEAD"))

    async def _await(self, pending: Awaitable[Reply], keep_alive: bool, head_only: bool) -> None:
        try:
            reply = await pending
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("handler failed")
            reply = Reply(500, b"internal error\n")
        self._busy = False
        self._task = None
        self._send(reply, keep_alive=keep_alive, head_only=head_only)
        self._next()

    def _send(self, reply: Reply, *, keep_alive: bool, head_only: bool = False) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._transport.write(reply.encode(keep_alive=keep_alive, head_only=head_only))
        if not keep_alive:
            self._transport.close()


class SideServer:
    """One side port: its listening socket and its open connections."""

    def __init__(self, name: str, routes: Routes, *, allowed_peers: Callable[[str], bool] | None = None) -> None:
        self.name = name
        self._routes = routes
        self._allowed_peers = allowed_peers
        self._connections: set[SideProtocol] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SideProtocol(self._routes, self._connections, self._allowed_peers),
            sock=listening_socket(host, port)
        )
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
