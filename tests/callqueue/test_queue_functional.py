"""The queue process end to end without a cluster: a real nats-server, the accept server and
dispatcher on loopback ports, and a real function app standing where the ingress would be."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
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


class Function:
    """The function: counts runs per call id, fails the first ``failures`` attempts of each."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.seen: list[dict[str, Any]] = []
        self.failures = 0
        self.fail_status = 503
        self.retry_after: str | None = None
        self.delay = 0.0
        self.in_flight = 0
        self.peak = 0

    async def handle(self, request: web.Request) -> web.Response:
        call_id = request.headers.get("X-Call-Id", "")
        self.runs[call_id] += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            body = await request.read()
            self.seen.append({"id": call_id, "attempt": request.headers.get("X-Attempt"), "method": request.method,
                              "path": request.path_qs, "body": body, "at": time.monotonic(),
                              "prefer": request.headers.get("Prefer"), "custom": request.headers.get("X-Custom")})
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.runs[call_id] <= self.failures:
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                return web.Response(status=self.fail_status, text="not yet", headers=headers)
            return web.Response(text=f"done {body.decode()}", headers={"X-Result": "yes"})
        finally:
            self.in_flight -= 1


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(text="thanks")


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


class Stack:
    def __init__(self, queue_url: str, function: Function, receiver: Receiver, callback_url: str,
                 process: QueueProcess) -> None:
        self.url = queue_url
        self.function = function
        self.receiver = receiver
        self.callback_url = callback_url
        self.process = process
        self.session = aiohttp.ClientSession()
        self.task: asyncio.Task[None] | None = None

    async def accept(self, body: bytes = b"x", *, path: str = "/work?n=1", **headers: str) -> aiohttp.ClientResponse:
        sent = {"Host": HOST, "Prefer": "respond-async", **{k.replace("_", "-"): v for k, v in headers.items()}}
        async with self.session.post(self.url + path, data=body, headers=sent) as response:
            await response.read()
            return response

    async def status(self, call_id: str, *, unavailable_ok: bool = False) -> dict[str, Any]:
        async with self.session.get(f"{self.url}/.well-known/knserve/calls/{call_id}", headers={"Host": HOST}) as r:
            if unavailable_ok and r.status == 503:
                assert r.headers["Retry-After"]
                return {"state": "(queue unavailable)"}
            assert r.status == 200, await r.text()
            result: dict[str, Any] = await r.json()
            return result

    async def wait_state(self, call_id: str, *states: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll as a client would: a 503 (the store restarting) means ask again."""
        deadline = time.monotonic() + timeout
        while True:
            view = await self.status(call_id, unavailable_ok=True)
            if view["state"] in states:
                return view
            assert time.monotonic() < deadline, f"call stayed {view['state']}: {view}"
            await asyncio.sleep(0.05)


POLICY = RetryPolicy(max_attempts=3, min_backoff=0.2, max_backoff=1.0, concurrency=4)


@pytest.fixture
async def stack(nats_server: NatsServer, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    policy: RetryPolicy = getattr(request, "param", POLICY)
    function, receiver = Function(), Receiver()
    fn_app = web.Application()
    fn_app.router.add_route("*", "/{tail:.*}", function.handle)
    cb_app = web.Application()
    cb_app.router.add_post("/done", receiver.handle)
    fn_runner, fn_port = await serve(fn_app)
    cb_runner, cb_port = await serve(cb_app)
    directory = StaticDirectory({HOST: Target("default", "fn", HOST, policy)})
    process = QueueProcess(store=JetStreamStore([nats_server.url], lease=3.0), directory=directory,
                           ingress_url=f"http://127.0.0.1:{fn_port}", body_limit=64 * 1024)
    port = free_port()
    task = asyncio.create_task(process.run(host="127.0.0.1", port=port, metrics_port=None))
    await asyncio.wait_for(process.ready.wait(), 20)
    stack = Stack(f"http://127.0.0.1:{port}", function, receiver, f"http://127.0.0.1:{cb_port}/done", process)
    stack.task = task
    try:
        yield stack
    finally:
        await stack.session.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await fn_runner.cleanup()
        await cb_runner.cleanup()


async def test_accept_answers_202_and_the_call_runs_to_succeeded_with_the_response(stack: Stack) -> None:
    stack.function.delay = 0.5
    response = await stack.accept(b"hello", X_Custom="kept")
    assert response.status == 202
    call_id = response.headers["X-Call-Id"]
    assert response.headers["Location"] == f"/.well-known/knserve/calls/{call_id}" and len(call_id) >= 20
    running = await stack.wait_state(call_id, "running")
    assert running["attempts"] == 1
    view = await stack.wait_state(call_id, "succeeded")
    assert view["response"]["status"] == 200 and view["response"]["body"] == "done hello"
    assert view["response"]["headers"]["x-result"] == "yes" and view["lastStatus"] == 200
    [seen] = stack.function.seen
    assert seen == {**seen, "id": call_id, "attempt": "1", "method": "POST", "path": "/work?n=1", "body": b"hello",
                    "prefer": None, "custom": "kept"}


async def test_a_retryable_failure_is_tried_again_after_the_back_off(stack: Stack) -> None:
    stack.function.failures = 2
    response = await stack.accept()
    view = await stack.wait_state(response.headers["X-Call-Id"], "succeeded")
    assert view["attempts"] == 3
    times = [seen["at"] for seen in stack.function.seen]
    assert [seen["attempt"] for seen in stack.function.seen] == ["1", "2", "3"]
    # back-off after attempt n is within [min, min*2^(n-1)] (equal jitter, never below the minimum)
    assert 0.2 <= times[1] - times[0] < 0.2 + 0.5 and 0.2 <= times[2] - times[1] < 0.4 + 0.5


async def test_retry_after_is_honoured(stack: Stack) -> None:
    stack.function.failures, stack.function.fail_status, stack.function.retry_after = 1, 429, "2"
    response = await stack.accept()
    await stack.wait_state(response.headers["X-Call-Id"], "succeeded")
    first, second = stack.function.seen
    assert second["at"] - first["at"] >= 2.0


async def test_a_function_that_always_fails_ends_dead_and_is_listed_and_can_be_replayed(stack: Stack) -> None:
    stack.function.failures = 3
    response = await stack.accept(b"again")
    call_id = response.headers["X-Call-Id"]
    view = await stack.wait_state(call_id, "dead")
    assert view["attempts"] == 3 and view["lastStatus"] == 503 and view["response"]["body"] == "not yet"
    async with stack.session.get(f"{stack.url}/.well-known/knserve/calls?state=dead", headers={"Host": HOST}) as r:
        assert [item["id"] for item in (await r.json())["items"]] == [call_id]
    async with stack.session.post(f"{stack.url}/.well-known/knserve/calls/{call_id}/retry",
                                  headers={"Host": HOST}) as r:
        assert r.status == 202
    view = await stack.wait_state(call_id, "succeeded")
    assert view["attempts"] == 1 and view["replays"] == 1 and stack.function.seen[-1]["body"] == b"again"


async def test_a_non_retryable_status_ends_failed_at_once(stack: Stack) -> None:
    stack.function.failures, stack.function.fail_status = 5, 404
    response = await stack.accept()
    view = await stack.wait_state(response.headers["X-Call-Id"], "failed")
    assert view["attempts"] == 1 and view["lastStatus"] == 404


async def test_the_callback_gets_the_final_response_with_its_headers(stack: Stack) -> None:
    stack.function.failures = 1
    response = await stack.accept(b"cb", X_Callback_Url=stack.callback_url)
    call_id = response.headers["X-Call-Id"]
    await asyncio.wait_for(stack.receiver.arrived.wait(), 20)
    [(headers, body)] = stack.receiver.received
    assert body == b"done cb"
    assert headers["X-Call-Id"] == call_id and headers["X-Function-Status"] == "200"
    assert headers["X-Attempts"] == "2" and float(headers["X-Duration-Seconds"]) > 0
    view = await stack.wait_state(call_id, "succeeded")
    # the record notes the callback's answer once the POST returned, a moment after the receiver saw it
    deadline = time.monotonic() + 20
    while view["callback"]["lastStatus"] is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        view = await stack.status(call_id, unavailable_ok=True)
    assert view["callback"]["lastStatus"] == 200


async def test_a_queued_call_can_be_cancelled_and_a_running_one_cannot(stack: Stack) -> None:
    stack.function.delay = 1.5
    responses = [await stack.accept() for _ in range(6)]  # concurrency 4: two wait
    ids = [r.headers["X-Call-Id"] for r in responses]
    await stack.wait_state(ids[0], "running")
    async with stack.session.delete(f"{stack.url}/.well-known/knserve/calls/{ids[0]}", headers={"Host": HOST}) as r:
        assert r.status == 409
    queued = [call_id for call_id in ids if (await stack.status(call_id))["state"] == "queued"]
    assert queued
    async with stack.session.delete(f"{stack.url}/.well-known/knserve/calls/{queued[-1]}",
                                    headers={"Host": HOST}) as r:
        assert r.status == 200 and (await r.json())["state"] == "cancelled"
    for call_id in ids:
        await stack.wait_state(call_id, "succeeded", "cancelled")
    assert queued[-1] not in stack.function.runs and stack.function.peak <= 4


async def test_limits_unknown_hosts_and_idempotency(stack: Stack) -> None:
    assert (await stack.accept(b"x" * (64 * 1024 + 1))).status == 413
    async with stack.session.post(stack.url + "/", headers={"Host": "nobody.example.com",
                                                            "Prefer": "respond-async"}) as r:
        assert r.status == 404
    first = await stack.accept(Idempotency_Key="order-7")
    again = await stack.accept(Idempotency_Key="order-7")
    assert first.status == again.status == 202 and first.headers["X-Call-Id"] == again.headers["X-Call-Id"]
    await stack.wait_state(first.headers["X-Call-Id"], "succeeded")
    assert stack.function.runs[first.headers["X-Call-Id"]] == 1


async def test_nats_down_gives_503_with_retry_after_and_nothing_is_lost(stack: Stack,
                                                                          nats_server: NatsServer) -> None:
    stack.function.delay = 0.2
    accepted = [(await stack.accept()).headers["X-Call-Id"] for _ in range(5)]
    nats_server.kill()
    await asyncio.sleep(0.3)
    down = await stack.accept()
    assert down.status == 503 and down.headers["Retry-After"]
    nats_server.start()
    for call_id in accepted:
        await stack.wait_state(call_id, "succeeded", timeout=40)


async def test_a_graceful_stop_lets_the_running_call_finish_once(stack: Stack) -> None:
    stack.function.delay = 1.0
    call_id = (await stack.accept()).headers["X-Call-Id"]
    await stack.wait_state(call_id, "running")
    stack.process.stop()
    assert stack.task is not None
    await asyncio.wait_for(stack.task, 10)  # returns once the running call is done
    reader = JetStreamStore(stack.process.store.servers)
    await reader.connect()
    try:
        found = await reader.get("default", "fn", call_id)
    finally:
        await reader.close()
    assert found is not None and found[0].state.value == "succeeded"
    assert stack.function.runs[call_id] == 1
