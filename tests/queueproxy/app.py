"""A test app for the queue-proxy's functional tests, run as a real process.

``python -m tests.queueproxy.app PORT`` serves (aiohttp):
  /            "hello"
  /sleep?s=N   answers after N seconds
  /stream?s=N  sends a first chunk at once, then one chunk every 0.1 s for N seconds
  /stall?s=N   sends a first chunk at once, then nothing for N seconds, then a last one
  /trickle?size=N&s=T   N bytes with a Content-Length, sent in 100 pieces over T seconds
  /hold        holds the request until /release (or ?s=N seconds); tracks concurrency
  /release     releases every held request; /concurrency -> {"now": n, "max": m}; /reset
  /download?size=N[&seed=S]   N bytes ("x", or pseudo-random from seed S), streamed in 64 KiB pieces
  /upload      reads the body as it comes and answers its size
  /headers     the request's headers as JSON
  /close-mid   starts a 1 MB response, sends part of it and closes the connection
  /drop        closes the connection without answering
  /ws          WebSocket echo
  /ready       200 once the file named by READY_FILE exists (when set), else 200
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys

from aiohttp import WSMsgType, web

state = {"now": 0, "max": 0}
release_event = asyncio.Event()


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def sleep(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.Response(text="slept")


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"first\n")
    loop = asyncio.get_running_loop()
    end = loop.time() + float(request.query.get("s", "5"))
    while loop.time() < end:
        await asyncio.sleep(0.1)
        await response.write(b"more\n")
    await response.write_eof()
    return response


async def stall(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"first\n")
    await asyncio.sleep(float(request.query.get("s", "5")))
    await response.write(b"late\n")
    await response.write_eof()
    return response


async def trickle(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("size", "1000"))
    pause = float(request.query.get("s", "10")) / 100
    response = web.StreamResponse()
    response.content_length = size
    await response.prepare(request)
    piece = b"x" * max(1, size // 100)
    sent = 0
    while sent < size:
        part = piece[: size - sent]
        await response.write(part)
        sent += len(part)
        await asyncio.sleep(pause)
    await response.write_eof()
    return response


def download_bytes(size: int, seed: int) -> bytes:
    """What /download?size=N&seed=S sends (tests compute the same to compare)."""
    return random.Random(seed).randbytes(size)


async def hold(request: web.Request) -> web.Response:
    state["now"] += 1
    state["max"] = max(state["max"], state["now"])
    try:
        seconds = request.query.get("s")
        if seconds is None:
            await release_event.wait()
        else:
            await asyncio.sleep(float(seconds))
    finally:
        state["now"] -= 1
    return web.Response(text="held")


async def release(request: web.Request) -> web.Response:
    global release_event
    event, release_event = release_event, asyncio.Event()
    event.set()
    return web.Response(text="released")


async def concurrency(request: web.Request) -> web.Response:
    return web.json_response(state)


async def reset(request: web.Request) -> web.Response:
    state["max"] = state["now"]
    return web.json_response(state)


async def download(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("size", "0"))
    seed = request.query.get("seed")
    response = web.StreamResponse()
    response.content_length = size
    await response.prepare(request)
    if seed is not None:
        content = download_bytes(size, int(seed))
        for offset in range(0, size, 65536):
            await response.write(content[offset:offset + 65536])
        await response.write_eof()
        return response
    block = b"x" * 65536
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        await response.write(piece)
        sent += len(piece)
    await response.write_eof()
    return response


async def upload(request: web.Request) -> web.Response:
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
    return web.Response(text=str(total))


async def headers(request: web.Request) -> web.Response:
    return web.json_response({"headers": [[k, v] for k, v in request.headers.items()], "host": request.host,
                              "method": request.method, "path_qs": request.path_qs, "version": str(request.version)})


async def close_mid(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_length = 1_000_000
    await response.prepare(request)
    await response.write(b"y" * 1000)
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.abort()
    return response


async def drop(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.abort()
    return web.Response(text="never sent")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str("echo:" + message.data)
        elif message.type == WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


async def ready(request: web.Request) -> web.Response:
    path = os.environ.get("READY_FILE")
    if path and not os.path.exists(path):
        return web.Response(status=503, text="not yet")
    return web.Response(text="ready")


def make_app() -> web.Application:
    app = web.Application(client_max_size=1 << 40)
    app.add_routes([
        web.get("/", hello), web.post("/", hello), web.get("/sleep", sleep), web.get("/stream", stream),
        web.get("/stall", stall), web.get("/trickle", trickle),
        web.get("/hold", hold), web.get("/release", release), web.get("/concurrency", concurrency),
        web.get("/reset", reset), web.get("/download", download), web.post("/upload", upload),
        web.put("/upload", upload), web.route("*", "/headers", headers), web.get("/close-mid", close_mid), web.get("/drop", drop),
        web.get("/ws", websocket), web.get("/ready", ready),
    ])
    return app


if __name__ == "__main__":
    port = int(sys.argv[1])
    print(json.dumps({"port": port}), flush=True)
    web.run_app(make_app(), host="127.0.0.1", port=port, print=None, access_log=None)
