"""The dispatcher marks its dispatches with the ingress token (``K-Call-Dispatch``), the only
value Envoy lets past an ``async: always`` Service; while the token cannot be read it
dispatches nothing. A real nats-server and the queue on loopback, an app standing where the
ingress would be that records the headers of every request it gets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from callqueue.app import QueueProcess
from callqueue.directory import StaticDirectory, Target
from callqueue.store import JetStreamStore
from knserve.callpolicy import RetryPolicy
from tests.support.nats_process import NatsServer
from tests.support.ports import free_port

HOST = "fn.default.example.com"
TOKEN = "the-ingress-token"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


class Queue:
    """The queue process, the app where the ingress would be, and a client of both."""

    def __init__(self, url: str, seen: list[dict[str, str]]) -> None:
        self.url = url
        self.seen = seen
        self.session = aiohttp.ClientSession()

    async def accept(self, **headers: str) -> str:
        sent = {"Host": HOST, "Prefer": "respond-async", **{k.replace("_", "-"): v for k, v in headers.items()}}
        async with self.session.post(self.url + "/", data=b"x", headers=sent) as response:
            assert response.status == 202, await response.text()
            return response.headers["X-Call-Id"]

    async def state(self, call_id: str) -> str:
        async with self.session.get(f"{self.url}/.well-known/knserve/calls/{call_id}", headers={"Host": HOST}) as r:
            assert r.status == 200, await r.text()
            view: dict[str, Any] = await r.json()
            return str(view["state"])

    async def wait_state(self, call_id: str, state: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while (current := await self.state(call_id)) != state:
            assert time.monotonic() < deadline, f"call {call_id} stayed {current}, never {state}"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_queue(nats_server: NatsServer,
                        dispatch_token: Callable[[], str | None] | None) -> AsyncIterator[Queue]:
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append({name.lower(): value for name, value in request.headers.items()})
        return web.Response(text="done")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    app_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", app_port).start()
    directory = StaticDirectory({HOST: Target("default", "fn", HOST, RetryPolicy(max_attempts=3))})
    process = QueueProcess(store=JetStreamStore([nats_server.url], lease=3.0), directory=directory,
                           ingress_url=f"http://127.0.0.1:{app_port}", dispatch_token=dispatch_token)
    port = free_port()
    task = asyncio.create_task(process.run(host="127.0.0.1", port=port, metrics_port=None))
    queue = Queue(f"http://127.0.0.1:{port}", seen)
    try:
        await asyncio.wait_for(process.ready.wait(), 20)
        yield queue
    finally:
        await queue.session.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.cleanup()


async def test_a_dispatch_carries_the_token_and_never_the_clients_guess(nats_server: NatsServer) -> None:
    async with running_queue(nats_server, lambda: TOKEN) as queue:
        call_id = await queue.accept(K_Call_Dispatch="1")
        await queue.wait_state(call_id, "succeeded")
        [headers] = queue.seen
        assert headers["k-call-dispatch"] == TOKEN and headers["x-call-id"] == call_id
        assert "prefer" not in headers


async def test_no_call_is_dispatched_while_the_token_cannot_be_read(nats_server: NatsServer) -> None:
    """Sent unmarked, the dispatch would come back to the queue as a new call."""
    token: list[str | None] = [None]
    async with running_queue(nats_server, lambda: token[0]) as queue:
        call_id = await queue.accept()
        await asyncio.sleep(1.5)
        assert await queue.state(call_id) == "queued" and queue.seen == []
        token[0] = TOKEN
        await queue.wait_state(call_id, "succeeded")
        assert [headers["k-call-dispatch"] for headers in queue.seen] == [TOKEN]


async def test_without_a_token_source_no_mark_is_sent(nats_server: NatsServer) -> None:
    async with running_queue(nats_server, None) as queue:
        call_id = await queue.accept(K_Call_Dispatch="1")
        await queue.wait_state(call_id, "succeeded")
        [headers] = queue.seen
        assert "k-call-dispatch" not in headers
