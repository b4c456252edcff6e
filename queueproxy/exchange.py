"""One request through the queue-proxy: admission, dispatch to the app, timeouts, the answer.

An ``Exchange`` is created by the client connection when a request's headers are in. It
counts the request in the stats, takes a breaker slot (or waits, or is refused with 503),
sends the rewritten head and streams the body to an app connection, passes the app's
response bytes back, and enforces the revision's timeouts (504 before the response
starts; after, the response is ended as Knative's queue-proxy ends it: see
``_end_at_timeout``). Whatever way it ends, ``_finish`` runs exactly once and gives back
the breaker slot. Side effects: writes on the client and app transports.

Timeouts cost no timer per request: every exchange shares the same timeout lengths, so
deadlines come in arrival order and the proxy keeps exchanges in an insertion-ordered
dict that a coarse tick sweeps from the front (``Proxy.sweep_deadlines``). Only an
exchange still alive at its first deadline (idle timeout, long streams) gets its own
timer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from queueproxy.breaker import Admission
from queueproxy.framing import CHUNKED, LENGTH, UNTIL_CLOSE, reason_phrase, with_connection_close
from queueproxy.headers import F_BODY, F_CHUNKED, F_EXPECT_CONTINUE, F_PROXIED, RequestHead

if TYPE_CHECKING:
    from queueproxy.proxy import ClientConnection, Proxy
    from queueproxy.upstream import UpstreamConnection

logger = logging.getLogger(__name__)

# states
NEW = 0
WAITING = 1  # queued in the breaker
CONNECTING = 2  # holds a slot, dialling the app
ACTIVE = 3  # request sent (or being sent) to the app
TUNNEL = 4  # upgraded (WebSocket): raw bytes both ways
DONE = 5

CLIENT_CLOSED_REQUEST = 499  # recorded in metrics when the client went away first
PENDING_BODY_LIMIT = 256 * 1024  # bytes of request body held while waiting for the app
TIMEOUT_BODY = b"request timeout"
# a chunked response ended by a timeout: the message as its last chunk, then the end
TIMEOUT_LAST_CHUNKS = b"%x\r\n%s\r\n0\r\n\r\n" % (len(TIMEOUT_BODY), TIMEOUT_BODY)
# how long a timeout waits for the app to finish the chunk it is in the middle of
CHUNK_END_GRACE_SECONDS = 1.0
QUEUE_FULL_BODY = b"pending request queue full\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def local_response(status: int, body: bytes, *, close: bool = False, head_only: bool = False) -> bytes:
    """A complete small answer from the queue-proxy itself."""
    head = b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n%s\r\n" % (
        status, reason_phrase(status), len(body), b"Connection: close\r\n" if close else b"",
    )
    return head if head_only else head + body


class Exchange:
    __slots__ = (
        "proxy", "client", "method", "head", "proxied", "keep_alive", "state", "pending", "pending_size",
        "request_done", "upstream", "response_started", "status", "app_status", "started_at", "dispatched_at",
        "last_activity", "timer", "holds_slot", "tunnel_buffer", "retried", "body_sent", "local", "h2_stream",
        "tunnel_eofs",
    )

    def __init__(self, proxy: Proxy, client: ClientConnection, method: bytes, head: RequestHead,
                 keep_alive: bool) -> None:
        self.proxy = proxy
        self.client = client
        self.method = method
        self.head = head
        self.proxied = head.flags & F_PROXIED
        self.keep_alive = keep_alive
        self.state = NEW
        self.pending: list[bytes] | None = None  # body chunks (unframed) before an app connection is attached
        self.pending_size = 0
        self.request_done = False  # the client has sent the whole request
        self.upstream: UpstreamConnection | None = None
        self.response_started = False
        self.status = 0
        self.app_status = 0
        self.started_at = 0.0
        self.dispatched_at = 0.0
        self.last_activity = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.holds_slot = False
        self.tunnel_buffer: list[bytes] | None = None
        self.retried = False
        self.body_sent = False
        self.local: bytes | None = None  # a prepared answer (probes) instead of a trip to the app
        self.h2_stream: object | None = None
        self.tunnel_eofs = 0  # bit 1: the client half-closed the tunnel, bit 2: the app did

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """The client connection made this its current exchange: admit and dispatch it."""
        if self.local is not None:
            self.state = DONE
            self.client.write(self.local if self.keep_alive else with_connection_close(self.local))
            self.client.exchange_finished(self, self.keep_alive)
            return
        proxy = self.proxy
        now = self.started_at = self.last_activity = self.dispatched_at = proxy.time()
        if proxy.drainer.draining:
            proxy.drainer.request_seen(now)
        proxy.stats.request_in(now + proxy.wall_offset, self.proxied)
        proxy.in_flight += 1
        if proxy.first_deadline:
            proxy.timed[self] = None
        admission = proxy.breaker.admit(self)
        if admission is Admission.ADMITTED:
            self.holds_slot = True
            if proxy.h2 is not None and self.head.upgrade is None:
                self.dispatch()
                return
            # the common case, inlined: a kept-alive app connection is free
            idle = proxy.pool.idle
            while idle:
                connection = idle.popitem()[0]
                if connection.closed:
                    continue
                if self.head.flags & F_BODY:
                    self.attach(connection)
                    return
                self.state = ACTIVE
                self.upstream = connection
                connection.start(self, self.head.head, False, self.method == b"HEAD")
                if self.client.write_paused:
                    connection.pause_reading()
                return
            self.state = CONNECTING
            proxy.pool.connect(self)
        elif admission is Admission.QUEUED:
            self.state = WAITING
        else:
            self._answer_locally(503, QUEUE_FULL_BODY)

    def slot_granted(self) -> None:
        """The breaker handed this waiting exchange a slot."""
        self.holds_slot = True
        if self.state == WAITING:
            self.dispatch()
        else:  # cannot happen: cancelled waiters leave the breaker; give the slot straight back
            self._release_slot()

    def dispatch(self) -> None:
        proxy = self.proxy
        self.dispatched_at = proxy.time()
        if proxy.h2 is not None and self.head.upgrade is None:
            self.state = ACTIVE
            proxy.h2.submit(self)  # type: ignore[attr-defined]
            return
        connection = proxy.pool.take()
        if connection is None:
            self.state = CONNECTING
            proxy.pool.connect(self)
        else:
            self.attach(connection)

    def attach(self, connection: UpstreamConnection) -> bool:
        """Send the request on ``connection``. False if this exchange no longer wants one."""
        if self.state == DONE or self.upstream is not None:
            return False
        self.state = ACTIVE
        self.upstream = connection
        head = self.head
        flags = head.flags
        data = head.head
        if flags & F_BODY:
            chunked = bool(flags & F_CHUNKED)
            if flags & F_EXPECT_CONTINUE and not self.request_done:
                self.client.write(CONTINUE)
            pending = self.pending
            if pending:
                self.pending = None
                self.pending_size = 0
                self.body_sent = True
                if chunked:
                    data += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in pending)
                else:
                    data += b"".join(pending)
                self.client.resume_reading_for_body()
            if self.request_done and chunked:
                data += b"0\r\n\r\n"
        else:
            chunked = False
        connection.start(self, data, chunked, self.method == b"HEAD")
        if self.client.write_paused:
            connection.pause_reading()
        return True

    # --- request body from the client ----------------------------------------------------
    def request_body(self, chunk: bytes) -> None:
        if self.state == DONE:
            return
        upstream = self.upstream
        if upstream is not None:
            self.body_sent = True
            upstream.send_body(chunk)
            return
        if self.h2_stream is not None:
            self.proxy.h2.send_body(self, chunk)  # type: ignore[attr-defined]
            return
        if self.pending is None:
            self.pending = [chunk]
        else:
            self.pending.append(chunk)
        self.pending_size += len(chunk)
        if self.pending_size > PENDING_BODY_LIMIT:
            self.client.pause_reading_for_body()

    def request_complete(self) -> None:
        self.request_done = True
        if self.state == DONE:
            return
        if self.upstream is not None:
            if self.head.flags & F_CHUNKED:
                self.upstream.end_body()
        elif self.h2_stream is not None:
            self.proxy.h2.end_body(self)  # type: ignore[attr-defined]

    def take_pending_body(self) -> list[bytes]:
        pending = self.pending or []
        self.pending = None
        self.pending_size = 0
        if pending:
            self.client.resume_reading_for_body()
        return pending

    # --- response from the app -------------------------------------------------------
    def response_data(self, data: bytes | memoryview, status: int) -> None:
        if not self.response_started:
            self.response_started = True
            self.status = self.app_status = status
        self.client.write(data)
        if self.proxy.idle_timeout:
            self.last_activity = self.proxy.time()

    def response_end(self, data: bytes | memoryview, status: int, upstream_keep_alive: bool,
                     connection: UpstreamConnection, *, reusable: bool = True) -> None:
        """The last bytes of the app's response: pass them on and finish.

        ``upstream_keep_alive`` is what the app's head said (the client read the same head,
        so the client connection closes when it said close); ``reusable`` False keeps the
        app connection out of the pool all the same.
        """
        self.upstream = None
        if self.state == DONE:
            connection.close()
            return
        if not self.response_started:
            self.response_started = True
            self.status = self.app_status = status
        client = self.client
        if not client.closed:
            client.transport.write(data)  # type: ignore[union-attr]
        proxy = self.proxy
        if upstream_keep_alive and reusable and self.request_done and not proxy.closing:
            if connection._reading_paused:
                connection.resume_reading()
            proxy.pool.idle[connection] = None
        else:
            connection.close()
            if not upstream_keep_alive or not self.request_done:
                self.keep_alive = False
        self._finish()

    def response_closed(self, status: int) -> None:
        """A response without framing ended with the app's connection (it was complete)."""
        self.upstream = None
        if self.state == DONE:
            return
        if not self.response_started:
            self.status = self.app_status = status
        self.keep_alive = False  # the client also needs the close to see the end
        self._finish()

    def upstream_failed(self, error: BaseException, connection: UpstreamConnection | None,
                        *, malformed: bool = False) -> None:
        """The app connection could not be opened, broke, or sent garbage."""
        if connection is not None and connection is not self.upstream:
            return
        self.upstream = None
        if self.state == DONE:
            return
        if (connection is not None and connection.requests > 1 and not malformed and not self.retried
                and connection.received == 0 and not self.body_sent and not self.head.flags & F_BODY):
            # a kept-alive connection the app closed just as we reused it: try once on a fresh one
            self.retried = True
            self.state = CONNECTING
            self.proxy.pool.connect(self)
            return
        logger.debug("app request failed: %r", error)
        if self.response_started:
            self._cut()
        else:
            message = "the app sent an invalid response" if malformed else f"error reaching the app: {error}"
            self._answer_locally(502, message.encode() + b"\n")

    def upstream_pause_writing(self) -> None:
        self.client.pause_reading_for_body()

    def upstream_resume_writing(self) -> None:
        self.client.resume_reading_for_body()

    # --- reframed responses (HTTP/2 to the app) ---------------------------------------
    def start_response(self, status: int, head: bytes) -> None:
        self.response_started = True
        self.status = self.app_status = status
        self.client.write(head)
        if self.proxy.idle_timeout:
            self.last_activity = self.proxy.time()

    def response_body(self, data: bytes) -> None:
        self.client.write(data)
        if self.proxy.idle_timeout:
            self.last_activity = self.proxy.time()

    def reframed_complete(self, *, keep_alive: bool) -> None:
        self.h2_stream = None
        if self.state == DONE:
            return
        if not keep_alive or not self.request_done:
            self.keep_alive = False
        self._finish()

    def reframed_failed(self, error: BaseException) -> None:
        self.h2_stream = None
        if self.state == DONE:
            return
        logger.debug("app stream failed: %r", error)
        if self.response_started:
            self._cut()
        else:
            self._answer_locally(502, f"error reaching the app: {error}\n".encode())

    # --- upgrades (WebSocket) ----------------------------------------------------------
    def upgraded(self, data: bytes | memoryview) -> None:
        """The app answered 101: from here on both sides are a raw byte tunnel."""
        self.response_started = True
        self.status = self.app_status = 101
        self.state = TUNNEL
        self._cancel_timer()
        self.client.write(data)
        self.client.start_tunnel(self)
        if self.tunnel_buffer and self.upstream is not None:
            for chunk in self.tunnel_buffer:
                self.upstream.write_raw(chunk)
        self.tunnel_buffer = None

    def tunnel_from_client(self, data: bytes) -> None:
        if self.state == TUNNEL and self.upstream is not None:
            self.upstream.write_raw(data)
        elif self.state != DONE:
            if self.tunnel_buffer is None:
                self.tunnel_buffer = []
            self.tunnel_buffer.append(data)

    def client_write(self, data: bytes | memoryview) -> None:
        self.client.write(data)

    def tunnel_eof_from_app(self) -> None:
        """Half-close from the app: pass it on; once both sides have finished, close both."""
        self.client.write_eof()
        self.tunnel_eofs |= 2
        if self.tunnel_eofs == 3:
            self.tunnel_closed()

    def tunnel_eof_from_client(self) -> None:
        if self.upstream is not None:
            self.upstream.write_eof()
        self.tunnel_eofs |= 1
        if self.tunnel_eofs == 3:
            self.tunnel_closed()

    def tunnel_closed(self) -> None:
        if self.state == DONE:
            return
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.close()
        self.keep_alive = False
        self._finish()
        self.client.close()

    # --- the client side ---------------------------------------------------------------
    def client_gone(self) -> None:
        """The client connection closed while this exchange was under way."""
        if self.state == DONE:
            return
        if self.state == NEW and self.started_at == 0.0:  # a pipelined request that never started
            self.state = DONE
            return
        if self.state == TUNNEL:
            self.tunnel_closed()
            return
        if self.state == WAITING:
            self.proxy.breaker.cancel(self)
        self._abort_upstream()
        if not self.response_started:
            self.status = CLIENT_CLOSED_REQUEST
        self.keep_alive = False
        self._finish()

    def client_error(self, status: int, message: bytes) -> None:
        """The client's request turned out malformed mid-body (e.g. bad chunking)."""
        if self.state == DONE:
            return
        if self.state == NEW and self.started_at == 0.0:
            self.state = DONE
            return
        if self.state == WAITING:
            self.proxy.breaker.cancel(self)
        self._abort_upstream()
        if self.response_started:
            self._cut()
        else:
            self._answer_locally(status, message, close=True)

    # --- timeouts ----------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        proxy = self.proxy
        deadline = None
        if proxy.request_timeout:
            deadline = self.started_at + proxy.request_timeout
        if proxy.response_start_timeout and not self.response_started:
            candidate = self.started_at + proxy.response_start_timeout
            deadline = candidate if deadline is None else min(deadline, candidate)
        if proxy.idle_timeout:
            candidate = self.last_activity + proxy.idle_timeout
            deadline = candidate if deadline is None else min(deadline, candidate)
        return deadline

    def check_timeout(self) -> None:
        """Called at or after a deadline: time out, or set a timer for the next deadline."""
        self.timer = None
        if self.state in (DONE, TUNNEL):
            return
        proxy = self.proxy
        now = proxy.time()
        deadline = self.next_deadline()
        if deadline is None:
            return
        if deadline > now:
            self.timer = proxy.loop.call_at(deadline, self.check_timeout)
            return
        if self.state == WAITING:
            proxy.breaker.cancel(self)
        if self.response_started:
            self._end_at_timeout()
        else:
            self._answer_locally(504, TIMEOUT_BODY)

    def _end_at_timeout(self) -> None:
        """A timeout after the response started: end it as Knative's queue-proxy does.

        Knative's timeout handler (``timeoutSeconds``, and ``idleTimeoutSeconds``; the
        response-start timeout no longer applies once the response started) writes its
        message into the started response and returns, and Go's server then ends the
        response. So a chunked body gets ``request timeout`` as its last chunk and the
        terminating chunk, and the client sees a complete response (when the app is in
        the middle of a chunk, the rest of that chunk is passed on first, for at most
        ``CHUNK_END_GRACE_SECONDS``; the connection is cut if it does not come). A body
        that ends with the connection gets the message, then the close. A body with a
        Content-Length cannot be ended early: the connection closes after what the app
        sent, so the client sees it short, as it is. (Knative writes the message into
        that body too, where it would pass for the app's data; we do not.)
        """
        upstream = self.upstream
        if upstream is not None:
            framing = upstream.response_framing()
        elif self.h2_stream is not None:
            framing = self.proxy.h2.response_framing(self)  # type: ignore[attr-defined]
        else:
            framing = LENGTH
        if framing == CHUNKED:
            if upstream is None or upstream.at_chunk_boundary:
                self._end_chunked()
            else:
                upstream.end_at_boundary = True
                self.timer = self.proxy.loop.call_later(CHUNK_END_GRACE_SECONDS, self._chunk_end_overdue)
            return
        self._abort_upstream()
        self.keep_alive = False
        if framing == UNTIL_CLOSE:
            self.client.write(TIMEOUT_BODY)
        self._finish()  # the client connection closes once what it was sent is flushed

    def chunk_boundary_reached(self) -> None:
        """The app finished the chunk a timeout was waiting for (see ``_end_at_timeout``)."""
        if self.state != DONE:
            self._end_chunked()

    def _chunk_end_overdue(self) -> None:
        self.timer = None
        if self.state != DONE:
            self._cut()

    def _end_chunked(self) -> None:
        self._abort_upstream()
        if not self.request_done:
            self.keep_alive = False  # the rest of the request body would be read as a new request
        self.client.write(TIMEOUT_LAST_CHUNKS)
        self._finish()

    def _cancel_timer(self) -> None:
        self.proxy.timed.pop(self, None)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # --- endings -----------------------------------------------------------------------
    def _abort_upstream(self) -> None:
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.abort()
        elif self.h2_stream is not None:
            self.proxy.h2.cancel(self)  # type: ignore[attr-defined]
            self.h2_stream = None

    def _answer_locally(self, status: int, body: bytes, *, close: bool = False) -> None:
        self._abort_upstream()
        self.status = status
        if not self.request_done or not self.keep_alive:
            close = True  # the rest of the request body would be read as a new request; or the client said close
        if close:
            self.keep_alive = False
        self.client.write(local_response(status, body, close=close, head_only=self.method == b"HEAD"))
        self._finish()

    def _cut(self) -> None:
        """End a response that already started: the client sees the connection close early."""
        self._abort_upstream()
        self.keep_alive = False
        self.client.abort()
        self._finish()

    def _release_slot(self) -> None:
        if self.holds_slot:
            self.holds_slot = False
            waiter = self.proxy.breaker.release()
            if waiter is not None:
                waiter.slot_granted()

    def _finish(self) -> None:
        if self.state == DONE:
            return
        self.state = DONE
        proxy = self.proxy
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if proxy.first_deadline:
            proxy.timed.pop(self, None)
        now = proxy.time()
        code = self.status or 502
        bucket = proxy.metrics.record(code, now - self.started_at, self.app_status, now - self.dispatched_at)
        proxy.stats.request_out(now + proxy.wall_offset, self.proxied, code, bucket)
        proxy.in_flight -= 1
        self.pending = None
        self.client.exchange_finished(self, self.keep_alive)
        if self.holds_slot:
            self.holds_slot = False
            waiter = proxy.breaker.release()
            if waiter is not None:
                waiter.slot_granted()
        if proxy.in_flight == 0 and proxy.wants_idle:
            proxy.idle()
