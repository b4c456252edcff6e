"""The queue-proxy as a process, with real sockets and a real app process behind it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import socket
import time

import aiohttp
import pytest

from tests.queueproxy.app import download_bytes
from tests.queueproxy.conftest import AppProcess, QueueProxyProcess, http_get
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(120)

MB = 1024 * 1024


async def fetch(port: int, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                body: bytes = b"", timeout: float = 15.0) -> tuple[int, bytes]:
    """One request on its own connection; returns (status, raw body bytes up to EOF)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {path} HTTP/1.1", "Host: example.com", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    try:
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def raw_exchange(port: int, payload: bytes, *, timeout: float = 5.0) -> bytes:
    """Send bytes, read until the proxy closes (or the timeout), return what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    return data


def assert_still_serving(proxy: QueueProxyProcess) -> None:
    status, body = http_get(proxy.serving_port, "/")
    assert (status, body) == (200, b"hello")


def wait_no_in_flight(proxy: QueueProxyProcess, *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while proxy.in_flight() != 0:
        assert time.monotonic() < deadline, "a request stayed in flight (leaked breaker slot?)"
        time.sleep(0.05)


# --- the basics ------------------------------------------------------------------------------
async def test_proxies_requests_and_rewrites_headers(queue_proxy, app: AppProcess) -> None:
    proxy = queue_proxy()
    status, body = await fetch(proxy.serving_port, "/headers?x=1", headers={
        "K-Original-Host": "hello.default.example.com",
        "Knative-Serving-Revision": "hello-00001",
        "Knative-Serving-Namespace": "default",
        "X-Forwarded-For": "10.1.2.3",
        "X-Forwarded-Proto": "https",
    })
    assert status == 200
    seen = json.loads(body)
    names = {name.lower(): value for name, value in seen["headers"]}
    assert seen["host"] == "hello.default.example.com"
    assert seen["path_qs"] == "/headers?x=1"
    assert "knative-serving-revision" not in names and "knative-serving-namespace" not in names
    assert "k-original-host" not in names
    assert names["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert names["forwarded"] == "for=10.1.2.3;proto=https"


async def test_probe_answers_queue_when_ready(queue_proxy) -> None:
    proxy = queue_proxy()
    assert await fetch(proxy.serving_port, "/", headers={"K-Network-Probe": "queue"}) == (200, b"queue")
    status, _ = await fetch(proxy.serving_port, "/healthz", headers={"User-Agent": "kube-probe/1.37"})
    assert status == 200
    status, _ = await fetch(proxy.serving_port, "/", headers={"K-Network-Probe": "something-else"})
    assert status == 400


async def test_probe_is_503_until_the_readiness_probe_passes(queue_proxy, tmp_path, app: AppProcess) -> None:
    from tests.queueproxy.conftest import start_app, stop

    ready_file = tmp_path / "ready"
    gated_app = start_app(tmp_path, {"READY_FILE": str(ready_file)})
    try:
        probe = json.dumps({"httpGet": {"path": "/ready", "port": gated_app.port}, "periodSeconds": 0})
        proxy = queue_proxy(user_port=gated_app.port, wait_ready=False, SERVING_READINESS_PROBE=probe)
        await asyncio.sleep(0.3)
        assert (await fetch(proxy.serving_port, "/", headers={"K-Network-Probe": "queue"}))[0] == 503
        ready_file.write_text("ok")
        deadline = time.monotonic() + 2
        while (await fetch(proxy.serving_port, "/", headers={"K-Network-Probe": "queue"}))[0] != 200:
            assert time.monotonic() < deadline, "aggressive probing did not notice the app got ready"
            await asyncio.sleep(0.02)
    finally:
        stop(gated_app.process)


async def test_keep_alive_and_pipelining(queue_proxy) -> None:
    proxy = queue_proxy()
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            async with session.get(f"http://127.0.0.1:{proxy.serving_port}/") as response:
                assert await response.text() == "hello"
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = raw_exchange(proxy.serving_port, request * 3 + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 OK") == 4 and reply.endswith(b"hello")


def response_heads(reply: bytes) -> list[bytes]:
    """The header lines (lower-cased) of the final response head in ``reply``."""
    head = reply.partition(b"\r\n\r\n")[0]
    return [line.lower() for line in head.split(b"\r\n")[1:]]


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", id="http11-close"),
        pytest.param(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", id="http10-without-keep-alive"),
        pytest.param(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", id="head"),
        pytest.param(b"GET /stream?s=0.3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", id="streamed"),
        pytest.param(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
                     id="upload"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nK-Network-Probe: queue\r\nConnection: close\r\n\r\n",
                     id="probe"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.37\r\nConnection: close\r\n\r\n",
                     id="kubelet-probe"),
    ],
)
async def test_connection_close_is_answered_with_connection_close(queue_proxy, request_bytes: bytes) -> None:
    """RFC 9112 §9.6: a response after which the connection closes says so."""
    proxy = queue_proxy()
    reply = raw_exchange(proxy.serving_port, request_bytes)  # returns once the proxy has closed
    assert reply.split(b" ", 2)[1] == b"200", reply[:200]
    assert response_heads(reply).count(b"connection: close") == 1, reply[:400]


async def test_a_kept_alive_connection_is_not_told_to_close(queue_proxy) -> None:
    proxy = queue_proxy()
    with socket.create_connection(("127.0.0.1", proxy.serving_port), timeout=5) as sock:
        for request in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                        b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"):
            sock.sendall(request)
            reply = b""
            while not reply.endswith(b"hello"):
                reply += sock.recv(65536)
            assert not any(line.startswith(b"connection: close") for line in response_heads(reply)), reply


async def test_http10_head_and_chunked_upload(queue_proxy) -> None:
    proxy = queue_proxy()
    reply = raw_exchange(proxy.serving_port, b"GET / HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.") and reply.endswith(b"hello")
    reply = raw_exchange(proxy.serving_port, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b" 200 " in reply.split(b"\r\n", 1)[0] and reply.endswith(b"\r\n\r\n")
    chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    reply = raw_exchange(proxy.serving_port, b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n" + chunked)
    assert reply.endswith(b"\r\n\r\n11")
    reply = raw_exchange(proxy.serving_port, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                         b"Expect: 100-continue\r\nConnection: close\r\n\r\nabc")
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200") and reply.endswith(b"3")


async def test_websocket_passes_through(queue_proxy) -> None:
    proxy = queue_proxy(CONTAINER_CONCURRENCY="1")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{proxy.serving_port}/ws") as ws:
            for index in range(5):
                await ws.send_str(f"ping {index}")
                assert (await ws.receive_str()) == f"echo:ping {index}"
            await ws.send_bytes(b"\x00" * 100_000)
            assert await ws.receive_bytes() == b"\x00" * 100_000
    wait_no_in_flight(proxy)
    assert_still_serving(proxy)


# --- breaker ---------------------------------------------------------------------------------
async def test_cc1_never_two_requests_at_the_app(queue_proxy, app: AppProcess) -> None:
    proxy = queue_proxy(CONTAINER_CONCURRENCY="1")
    http_get(app.port, "/reset")
    stop_at = time.monotonic() + 2.0
    answered = 0

    async def client() -> None:
        nonlocal answered
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < stop_at:
                async with session.get(f"http://127.0.0.1:{proxy.serving_port}/hold?s=0.005") as response:
                    assert response.status == 200
                    answered += 1

    await asyncio.gather(*(client() for _ in range(5)))
    seen = json.loads(http_get(app.port, "/concurrency")[1])
    assert answered > 20
    assert seen["max"] == 1


async def test_cc2_queue_full_answers_503_at_once(queue_proxy, app: AppProcess) -> None:
    proxy = queue_proxy(CONTAINER_CONCURRENCY="2")
    held = [asyncio.create_task(fetch(proxy.serving_port, "/hold", timeout=30)) for _ in range(22)]
    deadline = time.monotonic() + 5
    while proxy.in_flight() < 22:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    started = time.monotonic()
    status, body = await fetch(proxy.serving_port, "/hold")
    assert (status, body) == (503, b"pending request queue full\n")
    assert time.monotonic() - started < 2.0
    assert json.loads(http_get(app.port, "/concurrency")[1])["now"] == 2
    while not all(task.done() for task in held):  # the app holds 2; releasing lets the next 2 in
        http_get(app.port, "/release")
        await asyncio.sleep(0.05)
    assert [task.result()[0] for task in held] == [200] * 22
    wait_no_in_flight(proxy)


# --- big bodies ------------------------------------------------------------------------------
async def test_200mb_upload_and_download_in_little_memory(queue_proxy) -> None:
    proxy = queue_proxy(CONTAINER_CONCURRENCY="1")
    size = 200 * MB
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.serving_port)
    writer.write(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
    block = b"u" * (256 * 1024)
    for _ in range(size // len(block)):
        writer.write(block)
        await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    assert head.startswith(b"HTTP/1.1 200")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    assert await reader.readexactly(length) == str(size).encode()

    writer.write(f"GET /download?size={size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    assert head.startswith(b"HTTP/1.1 200") and f"content-length: {size}".encode() in head.lower()
    received = 0
    while received < size:
        chunk = await asyncio.wait_for(reader.read(1 << 20), 60)
        assert chunk
        received += len(chunk)
    assert received == size
    writer.close()
    peak_mib = proxy.rss_peak_kib() / 1024
    assert peak_mib < 50, f"queue-proxy peak RSS {peak_mib:.1f} MiB"


async def test_10mib_bodies_arrive_intact_to_fast_and_slow_readers_at_once(queue_proxy) -> None:
    """Response bytes pass through without copies, from buffers reused once sent: every byte
    must still arrive, in order, whether the client keeps up or not."""
    proxy = queue_proxy()
    size = 10 * MB

    async def download(seed: int, *, slow: bool) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.serving_port)
        writer.write(f"GET /download?size={size}&seed={seed} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 200") and f"content-length: {size}".encode() in head.lower()
        digest = hashlib.sha256()
        received = 0
        while received < size:
            chunk = await asyncio.wait_for(reader.read(min(64 * 1024 if slow else MB, size - received)), 30)
            assert chunk
            digest.update(chunk)
            received += len(chunk)
            if slow:
                await asyncio.sleep(0.002)
        writer.close()
        assert digest.digest() == hashlib.sha256(download_bytes(size, seed)).digest(), f"body {seed} corrupted"

    await asyncio.gather(*(download(seed, slow=seed % 2 == 1) for seed in range(4)))
    wait_no_in_flight(proxy)


async def test_slow_reader_download_is_throttled_not_buffered(queue_proxy) -> None:
    proxy = queue_proxy()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.serving_port, limit=1024)
    writer.transport.set_write_buffer_limits(0)
    writer.write(f"GET /download?size={100 * MB} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(1.5)  # read nothing for a while: the proxy must pause the app, not buffer it all
    assert proxy.rss_peak_kib() / 1024 < 50
    writer.close()
    await asyncio.sleep(0.2)
    wait_no_in_flight(proxy)
    assert_still_serving(proxy)


# --- drain -----------------------------------------------------------------------------------
async def test_sigterm_drains_in_flight_requests_then_exits(queue_proxy) -> None:
    proxy = queue_proxy(DRAIN_QUIET_PERIOD_SECONDS="1")
    in_flight = [asyncio.create_task(fetch(proxy.serving_port, "/hold?s=2")) for _ in range(10)]
    deadline = time.monotonic() + 5
    while proxy.in_flight() < 10:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    wait_for_drain = asyncio.create_task(fetch(proxy.admin_port, "/wait-for-drain", timeout=30))
    terminated_at = time.monotonic()
    proxy.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    assert (await fetch(proxy.serving_port, "/", headers={"K-Network-Probe": "queue"}))[0] == 503
    assert (await fetch(proxy.serving_port, "/"))[0] == 200  # still served while draining
    assert [status for status, _ in await asyncio.gather(*in_flight)] == [200] * 10
    assert (await wait_for_drain)[0] == 200
    exit_code = await asyncio.get_running_loop().run_in_executor(None, proxy.process.wait, 10)
    assert exit_code == 0, proxy.log()
    assert time.monotonic() - terminated_at >= 1.0  # the quiet period (reset by the request at 0.2 s)


# --- stats and metrics -----------------------------------------------------------------------
async def test_stats_report_steady_concurrency(queue_proxy) -> None:
    proxy = queue_proxy()
    clients = 4
    stop_at = time.monotonic() + 3.5

    async def client() -> None:
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < stop_at:
                async with session.get(f"http://127.0.0.1:{proxy.serving_port}/hold?s=0.1",
                                       headers={"K-Proxy-Request": "activator"}) as response:
                    assert response.status == 200

    load = asyncio.gather(*(client() for _ in range(clients)))
    await asyncio.sleep(2.2)
    stat = json.loads(http_get(proxy.stats_port, "/stats")[1])
    await load
    assert set(stat) == {"podName", "averageConcurrentRequests", "averageProxiedConcurrentRequests",
                         "requestCount", "proxiedRequestCount", "processUptime", "timestamp",
                         "responses", "latencyCounts"}
    # the responses that ended in that second, all 200s held for 100 ms: none in a bucket up to 80 ms
    # (not "up to 100 ms": the queue-proxy reads its event loop's clock, which moves once per loop
    # pass, so a 100 ms hold is now and then measured a fraction of a millisecond short)
    assert set(stat["responses"]) == {"2xx"} and stat["responses"]["2xx"] >= 20, stat
    assert sum(stat["latencyCounts"]) == stat["responses"]["2xx"]
    assert sum(stat["latencyCounts"][:6]) == 0, stat["latencyCounts"]
    assert stat["podName"] == "pod-under-test"
    assert clients * 0.8 <= stat["averageConcurrentRequests"] <= clients + 0.05, stat
    assert stat["averageProxiedConcurrentRequests"] == pytest.approx(stat["averageConcurrentRequests"])
    assert 20 <= stat["requestCount"] <= clients / 0.1 + 5, stat
    assert stat["proxiedRequestCount"] == stat["requestCount"]
    from knserve.stats_wire import decode_stat  # the autoscaler's reader agrees with the wire format

    assert decode_stat(json.dumps(stat)).average_concurrent_requests == stat["averageConcurrentRequests"]
    metrics = http_get(proxy.metrics_port, "/metrics")[1].decode()
    assert 'revision_request_count{' in metrics and 'response_code="200",response_code_class="2xx"' in metrics
    assert "revision_app_request_latencies_bucket{" in metrics
    prometheus = http_get(proxy.stats_port, "/metrics")[1].decode()
    assert "queue_average_concurrent_requests{" in prometheus


# --- malformed and hostile input -------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "status"),
    [
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="bad-request-line"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, id="bad-header"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431, id="huge-header"),
        pytest.param(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", 400,
                     id="bad-chunking"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
                     id="conflicting-lengths"),
        pytest.param(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, id="connect"),
    ],
)
async def test_malformed_requests_get_answers(queue_proxy, payload: bytes, status: int) -> None:
    proxy = queue_proxy(CONTAINER_CONCURRENCY="1")
    reply = raw_exchange(proxy.serving_port, payload)
    assert reply.startswith(b"HTTP/1.1 %d " % status), reply[:200]
    wait_no_in_flight(proxy)
    assert_still_serving(proxy)


async def test_slow_and_vanishing_clients_do_not_wedge_the_proxy(queue_proxy) -> None:
    proxy = queue_proxy(CONTAINER_CONCURRENCY="1", QUEUE_HEADER_READ_TIMEOUT_SECONDS="1")
    # headers that never finish: 408 after the header timeout
    with socket.create_connection(("127.0.0.1", proxy.serving_port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 408 ")
    # a client that vanishes mid-upload, holding the only slot
    with socket.create_connection(("127.0.0.1", proxy.serving_port), timeout=5) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
        time.sleep(0.2)
    # a client that vanishes while its request waits at the app
    with socket.create_connection(("127.0.0.1", proxy.serving_port), timeout=5) as sock:
        sock.sendall(b"GET /sleep?s=0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
    wait_no_in_flight(proxy)
    assert_still_serving(proxy)


async def test_app_failures_become_502_or_a_cut(queue_proxy) -> None:
    proxy = queue_proxy(CONTAINER_CONCURRENCY="1")
    reply = raw_exchange(proxy.serving_port, b"GET /close-mid HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200") and len(reply.partition(b"\r\n\r\n")[2]) < 1_000_000
    wait_no_in_flight(proxy)
    assert_still_serving(proxy)
    status, body = await fetch(proxy.serving_port, "/drop")
    assert status == 502 and b"error reaching the app" in body
    assert_still_serving(proxy)
    nothing_there = queue_proxy(user_port=free_port(), wait_ready=False)
    status, body = await fetch(nothing_there.serving_port, "/")
    assert status == 502 and b"error reaching the app" in body
    status, _ = await fetch(nothing_there.serving_port, "/", headers={"K-Network-Probe": "queue"})
    assert status == 503


# --- HTTP/2 cleartext to the app ---------------------------------------------------------------
@pytest.fixture
def h2_app(tmp_path):
    import subprocess
    import sys

    from tests.queueproxy.conftest import REPO, stop, wait_for_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.queueproxy.h2app", str(port)], cwd=REPO,
                               stderr=(tmp_path / "h2app.log").open("wb"))
    wait_for_port(port, process=process)
    yield port
    stop(process)


async def test_h2c_to_the_app(queue_proxy, h2_app: int) -> None:
    proxy = queue_proxy(user_port=h2_app, USER_PORT_NAME="h2c", CONTAINER_CONCURRENCY="2")
    assert await fetch(proxy.serving_port, "/") == (200, b"hello over h2")
    reply = raw_exchange(proxy.serving_port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.endswith(b"hello over h2") and b"connection: close" in response_heads(reply)
    status, body = await fetch(proxy.serving_port, "/headers", headers={"K-Original-Host": "h2.example.com"})
    assert status == 200 and b":authority: h2.example.com\n" in body and b"x-forwarded-for: 127.0.0.1\n" in body
    assert await fetch(proxy.serving_port, "/upload", method="POST", body=b"z" * 300_000) == (200, b"300000")
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (b"a" * 70_000, b"b" * 5)) + b"0\r\n\r\n"
    reply = raw_exchange(proxy.serving_port, b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n" + chunked)
    assert reply.endswith(b"\r\n\r\n70005")
    status, body = await fetch(proxy.serving_port, "/stream")
    assert status == 200
    assert body == b"7\r\npart 0\n\r\n7\r\npart 1\n\r\n7\r\npart 2\n\r\n0\r\nx-trailer: done\r\n\r\n"
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(
            session.get(f"http://127.0.0.1:{proxy.serving_port}/download?size={5 * MB}") for _ in range(4)))
        for response in results:
            assert response.status == 200 and len(await response.read()) == 5 * MB
    wait_no_in_flight(proxy)


async def test_split_head_followed_by_a_big_body_is_no_431(queue_proxy) -> None:
    proxy = queue_proxy()
    body = b"b" * 200_000
    with socket.create_connection(("127.0.0.1", proxy.serving_port), timeout=10) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.1)
        sock.sendall(b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"200000")
