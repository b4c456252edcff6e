"""Small real servers for the activator's functional tests: fake pods and a fake autoscaler."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from knserve.stats_wire import RevisionStat, decode_stat_batch


@dataclass
class FakePod:
    """A queue-proxy stand-in: answers the activator's probe and echoes requests.

    ``?sleep=<seconds>`` delays the answer; ``?stall=<seconds>`` streams a first piece, then
    goes silent that long before the rest; ``ready`` decides the probe's answer. A WebSocket
    handshake on ``/ws`` is accepted: each message comes back as ``<pod>: <message>``, and
    ``close`` makes the pod close the socket.
    """

    name: str
    ready: bool = True
    in_flight: int = 0
    max_in_flight: int = 0
    served: int = 0
    runner: web.AppRunner | None = None
    port: int = 0
    seen_headers: list[dict[str, str]] = field(default_factory=list)

    @property
    def dest(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> FakePod:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/healthz" and request.headers.get("K-Network-Probe") == "queue":
            return web.Response(status=200 if self.ready else 503, text="queue" if self.ready else "not ready")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.seen_headers.append(dict(request.headers))
            if request.path == "/ws":
                return await self._websocket(request)
            delay = float(request.query.get("sleep", "0"))
            if delay:
                await asyncio.sleep(delay)
            if "stall" in request.query:  # stream a first piece, go silent, then finish
                response = web.StreamResponse()
                await response.prepare(request)
                await response.write(b"first piece;")
                await asyncio.sleep(float(request.query["stall"]))
                await response.write(b"the rest")
                await response.write_eof()
                self.served += 1
                return response
            body = await request.read()
            self.served += 1
            return web.json_response(
                {
                    "pod": self.name,
                    "method": request.method,
                    "path": request.path_qs,
                    "headers": dict(request.headers),
                    "body": body.decode(errors="replace"),
                }
            )
        finally:
            self.in_flight -= 1

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type != web.WSMsgType.TEXT or message.data == "close":
                break
            await socket.send_str(f"{self.name}: {message.data}")
        await socket.close()
        self.served += 1
        return socket


@dataclass
class FakeAutoscaler:
    """Receives the activator's stat batches on POST /stats."""

    batches: list[list[RevisionStat]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    url: str = ""
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> FakeAutoscaler:
        app = web.Application()
        app.router.add_post("/stats", self._stats)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _stats(self, request: web.Request) -> web.Response:
        self.batches.append(decode_stat_batch(await request.read()))
        self._arrived.set()
        return web.Response(status=202)

    def stats_for(self, revision: str) -> list[RevisionStat]:
        return [m for batch in self.batches for m in batch if m.revision == revision]

    async def wait_for(self, revision: str, *, timeout: float = 5.0) -> list[RevisionStat]:
        async with asyncio.timeout(timeout):
            while not self.stats_for(revision):
                self._arrived.clear()
                await self._arrived.wait()
        return self.stats_for(revision)
