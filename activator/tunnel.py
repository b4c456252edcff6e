"""Protocol switches (WebSocket) through the activator: the upgrade request, then raw bytes both ways.

A request that asks to switch protocols (``Connection: upgrade`` with an ``Upgrade`` header)
goes to the pod with both headers kept. When the pod answers ``101 Switching Protocols`` the
answer goes back to the client as it came, and from then on each side's bytes are written to
the other as they arrive, until either side closes (then both are closed). A pod that does not
switch gets an ordinary answer (``forward`` streams it back).

The two connections are aiohttp's: the client's server protocol and the pod's client
protocol both take a stand-in parser (``set_parser``, as aiohttp's own WebSocket code does)
that hands every piece straight to the other side's transport, pausing the reading side while
the writing side's buffer is full.

Side effects: network I/O on the two connections.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict

UPGRADE_TOKEN: Final = "upgrade"
# Headers of the pod's 101 that are not passed on as they are (aiohttp frames the response).
_SWITCH_SKIP: Final = frozenset({"content-length", "transfer-encoding"})


def is_upgrade(request: web.BaseRequest) -> bool:
    """Whether ``request`` asks to switch protocols (``Connection: upgrade`` and ``Upgrade``)."""
    tokens = {token.strip().lower() for value in request.headers.getall(hdrs.CONNECTION, ()) for token in value.split(",")}
    return UPGRADE_TOKEN in tokens and bool(request.headers.get(hdrs.UPGRADE))


def with_upgrade(headers: CIMultiDict[str], request: web.BaseRequest) -> CIMultiDict[str]:
    """``headers`` (hop-by-hop ones already dropped) with the switch the client asked for."""
    headers[hdrs.CONNECTION] = "Upgrade"
    headers[hdrs.UPGRADE] = request.headers[hdrs.UPGRADE]
    return headers


class _Drainable(Protocol):
    async def _drain_helper(self) -> None: ...


class _Pipe:
    """Stands in for a protocol's payload parser: every piece read goes to ``target``.

    While ``target``'s write buffer is above its high-water mark the source stops reading;
    it resumes once the buffer drained (``target_protocol`` is paused and resumed by it).
    """

    def __init__(self, source: asyncio.Transport, target: asyncio.Transport, target_protocol: _Drainable,
                 closed: asyncio.Event) -> None:
        self._source = source
        self._target = target
        self._target_protocol = target_protocol
        self._closed = closed
        self._resuming: asyncio.Task[None] | None = None

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data and not self._target.is_closing():
            self._target.write(data)
            if self._target.get_write_buffer_size() > self._target.get_write_buffer_limits()[1] and self._resuming is None:
                self._source.pause_reading()
                self._resuming = asyncio.get_running_loop().create_task(self._resume(), name="activator-tunnel-resume")
        return False, b""

    async def _resume(self) -> None:
        try:
            await self._target_protocol._drain_helper()
        except ConnectionError:
            self._closed.set()
            return
        finally:
            self._resuming = None
        if not self._source.is_closing():
            self._source.resume_reading()

    def feed_eof(self) -> None:
        self._closed.set()

    def set_exception(self, exc: BaseException, exc_cause: BaseException | None = None) -> None:
        self._closed.set()


async def switch(request: web.BaseRequest, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """Answer ``request`` with the pod's ``101`` (``upstream``) and join the two connections
    until either side closes. ``upstream`` must be a 101 answer to an upgrade request."""
    connection = upstream.connection
    client_transport = request.transport
    if connection is None or connection.protocol is None or connection.transport is None or client_transport is None:
        raise aiohttp.ClientConnectionError("the connection closed while switching protocols")
    pod_protocol: Any = connection.protocol
    pod_transport = connection.transport
    headers: CIMultiDict[str] = CIMultiDict(
        (name, value) for name, value in upstream.headers.items() if name.lower() not in _SWITCH_SKIP)
    response = web.StreamResponse(status=101, reason=upstream.reason, headers=headers)
    response.force_close()
    await response.prepare(request)
    closed = asyncio.Event()
    pod_protocol.read_timeout = None
    # The pod's bytes to the client first (aiohttp hands over what came after its 101 at once).
    pod_protocol.set_parser(_Pipe(pod_transport, client_transport, request.protocol, closed), None)
    request.protocol.set_parser(_Pipe(client_transport, pod_transport, pod_protocol, closed))  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    try:
        await closed.wait()
    finally:
        pod_transport.close()
        client_transport.close()
    return response
