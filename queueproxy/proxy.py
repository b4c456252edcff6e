"""The serving port (8012): client connections parsed with httptools, one exchange at a time.

``ClientConnection`` is the asyncio Protocol for one client connection. It parses
requests with httptools, rewrites their headers (headers.py), answers probes itself,
and hands each request to an ``Exchange`` (exchange.py), which carries it to the app.
Pipelined requests wait their turn; request bodies stream through with back-pressure
both ways. ``Proxy`` is the state the connections share: breaker, stats, metrics,
drainer, readiness, the app connection pool, and connection-level timeouts (a sweep
once a second closes silent or half-sent connections). Side effects: socket writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import httptools

from knserve.clock import Clock
from queueproxy.breaker import Breaker
from queueproxy.drain import Drainer
from queueproxy.exchange import DONE, Exchange, local_response
from queueproxy.headers import F_ANY_PROBE, RequestHeadBuilder
from queueproxy.metrics import Metrics
from queueproxy.readiness import ReadinessTracker
from queueproxy.settings import Settings
from queueproxy.stats import RequestStats
from queueproxy.upstream import UpstreamPool

logger = logging.getLogger(__name__)

PAUSE_BODY = 1  # the app (or the wait for it) is not taking the request body fast enough
PAUSE_PIPELINE = 2  # a pipelined request waits for the current one
PAUSE_TUNNEL = 4

PROBE_OK = local_response(200, b"queue")
PROBE_NOT_READY = local_response(503, b"queue not ready\n")
PROBE_VALUE = b"queue"
DEADLINE_TICK_SECONDS = 0.05
# a connection closed with unsent bytes is flushed first; a client that stops reading is cut after this
CLOSE_LINGER_SECONDS = 30.0


class Proxy:
    """What every client connection of the serving port shares."""

    def __init__(self, *, settings: Settings, loop: asyncio.AbstractEventLoop, clock: Clock,
                 breaker: Breaker[Exchange], stats: RequestStats, metrics: Metrics, drainer: Drainer,
                 readiness: ReadinessTracker, pool: UpstreamPool, h2: object | None = None) -> None:
        self.settings = settings
        self.loop = loop
        self.time = loop.time
        self.wall_time = clock.time
        self.breaker = breaker
        self.stats = stats
        self.metrics = metrics
        self.drainer = drainer
        self.readiness = readiness
        self.pool = pool
        self.h2 = h2  # an H2Upstream when the app speaks h2c
        # wall-clock seconds = loop.time() + wall_offset (stats buckets are wall-clock seconds)
        self.wall_offset = clock.time() - loop.time()
        self.request_timeout = settings.revision_timeout_seconds
        self.response_start_timeout = settings.response_start_timeout_seconds
        self.idle_timeout = settings.idle_timeout_seconds
        enabled = [t for t in (self.request_timeout, self.response_start_timeout, self.idle_timeout) if t > 0]
        # every exchange's first deadline is started_at + first_deadline (0: no timeouts at all)
        self.first_deadline = min(enabled) if enabled else 0.0
        # exchanges in arrival order, hence in order of first deadline
        self.timed: dict[Exchange, None] = {}
        self.max_header_bytes = settings.max_header_bytes
        self.connections: set[ClientConnection] = set()
        self.in_flight = 0
        self.closing = False
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._ticker: asyncio.TimerHandle | None = None

    def __call__(self) -> ClientConnection:
        return ClientConnection(self)

    def probe_answer(self, value: bytes | None) -> bytes:
        if value is not None and value != PROBE_VALUE:
            return local_response(400, b"unexpected probe header value: " + value + b"\n")
        if self.readiness.ready and not self.drainer.draining:
            return PROBE_OK
        return PROBE_NOT_READY

    # --- shutdown ------------------------------------------------------------------------
    @property
    def wants_idle(self) -> bool:
        return bool(self._idle_waiters) or self.closing

    def idle(self) -> None:
        """No request is in flight (called by exchanges as the count reaches zero)."""
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self.closing:
            self.close_idle_connections()

    async def wait_idle(self) -> None:
        while self.in_flight > 0:
            waiter = self.loop.create_future()
            self._idle_waiters.append(waiter)
            await waiter

    def begin_closing(self) -> None:
        """After the drain: answer what is in flight, then close every connection as it goes idle."""
        self.closing = True
        self.close_idle_connections()

    def close_idle_connections(self) -> None:
        for connection in list(self.connections):
            connection.close_if_idle()

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.abort()
        self.pool.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._ticker is not None:
            self._ticker.cancel()

    # --- connection timeouts ---------------------------------------------------------------
    def start_sweeping(self) -> None:
        self._sweeper = self.loop.call_later(1.0, self._sweep)
        if self.first_deadline:
            self._ticker = self.loop.call_later(DEADLINE_TICK_SECONDS, self._tick)

    def _tick(self) -> None:
        self.sweep_deadlines(self.time())
        self._ticker = self.loop.call_later(DEADLINE_TICK_SECONDS, self._tick)

    def sweep_deadlines(self, now: float) -> None:
        """Check every exchange whose first deadline has passed (they are at the front)."""
        cutoff = now - self.first_deadline
        due = []
        for exchange in self.timed:
            if exchange.started_at > cutoff:
                break
            due.append(exchange)
        for exchange in due:
            del self.timed[exchange]
            exchange.check_timeout()

    def _sweep(self) -> None:
        now = self.time()
        settings = self.settings
        for connection in list(self.connections):
            connection.check_timeouts(now, header_timeout=settings.header_read_timeout_seconds,
                                      keepalive_timeout=settings.keepalive_timeout_seconds)
        self._sweeper = self.loop.call_later(1.0, self._sweep)


class ClientConnection(RequestHeadBuilder, asyncio.Protocol):
    __slots__ = (
        "proxy", "transport", "_parser", "_url", "_header_bytes", "headers_since", "idle_since",
        "_exchanges", "_parsing", "_read_pause", "write_paused", "closed", "_client_ip", "_upgrading",
        "_upgrade_candidate", "_broken", "_in_request",
    )

    def __init__(self, proxy: Proxy) -> None:
        RequestHeadBuilder.__init__(self)
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._header_bytes = 0
        self.headers_since: float | None = None
        self.idle_since = 0.0
        self._exchanges: deque[Exchange] = deque()
        self._parsing: Exchange | None = None
        self._read_pause = 0
        self.write_paused = False
        self.closed = False
        self._client_ip = b""
        self._upgrading: Exchange | None = None
        self._upgrade_candidate: Exchange | None = None
        self._broken = False
        self._in_request = False

    # --- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self._client_ip = str(peer[0]).encode()
        self.idle_since = self.headers_since = self.proxy.time()
        self.proxy.connections.add(self)
        if self.proxy.closing:
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.proxy.connections.discard(self)
        exchanges = list(self._exchanges)
        self._exchanges.clear()
        for exchange in exchanges:
            exchange.client_gone()

    def eof_received(self) -> bool:
        if self._upgrading is not None and self._upgrading.state != DONE:
            self._upgrading.tunnel_eof_from_client()
            return True
        return False

    def pause_writing(self) -> None:
        self.write_paused = True
        if self._exchanges:
            exchange = self._exchanges[0]
            if exchange.upstream is not None:
                exchange.upstream.pause_reading()
            elif self.proxy.h2 is not None:
                self.proxy.h2.pause(exchange)  # type: ignore[attr-defined]

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._exchanges:
            exchange = self._exchanges[0]
            if exchange.upstream is not None:
                exchange.upstream.resume_reading()
            elif self.proxy.h2 is not None:
                self.proxy.h2.resume(exchange)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self._upgrading is not None:
            self._upgrading.tunnel_from_client(data)
            return
        if self._broken:
            return
        was_in_request = self._in_request
        if was_in_request:  # a request head arriving in pieces: count up to its end
            end = data.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else end + 4
            if self._header_bytes > self.proxy.max_header_bytes:
                self._reject(431, b"request header fields too large\n")
                return
        elif len(data) > self.proxy.max_header_bytes and not self._exchanges:
            if data.find(b"\r\n\r\n", 0, self.proxy.max_header_bytes) < 0:
                self._reject(431, b"request header fields too large\n")
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._begin_upgrade(data[upgrade.args[0]:])
        except httptools.HttpParserCallbackError as error:
            logger.error("queue-proxy failed on a request", exc_info=error.__context__ or error)
            self._reject(500, b"internal error in queue-proxy\n")
        except httptools.HttpParserError as error:
            self._reject(400, b"malformed request: " + str(error).encode("utf-8", "replace")[:200] + b"\n")
        else:
            if self._in_request and not was_in_request:
                # a head began in this read (the connection's first one too, whose clock
                # started at the connection): count what of it this read held
                if self.headers_since is None:
                    self.headers_since = self.proxy.time()
                last_end = data.rfind(b"\r\n\r\n")
                self._header_bytes = len(data) - (last_end + 4 if last_end >= 0 else 0)

    # --- httptools callbacks -----------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        # the first callback of a request (on_message_begin would cost a call per request)
        self._url += url
        self._in_request = True

    def on_headers_complete(self) -> None:
        proxy = self.proxy
        self.headers_since = None
        self._in_request = False
        parser = self._parser
        url = self._url
        self._url = b""
        if self._flags & F_ANY_PROBE:  # RequestHeadBuilder state (read directly: hot path)
            head = self.take_head(b"GET", b"/", http10=False, client_ip=b"")
            exchange = Exchange(proxy, self, parser.get_method(), head, parser.should_keep_alive())
            exchange.local = proxy.probe_answer(head.probe if head.probe is not None else None)
        else:
            http10 = parser.get_http_version() == "1.0"
            head = self.take_head(parser.get_method(), url, http10=http10, client_ip=self._client_ip)
            exchange = Exchange(proxy, self, parser.get_method(), head, parser.should_keep_alive())
            if parser.should_upgrade():
                if head.upgrade is None:  # CONNECT: a tunnel to anywhere is not ours to give
                    exchange.keep_alive = False
                    exchange.local = local_response(405, b"method not allowed\n", close=True)
                else:
                    self._upgrade_candidate = exchange
        self._parsing = exchange
        exchanges = self._exchanges
        exchanges.append(exchange)
        if len(exchanges) == 1:
            exchange.start()
        else:
            self._pause(PAUSE_PIPELINE)

    def on_body(self, body: bytes) -> None:
        exchange = self._parsing
        if exchange is not None:
            exchange.request_body(body)

    def on_message_complete(self) -> None:
        exchange = self._parsing
        self._parsing = None
        if exchange is not None:
            exchange.request_complete()

    # --- used by exchanges ---------------------------------------------------------------
    def write(self, data: bytes | memoryview) -> None:
        if not self.closed:
            self.transport.write(data)  # type: ignore[union-attr]

    def write_eof(self) -> None:
        if not self.closed and self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            transport = self.transport
            if transport is not None:
                transport.close()
                if transport.get_write_buffer_size():
                    self.proxy.loop.call_later(CLOSE_LINGER_SECONDS, transport.abort)

    def close_if_idle(self) -> None:
        if not self._exchanges and not self._in_request:
            self.close()

    def pause_reading_for_body(self) -> None:
        self._pause(PAUSE_BODY)

    def resume_reading_for_body(self) -> None:
        self._resume(PAUSE_BODY)

    def start_tunnel(self, exchange: Exchange) -> None:
        self._upgrading = exchange
        self._resume(PAUSE_BODY)

    def exchange_finished(self, exchange: Exchange, keep_alive: bool) -> None:
        exchanges = self._exchanges
        if not exchanges or exchanges[0] is not exchange:
            return
        exchanges.popleft()
        if self._upgrading is exchange or self._upgrade_candidate is exchange:
            keep_alive = False  # the parser is past an Upgrade: this connection carries no more requests
        if not keep_alive or self._broken:
            exchanges.clear()
            self.close()
            return
        self.idle_since = exchange.started_at
        if exchanges:
            if len(exchanges) == 1:
                self._resume(PAUSE_PIPELINE)
            exchanges[0].start()
        elif self.proxy.closing and not self._in_request:
            self.close()

    def check_timeouts(self, now: float, *, header_timeout: float, keepalive_timeout: float) -> None:
        if self._exchanges or self.closed:
            return
        if self.headers_since is not None and header_timeout and now - self.headers_since > header_timeout:
            if self._in_request:
                self.write(local_response(408, b"request header timeout\n", close=True))
            self.close()
        elif keepalive_timeout and self.headers_since is None and now - self.idle_since > keepalive_timeout:
            self.close()

    # --- internals -------------------------------------------------------------------
    def _begin_upgrade(self, rest: bytes) -> None:
        exchange = self._upgrade_candidate
        self._upgrade_candidate = None
        if exchange is None or exchange.state == DONE:
            self._broken = True  # answered locally (CONNECT, probe): nothing to tunnel to
            return
        self._upgrading = exchange
        if rest:
            exchange.tunnel_from_client(rest)

    def _reject(self, status: int, message: bytes) -> None:
        """The client sent something unparseable: answer if we can, then close."""
        self._broken = True
        self._in_request = False
        self.headers_since = None
        exchange = self._parsing
        exchanges = self._exchanges
        if exchange is not None and exchanges and exchanges[0] is exchange and exchange.state != DONE:
            exchange.client_error(status, message)
        elif not exchanges:
            self.write(local_response(status, message, close=True))
            self.close()
        else:  # the current exchange is fine; a pipelined request behind it is not
            active = exchanges[0]
            exchanges.clear()
            exchanges.append(active)
            active.keep_alive = False
            self._pause(PAUSE_PIPELINE)

    def _pause(self, reason: int) -> None:
        if not self._read_pause and not self.closed:
            self.transport.pause_reading()  # type: ignore[union-attr]
        self._read_pause |= reason

    def _resume(self, reason: int) -> None:
        if self._read_pause & reason:
            self._read_pause &= ~reason
            if not self._read_pause and not self.closed:
                self.transport.resume_reading()  # type: ignore[union-attr]
