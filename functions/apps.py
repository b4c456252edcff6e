"""WSGI and ASGI apps as functions: one request in, one ``HttpResponse`` out.

``call_wsgi`` builds PEP 3333's environ and collects what the app writes; ``call_asgi`` runs
one ASGI 3 ``http`` exchange (the body in one ``http.request`` message, the answer gathered from
``http.response.start``/``body``). ``asgi_lifespan_startup`` sends ``lifespan.startup`` once,
for apps (FastAPI, Starlette) that open their resources there; an app that does not speak
lifespan is served all the same.

Side effects: none of their own; the app does what it does.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable, Iterable
from typing import Any

from functions.styles import HandlerError, HttpRequest, HttpResponse

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_environ(request: HttpRequest, *, server_port: int) -> dict[str, Any]:
    host = request.header("Host") or "localhost"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": request.query,
        "SERVER_NAME": host.rsplit(":", 1)[0],
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": request.client,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(request.body)),
    }
    for key, value in request.headers:
        name = key.upper().replace("-", "_")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif name != "CONTENT_LENGTH":
            http_name = f"HTTP_{name}"
            environ[http_name] = f"{environ[http_name]},{value}" if http_name in environ else value
    return environ


def call_wsgi(app: WsgiApp, request: HttpRequest, *, server_port: int) -> HttpResponse:
    started: list[tuple[int, list[tuple[str, str]]]] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [(int(status.split(" ", 1)[0]), list(headers))]
        return written.append

    result = app(wsgi_environ(request, server_port=server_port), start_response)
    try:
        for chunk in result:
            written.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise HandlerError("The WSGI app returned without calling start_response.")
    status, headers = started[0]
    return HttpResponse(status, b"".join(written), tuple(headers))


def asgi_scope(request: HttpRequest, *, server_port: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": request.query.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers],
        "client": (request.client, 0) if request.client else None,
        "server": ("127.0.0.1", server_port),
    }


async def call_asgi(app: Any, request: HttpRequest, *, server_port: int) -> HttpResponse:
    sent_request = False
    status = 0
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            headers.extend((k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers") or [])
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body") or b""))
            if not message.get("more_body"):
                finished.set()

    await app(asgi_scope(request, server_port=server_port), receive, send)
    finished.set()
    if not status:
        raise HandlerError("The ASGI app returned without starting a response.")
    return HttpResponse(status, b"".join(chunks), tuple(headers))


async def asgi_lifespan_startup(app: Any) -> asyncio.Future[Any]:
    """Tell the app it starts; an app that does not speak lifespan is left alone. Returns the
    lifespan task (it waits for a shutdown message; the caller keeps it)."""
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})
    answered = asyncio.Event()
    failure: list[str] = []

    async def receive() -> dict[str, Any]:
        return await messages.get()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.failed":
            failure.append(str(message.get("message") or "lifespan startup failed"))
        answered.set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
    task: asyncio.Future[Any] = asyncio.ensure_future(app(scope, receive, send))
    done, _ = await asyncio.wait({task, asyncio.ensure_future(answered.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task in done and task.exception() is not None:
        return task  # no lifespan support: served without it, as uvicorn's "auto" does
    if failure:
        raise HandlerError(f"The ASGI app failed to start: {failure[0]}")
    return task
