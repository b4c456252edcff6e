"""Revision timeouts through the queue-proxy, as a client sees them (real app, real sockets).

Before the response starts, a timeout is a 504. After it started, the response is ended
the way Knative's queue-proxy ends it: a chunked one gets ``request timeout`` as its last
chunk and a proper end (the connection stays usable), one delimited by the close gets the
message and the close, one with a Content-Length is closed short, cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from tests.queueproxy.conftest import QueueProxyProcess
from tests.queueproxy.test_proxy_functional import assert_still_serving, fetch, wait_no_in_flight
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(120)


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


async def read_response(reader: asyncio.StreamReader) -> Response:
    """One response, read as a strict HTTP/1.1 client reads it: a chunked body must end with
    its last chunk (``asyncio.IncompleteReadError`` if the connection ends first, which is
    curl's "transfer closed with outstanding read data remaining")."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                assert await reader.readuntil(b"\r\n") == b"\r\n"  # no trailers
                return Response(status, headers, body)
            chunk = await reader.readexactly(size + 2)
            assert chunk.endswith(b"\r\n")
            body += chunk[:-2]
    if "content-length" in headers:
        return Response(status, headers, await reader.readexactly(int(headers["content-length"])))
    return Response(status, headers, await reader.read())


@contextlib.asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> Response:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode())
    return await asyncio.wait_for(read_response(reader), 15)


# --- before the response starts ------------------------------------------------------------
async def test_timeout_before_response_is_504(queue_proxy) -> None:
    proxy = queue_proxy(REVISION_TIMEOUT_SECONDS="2")
    started = time.monotonic()
    assert await fetch(proxy.serving_port, "/sleep?s=5") == (504, b"request timeout")
    assert 1.9 < time.monotonic() - started < 4.0
    assert_still_serving(proxy)


async def test_response_start_and_idle_timeouts_before_the_response(queue_proxy) -> None:
    proxy = queue_proxy(REVISION_RESPONSE_START_TIMEOUT_SECONDS="1")
    assert await fetch(proxy.serving_port, "/sleep?s=3") == (504, b"request timeout")
    idle = queue_proxy(REVISION_IDLE_TIMEOUT_SECONDS="1")
    assert await fetch(idle.serving_port, "/sleep?s=3") == (504, b"request timeout")


# --- after it started: the response ends cleanly ----------------------------------------------
async def test_timeout_ends_a_streaming_response_as_a_complete_chunked_200(queue_proxy) -> None:
    proxy = queue_proxy(REVISION_TIMEOUT_SECONDS="2")
    async with connection(proxy.serving_port) as (reader, writer):
        started = time.monotonic()
        response = await get(reader, writer, "/stream?s=5")
        elapsed = time.monotonic() - started
        assert response.status == 200
        assert response.body.startswith(b"first\nmore\n")
        assert response.body.endswith(b"more\nrequest timeout")  # Knative's message, as its last chunk
        assert 1.9 < elapsed < 4.0
        again = await get(reader, writer, "/")  # the connection was left usable
        assert (again.status, again.body) == (200, b"hello")


async def test_idle_timeout_ends_a_stalled_stream_cleanly(queue_proxy) -> None:
    proxy = queue_proxy(REVISION_IDLE_TIMEOUT_SECONDS="1")
    async with connection(proxy.serving_port) as (reader, writer):
        started = time.monotonic()
        response = await get(reader, writer, "/stall?s=5")
        assert (response.status, response.body) == (200, b"first\nrequest timeout")
        assert 0.9 < time.monotonic() - started < 3.0
        # a stream that keeps writing is never idle: it ends as the app ends it
        response = await get(reader, writer, "/stream?s=1.5")
        assert response.status == 200 and response.body.endswith(b"more\nmore\n")


async def test_response_start_timeout_no_longer_applies_once_the_response_started(queue_proxy) -> None:
    proxy = queue_proxy(REVISION_RESPONSE_START_TIMEOUT_SECONDS="1", REVISION_TIMEOUT_SECONDS="3")
    async with connection(proxy.serving_port) as (reader, writer):
        response = await get(reader, writer, "/stream?s=1.5")  # started in time, so it runs on
        assert response.status == 200 and response.body.endswith(b"more\n")
        started = time.monotonic()
        response = await get(reader, writer, "/stall?s=10")  # until the overall timeout ends it
        assert (response.status, response.body) == (200, b"first\nrequest timeout")
        assert 2.9 < time.monotonic() - started < 5.0


async def test_timeout_ends_a_close_delimited_response_with_the_message_and_the_close(queue_proxy) -> None:
    proxy = queue_proxy(REVISION_TIMEOUT_SECONDS="1")
    async with connection(proxy.serving_port) as (reader, writer):
        writer.write(b"GET /stream?s=5 HTTP/1.0\r\nHost: example.com\r\n\r\n")  # no chunking for HTTP/1.0
        response = await asyncio.wait_for(read_response(reader), 15)
        assert response.status == 200 and "content-length" not in response.headers
        assert response.body.startswith(b"first\nmore\n") and response.body.endswith(b"more\nrequest timeout")


async def test_timeout_closes_a_content_length_response_short_without_adding_to_it(queue_proxy) -> None:
    """A body with a Content-Length cannot be ended early: the client gets what the app sent,
    then a clean close (no reset), and so sees the body short; nothing is written into it."""
    proxy = queue_proxy(REVISION_TIMEOUT_SECONDS="1")
    async with connection(proxy.serving_port) as (reader, writer):
        writer.write(b"GET /trickle?size=1000&s=10 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
        assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 1000" in head
        body = await asyncio.wait_for(reader.read(), 15)  # up to a clean EOF: a reset would raise
    assert 0 < len(body) < 1000 and body == b"x" * len(body)


# --- a timeout in the middle of a chunk --------------------------------------------------------
class RawApp:
    """An app writing raw chunked responses: a 10-byte chunk, then 40 bytes of a 100-byte chunk;
    the rest of that chunk after ``rest_after`` seconds (never, when None)."""

    def __init__(self, rest_after: float | None) -> None:
        self.rest_after = rest_after
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawApp:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        for handler in self.handlers:
            handler.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self.handlers.add(handler)
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()  # the queue-proxy's readiness probe: a TCP connect
            return
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"a\r\n0123456789\r\n" + b"64\r\n" + b"a" * 40)
        with contextlib.suppress(ConnectionError):
            if self.rest_after is not None:
                await asyncio.sleep(self.rest_after)
                writer.write(b"b" * 60 + b"\r\n" + b"5\r\nlater\r\n")
            await reader.read()  # hold the response open until the queue-proxy lets go
        writer.close()


async def test_timeout_in_the_middle_of_a_chunk_waits_for_its_end(queue_proxy) -> None:
    async with RawApp(rest_after=1.3) as app:
        proxy: QueueProxyProcess = queue_proxy(user_port=app.port, REVISION_TIMEOUT_SECONDS="1")
        async with connection(proxy.serving_port) as (reader, writer):
            response = await get(reader, writer, "/")
    assert response.status == 200
    assert response.body == b"0123456789" + b"a" * 40 + b"b" * 60 + b"request timeout"


async def test_timeout_in_a_chunk_that_never_ends_cuts_the_response(queue_proxy) -> None:
    async with RawApp(rest_after=None) as app:
        proxy: QueueProxyProcess = queue_proxy(user_port=app.port, REVISION_TIMEOUT_SECONDS="1")
        async with connection(proxy.serving_port) as (reader, writer):
            started = time.monotonic()
            with pytest.raises(asyncio.IncompleteReadError):
                await get(reader, writer, "/")
            assert time.monotonic() - started < 4.0  # the timeout, then the grace for the chunk's end
        wait_no_in_flight(proxy)
