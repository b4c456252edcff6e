"""Forwarding one request to one pod's queue-proxy and its answer back.

The request keeps its method, path, query, body and headers, including ``Host`` and the
``Knative-Serving-*`` revision headers (the queue-proxy strips those); hop-by-hop headers
are dropped, ``X-Forwarded-For`` gets the client's address and ``K-Proxy-Request:
activator`` marks the request as proxied so the queue-proxy reports it apart. Small bodies
(known length up to ``BUFFER_LIMIT``) are read whole, larger or chunked ones stream both
ways. The revision's response-start and idle timeouts bound the waits on the pod. A request
to switch protocols (WebSocket) keeps its ``Connection``/``Upgrade`` headers; when the pod
switches, ``activator.tunnel`` joins the two connections (no timeout applies from then on).
Side effects: network I/O on the given session.
"""

from __future__ import annotations

import asyncio
from typing import Final

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict

from activator.tunnel import is_upgrade, switch, with_upgrade
from knserve.networking import PROXY_HEADER, PROXY_HEADER_ACTIVATOR_VALUE

BUFFER_LIMIT: Final = 1 << 20
HOP_BY_HOP: Final = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)
_RESPONSE_SKIP: Final = HOP_BY_HOP | {"content-length"}
_AUTO_HEADERS: Final = (hdrs.ACCEPT, hdrs.ACCEPT_ENCODING, hdrs.USER_AGENT, hdrs.CONTENT_TYPE)


def upstream_headers(request: web.BaseRequest) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        if name.lower() not in HOP_BY_HOP:
            headers.add(name, value)
    peer = request.remote
    if peer:
        prior = headers.get(hdrs.X_FORWARDED_FOR)
        headers[hdrs.X_FORWARDED_FOR] = f"{prior}, {peer}" if prior else peer
    headers[PROXY_HEADER] = PROXY_HEADER_ACTIVATOR_VALUE
    return headers


def _small(length: int | None) -> bool:
    return length is not None and length <= BUFFER_LIMIT


class Progress:
    """Whether the answer to the client has started (then it can only be cut, not replaced),
    and the request's overall timeout, lifted once the pod switched protocols."""

    __slots__ = ("started", "overall")

    def __init__(self, overall: asyncio.Timeout | None = None) -> None:
        self.started = False
        self.overall = overall

    def switched(self) -> None:
        self.started = True
        if self.overall is not None:
            self.overall.reschedule(None)


async def forward(
    request: web.BaseRequest,
    dest: str,
    session: aiohttp.ClientSession,
    progress: Progress,
    *,
    start_deadline: float | None = None,
    idle_timeout: float | None = None,
) -> web.StreamResponse:
    """Send ``request`` to ``http://dest`` and answer with what the pod answers.

    ``start_deadline`` (loop time) bounds the wait for the pod's response headers;
    ``idle_timeout`` the silence between two pieces of its body. Both raise TimeoutError.
    """
    upgrade = is_upgrade(request)
    headers = upstream_headers(request)
    if upgrade:
        headers = with_upgrade(headers, request)
    body: object = None
    if request.body_exists:
        body = await request.read() if _small(request.content_length) else request.content.iter_any()
    skip = [name for name in _AUTO_HEADERS if name not in headers]
    async with asyncio.timeout_at(start_deadline):
        upstream = await session.request(
            request.method,
            f"http://{dest}{request.rel_url}",
            headers=headers,
            data=body,
            skip_auto_headers=skip,
            allow_redirects=False,
        )
    if upgrade and upstream.status == 101:
        progress.switched()
        try:
            return await switch(request, upstream)
        finally:
            upstream.close()
    try:
        answer_headers: CIMultiDict[str] = CIMultiDict(
            (name, value) for name, value in upstream.headers.items() if name.lower() not in _RESPONSE_SKIP
        )
        if _small(upstream.content_length) or request.method == hdrs.METH_HEAD:
            async with asyncio.timeout(idle_timeout):
                payload = await upstream.read()
            return web.Response(status=upstream.status, reason=upstream.reason, headers=answer_headers, body=payload)
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=answer_headers)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        progress.started = True
        await response.prepare(request)
        while True:
            async with asyncio.timeout(idle_timeout):
                chunk = await upstream.content.readany()
            if not chunk:
                break
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        upstream.release()
