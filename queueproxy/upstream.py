"""HTTP/1.1 connections from the queue-proxy to the app, kept alive in a pool.

``UpstreamConnection`` is an asyncio BufferedProtocol over one TCP connection to the
app. It sends one request at a time and passes the app's response bytes to its exchange
unchanged (httptools only finds where the response ends), so headers and bodies stream
without being rebuilt or held whole. The bytes are read into buffers of ``ReadBuffers``
and handed to the client's transport as views, never copied; a buffer the client's
transport could not send at once stays lent to it until its queue is empty. The one
change made to the bytes: the head of a response the client connection will not outlive
gains ``Connection: close``. A chunked body's chunks are followed (framing.py) once it
spans more than one read, so that a timeout can end it on a chunk boundary.
``UpstreamPool`` keeps idle connections (LIFO) and opens new ones. Side effects: TCP
connections to the app's address.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

import httptools

from queueproxy.framing import CHUNKED, UNTIL_CLOSE, ChunkedBody, final_head_span, framing_of, with_connection_close

if TYPE_CHECKING:
    from queueproxy.exchange import Exchange

logger = logging.getLogger(__name__)

MAX_RESPONSE_HEAD_BYTES = 1 << 20
# One read from the app (uvloop reads up to 256 KB a time for plain Protocols too): large
# enough that a big body costs few reads and callbacks, small enough to lend.
READ_BUFFER_SIZE = 256 * 1024
MAX_FREE_READ_BUFFERS = 16


class ReadBuffers:
    """The buffers app connections read into, shared by all of them and reused.

    A read's bytes go to the client's transport as a view of the buffer. When that
    transport cannot send them at once it keeps the view, so the buffer is lent until
    the transport's queue is empty; reads meanwhile take other buffers. Reads happen one
    at a time on the loop, so with clients that keep up one buffer serves every connection.
    """

    __slots__ = ("size", "free", "lent")

    def __init__(self, size: int = READ_BUFFER_SIZE) -> None:
        self.size = size
        self.free: list[memoryview] = []  # views of whole bytearrays (made once: reads are hot)
        self.lent: list[tuple[memoryview, asyncio.WriteTransport]] = []

    def take(self) -> memoryview:
        free = self.free
        if not free and self.lent:
            self._reclaim()
        return free.pop() if free else memoryview(bytearray(self.size))

    def give_back(self, buffer: memoryview, transport: asyncio.WriteTransport | None) -> None:
        """``buffer``'s bytes were handed to ``transport`` (if any): lend it or free it."""
        if transport is not None and transport.get_write_buffer_size():
            self.lent.append((buffer, transport))
        elif len(self.free) < MAX_FREE_READ_BUFFERS:
            self.free.append(buffer)

    def _reclaim(self) -> None:
        lent = []
        for buffer, transport in self.lent:
            if transport.get_write_buffer_size():  # 0 too once the transport is closed
                lent.append((buffer, transport))
            elif len(self.free) < MAX_FREE_READ_BUFFERS:
                self.free.append(buffer)
        self.lent = lent


class _HeadResponseDone(Exception):
    """Raised from the parser callback to stop at the end of a HEAD response's headers."""


class UpstreamConnection(asyncio.BufferedProtocol):
    __slots__ = (
        "pool", "transport", "exchange", "_parser", "_status", "_headers_done", "_complete", "_keep_alive",
        "_head_chunks", "_head", "_buffer", "requests", "closed", "tunnel", "_reading_paused", "chunked", "head_request",
        "received", "chunks", "end_at_boundary",
    )

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._status = 0
        self._headers_done = False
        self._complete = False
        self._keep_alive = False
        self._head_chunks: list[bytes] = []  # a response head still incomplete after a read
        self._head = b""  # the final response head, once a body follows it
        self._buffer: memoryview | None = None  # taken for the read under way
        self.requests = 0  # requests sent on this connection, to know a reused one
        self.closed = False
        self.tunnel = False
        self._reading_paused = False
        self.chunked = False  # the current request body goes out chunked
        self.head_request = False
        self.received = 0  # response bytes of the current request
        self.chunks: ChunkedBody | None = None  # where a chunked body spanning reads stands
        self.end_at_boundary = False  # a timeout ends the response at the end of the current chunk

    # --- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        if self._buffer is not None:
            self.pool.buffers.give_back(self._buffer, None)
            self._buffer = None
        exchange = self.exchange
        if exchange is None:
            return
        self.exchange = None
        if self.tunnel:
            exchange.tunnel_closed()
        elif self._headers_done and not self._complete and framing_of(self._head) == UNTIL_CLOSE:
            exchange.response_closed(self._status)
        else:
            exchange.upstream_failed(exc or ConnectionResetError("the app closed the connection"), self)

    def eof_received(self) -> bool:
        if self.tunnel and self.exchange is not None:
            self.exchange.tunnel_eof_from_app()
            return True
        return False  # close; connection_lost does the rest

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_pause_writing()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_resume_writing()

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = self.pool.buffers.take()
        return buffer

    def buffer_updated(self, nbytes: int) -> None:
        buffer = self._buffer
        assert buffer is not None
        self._buffer = None
        exchange = self.exchange
        try:
            if exchange is None:  # unsolicited bytes on an idle connection: it cannot be trusted again
                self.close()
            else:
                self._received(exchange, cast(bytearray, buffer.obj), buffer[:nbytes])
        finally:
            self.pool.buffers.give_back(buffer, None if exchange is None else exchange.client.transport)

    def _received(self, exchange: Exchange, buffer: bytearray, data: memoryview) -> None:
        """``data`` (a view of ``buffer``) came from the app: parse it and pass it on."""
        if self.tunnel:
            exchange.client_write(data)
            return
        was_done = self._headers_done
        self.received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.tunnel = True
            exchange.upgraded(self._output(data))
            return
        except httptools.HttpParserCallbackError as error:
            if not isinstance(error.__context__, _HeadResponseDone):
                raise
            self.exchange = None
            # llhttp cannot skip a HEAD body: the app connection is not trusted again
            exchange.response_end(self._head_out(exchange, data), self._status, self._keep_alive, self,
                                  reusable=False)
            return
        except httptools.HttpParserError as error:
            self.exchange = None
            self.abort()
            exchange.upstream_failed(error, self, malformed=True)
            return
        if not self._headers_done:
            self._head_chunks.append(bytes(data))
            if self.received > MAX_RESPONSE_HEAD_BYTES:
                self.exchange = None
                self.abort()
                exchange.upstream_failed(ValueError("the app's response headers are too large"), self,
                                         malformed=True)
        elif not was_done:
            output = self._head_out(exchange, data)
            if self._complete:
                self.exchange = None
                exchange.response_end(output, self._status, self._keep_alive, self)
            else:
                if isinstance(output, memoryview):
                    self._body_begins(buffer, len(output))
                else:
                    self._body_begins(output, len(output))
                exchange.response_data(output, self._status)
        elif self._complete:
            self.exchange = None
            exchange.response_end(data, self._status, self._keep_alive, self)
        elif self.chunks is None:
            exchange.response_data(data, self._status)
        elif not self.end_at_boundary:
            self.chunks.feed(buffer, 0, len(data))
            exchange.response_data(data, self._status)
        else:
            self._forward_to_boundary(exchange, buffer, data)

    def _output(self, data: memoryview) -> bytes | memoryview:
        """The bytes to forward now: with those held back while the response head was incomplete."""
        if not self._head_chunks:
            return data
        return b"".join(self._head_chunks) + bytes(data)

    def _head_out(self, exchange: Exchange, data: memoryview) -> bytes | memoryview:
        """The bytes that complete the response head, as the client gets them.

        When the client connection closes after this response (the client asked for it,
        its request body is not all in, or the proxy is shutting down), the head says so.
        """
        output = self._output(data)
        if not exchange.keep_alive or not exchange.request_done or exchange.proxy.closing:
            exchange.keep_alive = False
            return with_connection_close(bytes(output))
        return output

    def _body_begins(self, data: bytes | bytearray, size: int) -> None:
        """The head is in ``data[:size]`` and the body goes on past this read: keep the head,
        and follow the body's chunks if it is chunked."""
        start, end = final_head_span(data)
        self._head = bytes(data[start:end]) if end >= 0 else b""
        if framing_of(self._head) == CHUNKED:
            self.chunks = ChunkedBody()
            self.chunks.feed(data, end, size)

    def _forward_to_boundary(self, exchange: Exchange, buffer: bytearray, data: memoryview) -> None:
        """A timeout is ending this response: pass on the rest of the current chunk, then end."""
        assert self.chunks is not None
        end = self.chunks.feed(buffer, 0, len(data), stop_at_boundary=True)
        if not self.chunks.at_boundary:
            exchange.response_data(data, self._status)
            return
        self.exchange = None
        if end:
            exchange.response_data(data[:end], self._status)
        exchange.chunk_boundary_reached()

    # --- httptools callbacks -----------------------------------------------------------
    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # interim response (103 Early Hints): forwarded, the final one follows
        self._status = status
        self._headers_done = True
        if self.head_request:
            self._complete = True
            self._keep_alive = self._parser.should_keep_alive()
            raise _HeadResponseDone()

    def on_message_complete(self) -> None:
        if not self._headers_done:
            return  # end of an interim response
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()

    # --- used by the exchange ----------------------------------------------------------
    def response_framing(self) -> int:
        """How the response under way is delimited (framing.py), for a timeout to end it."""
        return CHUNKED if self.chunks is not None else framing_of(self._head)

    @property
    def at_chunk_boundary(self) -> bool:
        return self.chunks is None or self.chunks.at_boundary

    def start(self, exchange: Exchange, data: bytes, chunked: bool, head_request: bool) -> None:
        self.exchange = exchange
        self.requests += 1
        self._headers_done = False
        self._complete = False
        if self._head_chunks:
            self._head_chunks.clear()
        self._head = b""
        self.received = 0
        self.chunks = None
        self.end_at_boundary = False
        self.chunked = chunked
        self.head_request = head_request
        if head_request:
            self._parser = httptools.HttpResponseParser(self)
        self.transport.write(data)  # type: ignore[union-attr]

    def send_body(self, chunk: bytes) -> None:
        if self.closed:
            return
        if self.chunked:
            self.transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))  # type: ignore[union-attr]
        else:
            self.transport.write(chunk)  # type: ignore[union-attr]

    def end_body(self) -> None:
        if self.chunked and not self.closed:
            self.transport.write(b"0\r\n\r\n")  # type: ignore[union-attr]

    def write_raw(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)  # type: ignore[union-attr]

    def write_eof(self) -> None:
        if not self.closed and self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()

    def pause_reading(self) -> None:
        if not self._reading_paused and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def resume_reading(self) -> None:
        if self._reading_paused and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    def close(self) -> None:
        self.exchange = None
        if not self.closed:
            self.closed = True
            self.pool.discard(self)
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        self.exchange = None
        if not self.closed:
            self.closed = True
            self.pool.discard(self)
            if self.transport is not None:
                self.transport.abort()


class UpstreamPool:
    """Idle keep-alive connections to the app, newest first, and the dialer for new ones."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        self._loop = loop
        self.host = host
        self.port = port
        self.idle: dict[UpstreamConnection, None] = {}  # newest last; exchanges pop from the end
        self.buffers = ReadBuffers()

    @property
    def idle_count(self) -> int:
        return len(self.idle)

    def take(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            connection, _ = idle.popitem()
            if not connection.closed:
                return connection
        return None

    def give_back(self, connection: UpstreamConnection) -> None:
        if connection.closed:
            return
        if connection._reading_paused:
            connection.resume_reading()
        self.idle[connection] = None

    def discard(self, connection: UpstreamConnection) -> None:
        self.idle.pop(connection, None)

    def connect(self, exchange: Exchange) -> None:
        """Open a new connection for ``exchange``; it gets ``attach`` or ``upstream_failed``."""
        self._loop.create_task(self._connect(exchange))

    async def _connect(self, exchange: Exchange) -> None:
        try:
            _, connection = await self._loop.create_connection(
                lambda: UpstreamConnection(self), self.host, self.port
            )
        except OSError as error:
            exchange.upstream_failed(error, None)
            return
        if not exchange.attach(connection):  # the exchange ended meanwhile: keep the connection for others
            self.give_back(connection)

    def close(self) -> None:
        while self.idle:
            connection, _ = self.idle.popitem()
            connection.close()
