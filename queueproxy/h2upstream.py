"""HTTP/2 cleartext (h2c, prior knowledge) to the app, for apps whose port is named ``h2c``.

Clients still speak HTTP/1.1 to the queue-proxy; each exchange becomes one stream on a
shared h2c connection (more connections open when the app's stream limit is reached),
and the app's response is reframed as HTTP/1.1 (Content-Length passed on, otherwise
chunked, trailers as chunked trailers). Flow control does the back-pressure: request
bodies wait for the app's window (pausing the client), response data is acknowledged
only while the client keeps up. Upgrade requests still go over HTTP/1.1.
Side effects: TCP connections to the app. Uses the ``h2`` library (sans-I/O).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from queueproxy.framing import CHUNKED, LENGTH, reason_phrase

if TYPE_CHECKING:
    from queueproxy.exchange import Exchange

logger = logging.getLogger(__name__)

_CONNECTION_SPECIFIC = frozenset({b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                  b"upgrade", b"te"})
_RESPONSE_SKIP = frozenset({b"connection", b"keep-alive", b"transfer-encoding"})
LOCAL_WINDOW = 1 << 20  # bytes the app may send per stream before the client has taken them
MAX_BUFFERED_BODY = 256 * 1024  # request body waiting for the app's window before the client is paused


class _Stream:
    __slots__ = ("connection", "exchange", "stream_id", "outgoing", "outgoing_size", "end_pending", "chunked", "head_only",
                 "paused", "unacked", "ended")

    def __init__(self, connection: H2AppConnection, exchange: Exchange, stream_id: int) -> None:
        self.connection = connection
        self.exchange = exchange
        self.stream_id = stream_id
        self.outgoing: deque[bytes] = deque()
        self.outgoing_size = 0
        self.end_pending = False
        self.chunked = False
        self.head_only = exchange.method == b"HEAD"
        self.paused = False
        self.unacked = 0
        self.ended = False


class H2AppConnection(asyncio.Protocol):
    """One h2c connection to the app, carrying many streams."""

    def __init__(self, owner: H2Upstream) -> None:
        self._owner = owner
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self._transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.closed = False
        self._writing_paused = False

    @property
    def has_capacity(self) -> bool:
        if self.closed or self._transport is None:
            return False
        limit = self._h2.remote_settings.max_concurrent_streams
        return len(self.streams) < limit

    # --- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._h2.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: LOCAL_WINDOW}
        )
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(LOCAL_WINDOW * 16)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._owner.forget(self)
        error = exc or ConnectionResetError("the app closed the HTTP/2 connection")
        for stream in list(self.streams.values()):
            self._fail(stream, error)
        self.streams.clear()

    def pause_writing(self) -> None:
        self._writing_paused = True
        for stream in self.streams.values():
            stream.exchange.client.pause_reading_for_body()

    def resume_writing(self) -> None:
        self._writing_paused = False
        for stream in self.streams.values():
            stream.exchange.client.resume_reading_for_body()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            logger.debug("h2c protocol error from the app: %r", error)
            self._transport.abort()  # type: ignore[union-attr]
            return
        for event in events:
            self._handle(event)
        self._flush()

    # --- streams -------------------------------------------------------------------------
    def start(self, exchange: Exchange) -> None:
        head = exchange.head
        request_line = head.parts[0].split(b" ")
        authority = b"localhost"
        headers: list[tuple[bytes, bytes]] = []
        for name, value in head.header_list():
            lower = name.lower()
            if lower == b"host":
                authority = value
            elif lower == b"te":
                if value.lower() == b"trailers":
                    headers.append((b"te", b"trailers"))
            elif lower not in _CONNECTION_SPECIFIC:
                headers.append((lower, value))
        pseudo = [(b":method", request_line[0]), (b":scheme", b"http"), (b":authority", authority),
                  (b":path", request_line[1])]
        stream_id = self._h2.get_next_available_stream_id()
        stream = _Stream(self, exchange, stream_id)
        self.streams[stream_id] = stream
        exchange.h2_stream = stream
        pending = exchange.take_pending_body()
        no_body = exchange.request_done and not pending
        self._h2.send_headers(stream_id, pseudo + headers, end_stream=no_body)
        if not no_body:
            for chunk in pending:
                self._queue_body(stream, chunk)
            if exchange.request_done:
                stream.end_pending = True
            self._send_pending(stream)
        self._flush()

    def send_body(self, stream: _Stream, chunk: bytes) -> None:
        if stream.stream_id not in self.streams:
            return
        self._queue_body(stream, chunk)
        self._send_pending(stream)
        self._flush()

    def end_body(self, stream: _Stream) -> None:
        if stream.stream_id not in self.streams:
            return
        stream.end_pending = True
        self._send_pending(stream)
        self._flush()

    def cancel(self, stream: _Stream) -> None:
        if self.streams.pop(stream.stream_id, None) is not None and not self.closed:
            try:
                self._h2.reset_stream(stream.stream_id, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.ProtocolError:
                pass
            self._flush()

    def pause(self, stream: _Stream) -> None:
        stream.paused = True

    def resume(self, stream: _Stream) -> None:
        stream.paused = False
        if stream.unacked and stream.stream_id in self.streams:
            self._acknowledge(stream, stream.unacked)
            stream.unacked = 0
            self._flush()

    def close(self) -> None:
        if not self.closed and self._transport is not None:
            self.closed = True
            try:
                self._h2.close_connection()
                self._flush()
            finally:
                self._transport.close()

    # --- internals -------------------------------------------------------------------
    def _queue_body(self, stream: _Stream, chunk: bytes) -> None:
        if chunk:
            stream.outgoing.append(chunk)
            stream.outgoing_size += len(chunk)
            if stream.outgoing_size > MAX_BUFFERED_BODY:
                stream.exchange.client.pause_reading_for_body()

    def _send_pending(self, stream: _Stream) -> None:
        if stream.stream_id not in self.streams or stream.ended:
            return
        h2_connection = self._h2
        while stream.outgoing:
            window = min(h2_connection.local_flow_control_window(stream.stream_id),
                         h2_connection.max_outbound_frame_size)
            if window <= 0:
                break
            chunk = stream.outgoing.popleft()
            if len(chunk) > window:
                stream.outgoing.appendleft(chunk[window:])
                chunk = chunk[:window]
            stream.outgoing_size -= len(chunk)
            h2_connection.send_data(stream.stream_id, chunk)
        if stream.outgoing_size <= MAX_BUFFERED_BODY:
            stream.exchange.client.resume_reading_for_body()
        if stream.end_pending and not stream.outgoing:
            h2_connection.end_stream(stream.stream_id)
            stream.ended = True

    def _acknowledge(self, stream: _Stream, length: int) -> None:
        try:
            self._h2.acknowledge_received_data(length, stream.stream_id)
        except (h2.exceptions.StreamClosedError, KeyError):
            pass

    def _handle(self, event: Any) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._start_response(stream, event.headers, ended=event.stream_ended is not None)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None:
                self._acknowledge_connection(event.flow_controlled_length)
                return
            if event.data and not stream.head_only:
                if stream.chunked:
                    stream.exchange.response_body(b"%x\r\n%s\r\n" % (len(event.data), event.data))
                else:
                    stream.exchange.response_body(event.data)
            if stream.paused:
                stream.unacked += event.flow_controlled_length
            else:
                self._acknowledge(stream, event.flow_controlled_length)
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.chunked:
                trailer = b"".join(name + b": " + value + b"\r\n" for name, value in event.headers)
                stream.exchange.response_body(b"0\r\n" + trailer + b"\r\n")
                stream.chunked = False  # terminated already
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                if stream.chunked:
                    stream.exchange.response_body(b"0\r\n\r\n")
                stream.exchange.reframed_complete(keep_alive=True)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                self._fail(stream, ConnectionResetError(f"the app reset the stream ({event.error_code!r})"))
        elif isinstance(event, h2.events.WindowUpdated):
            targets = self.streams.values() if event.stream_id == 0 else filter(
                None, [self.streams.get(event.stream_id)])
            for stream in list(targets):
                self._send_pending(stream)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True
            self._owner.forget(self)
            for stream_id, stream in list(self.streams.items()):
                if stream_id > (event.last_stream_id or 0):
                    self.streams.pop(stream_id)
                    self._fail(stream, ConnectionResetError("the app closed the HTTP/2 connection"))

    def _acknowledge_connection(self, length: int) -> None:
        if length:
            self._h2.increment_flow_control_window(length)

    def _start_response(self, stream: _Stream, headers: list[tuple[bytes, bytes]], *, ended: bool) -> None:
        status = 502
        lines: list[bytes] = []
        has_length = False
        for name, value in headers:
            if name == b":status":
                status = int(value)
            elif name.startswith(b":") or name in _RESPONSE_SKIP:
                continue
            else:
                has_length = has_length or name == b"content-length"
                lines.append(name + b": " + value + b"\r\n")
        bodyless = stream.head_only or status in (204, 304) or 100 <= status < 200
        if not bodyless and not has_length:
            if ended:
                lines.append(b"content-length: 0\r\n")
            else:
                stream.chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
        exchange = stream.exchange
        if not exchange.keep_alive or not exchange.request_done or exchange.proxy.closing:
            exchange.keep_alive = False  # the client connection closes after this response: say so
            lines.append(b"connection: close\r\n")
        head = b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, reason_phrase(status), b"".join(lines))
        stream.exchange.start_response(status, head)

    def _fail(self, stream: _Stream, error: BaseException) -> None:
        stream.exchange.reframed_failed(error)

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


class H2Upstream:
    """The h2c connections to the app and the exchanges waiting for one."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        self._loop = loop
        self.host = host
        self.port = port
        self._connections: list[H2AppConnection] = []
        self._waiting: deque[Exchange] = deque()
        self._connecting = False

    def submit(self, exchange: Exchange) -> None:
        for connection in self._connections:
            if connection.has_capacity:
                connection.start(exchange)
                return
        self._waiting.append(exchange)
        if not self._connecting:
            self._connecting = True
            self._loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            _, connection = await self._loop.create_connection(lambda: H2AppConnection(self), self.host, self.port)
        except OSError as error:
            self._connecting = False
            waiting, self._waiting = self._waiting, deque()
            for exchange in waiting:
                exchange.reframed_failed(error)
            return
        self._connecting = False
        self._connections.append(connection)
        waiting, self._waiting = self._waiting, deque()
        for exchange in waiting:
            if exchange.state != 5:  # not DONE (timed out or client gone while we dialled)
                self.submit(exchange)

    def forget(self, connection: H2AppConnection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)

    def send_body(self, exchange: Exchange, chunk: bytes) -> None:
        stream = exchange.h2_stream
        if isinstance(stream, _Stream):
            stream.connection.send_body(stream, chunk)

    def end_body(self, exchange: Exchange) -> None:
        stream = exchange.h2_stream
        if isinstance(stream, _Stream):
            stream.connection.end_body(stream)

    def cancel(self, exchange: Exchange) -> None:
        stream = exchange.h2_stream
        exchange.h2_stream = None
        if isinstance(stream, _Stream):
            stream.connection.cancel(stream)

    def response_framing(self, exchange: Exchange) -> int:
        """How the reframed response under way is delimited (every write ends a chunk)."""
        stream = exchange.h2_stream
        return CHUNKED if isinstance(stream, _Stream) and stream.chunked else LENGTH

    def pause(self, exchange: Exchange) -> None:
        stream = exchange.h2_stream
        if isinstance(stream, _Stream):
            stream.connection.pause(stream)

    def resume(self, exchange: Exchange) -> None:
        stream = exchange.h2_stream
        if isinstance(stream, _Stream):
            stream.connection.resume(stream)

    def close(self) -> None:
        for connection in list(self._connections):
            connection.close()
        self._connections.clear()
