"""A test app that speaks WebSocket: ``/ws`` echoes every text message as ``<pid>: <message>``.

Run by the local node for the image ``knserve.dev/e2e/websocket`` (the fault-tolerance e2e
tests map it in the image map). Any other path answers ``ok`` (plain HTTP).
Side effects: serves HTTP on ``$PORT`` until SIGTERM.
"""

from __future__ import annotations

import os

from aiohttp import web

IMAGE = "knserve.dev/e2e/websocket"


async def websocket(request: web.Request) -> web.StreamResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        if message.type != web.WSMsgType.TEXT:
            break
        await socket.send_str(f"{os.getpid()}: {message.data}")
    return socket


async def plain(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def main() -> None:
    app = web.Application()
    app.router.add_get("/ws", websocket)
    app.router.add_route("*", "/{tail:.*}", plain)
    web.run_app(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8080")), print=None)


if __name__ == "__main__":
    main()
