"""Backends and load for driving a ``LocalIngress`` in tests and benchmarks.

A :class:`NamedBackend` is an asyncio HTTP/1.1 server (keep-alive, httptools parser) on a free
127.0.0.1 port that answers every request ``200 <name>`` and echoes the Host and the Knative
revision headers it got. :func:`fire` sends many requests over keep-alive connections from
several concurrent clients; :class:`SteadyLoad` sends a steady rate in the background and
records every failure.

Side effects: listens on 127.0.0.1, sends HTTP requests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time

import aiohttp
import httptools

from knserve.networking import NAMESPACE_HEADER, REVISION_HEADER


class _Connection(asyncio.Protocol):
    def __init__(self, backend: NamedBackend) -> None:
        self._backend = backend
        self._parser = httptools.HttpRequestParser(self)
        self._headers: dict[str, str] = {}
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._backend.connections.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._backend.connections.discard(self._transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_message_begin(self) -> None:
        self._headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode()

    def on_message_complete(self) -> None:
        assert self._transport is not None
        body = self._backend.name.encode()
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Content-Type: text/plain\r\n"
            f"X-Seen-Revision: {self._headers.get(REVISION_HEADER.lower(), '')}\r\n"
            f"X-Seen-Namespace: {self._headers.get(NAMESPACE_HEADER.lower(), '')}\r\n"
            f"X-Seen-Host: {self._headers.get('host', '')}\r\n"
            "\r\n"
        )
        self._transport.write(head.encode() + body)
        if not self._parser.should_keep_alive():
            self._transport.close()


class NamedBackend:
    """``async with NamedBackend("hello-00001") as backend``: serves on ``backend.port``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self.connections: set[asyncio.Transport] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> NamedBackend:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for transport in list(self.connections):
                transport.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> NamedBackend:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


@dataclasses.dataclass
class Tally:
    answers: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    failures: list[str] = dataclasses.field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.answers.values()) + len(self.failures)

    def share(self, name: str) -> float:
        """Percent of all requests that ``name`` answered."""
        return 100.0 * self.answers[name] / self.total if self.total else 0.0


async def _one(session: aiohttp.ClientSession, url: str, host: str, tally: Tally) -> None:
    try:
        async with session.get(url, headers={"Host": host}) as response:
            body = await response.text()
            if response.status == 200:
                tally.answers[body] += 1
            else:
                tally.failures.append(f"{response.status} {body[:80]!r}")
    except (aiohttp.ClientError, OSError) as error:
        tally.failures.append(f"{type(error).__name__}: {error}")


async def fire(url: str, host: str, *, requests: int, clients: int = 8) -> Tally:
    """``requests`` GETs with Host ``host`` from ``clients`` keep-alive clients; who answered."""
    tally = Tally()
    remaining = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for _ in remaining:
                await _one(session, url, host, tally)

        await asyncio.gather(*(client() for _ in range(clients)))
    return tally


class SteadyLoad:
    """About ``rate`` requests a second in the background, each one checked."""

    def __init__(self, url: str, host: str, *, rate: float = 100.0) -> None:
        self.url = url
        self.host = host
        self.interval = 1.0 / rate
        self.tally = Tally()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:
            in_flight: set[asyncio.Task[None]] = set()
            next_at = time.monotonic()
            try:
                while True:
                    request = asyncio.create_task(_one(session, self.url, self.host, self.tally))
                    in_flight.add(request)
                    request.add_done_callback(in_flight.discard)
                    next_at += self.interval
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            finally:
                if in_flight:
                    await asyncio.gather(*in_flight, return_exceptions=True)

    async def __aenter__(self) -> SteadyLoad:
        self._task = asyncio.create_task(self._run(), name="steady-load")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
