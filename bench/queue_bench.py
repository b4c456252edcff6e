"""The call queue's figures, each against a baseline measured in the same run.

Run on demand (about a minute)::

    .venv/bin/python bench/queue_bench.py [--calls 5000] [--work-ms 50] [--concurrency 32]

Starts, as real processes: nats-server (JetStream, file storage), ``knserve queue`` pinned
to CPU 0 (``--static``: one Service, no cluster), Envoy with a static route configuration
shaped as the controller's (``Prefer: respond-async`` -> the queue, everything else -> the
function), and a function app plus the load generator in this process, pinned to CPU 1.
Then, in one run:

1. accept latency through Envoy at one connection: p50/p99 of a ``Prefer: respond-async``
   POST (answered 202 once stored) against the same POST made synchronously to an instant
   function; the difference is what accepting adds (target <= 2 ms at p50);
2. accept throughput: ``--calls`` POSTs at 64 connections straight to the queue (a replica
   started with ``--no-dispatch``), as calls/s of wall time and per CPU-second of the queue
   process (target >= 3,000 per core);
3. drain throughput: a dispatching replica runs those calls against the function (each takes
   ``--work-ms``; ``knserve.dev/async-concurrency`` = ``--concurrency``), against the same
   calls made synchronously at the same concurrency (target >= 0.8 x).

The faults table (calls lost when the queue's pod, NATS and the function's pod are deleted
under 1,000 calls) is tests/e2e/test_queue_e2e.py's fault test; it prints its repeats.

Side effects: starts and stops processes, writes only in a temporary directory, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.envoy_process import EnvoyProcess
from tests.support.nats_process import NatsServer, free_port

HOST = "fn.bench.example.com"
LATENCY_HOST = "lat.bench.example.com"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.2f} ms"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Function:
    """The function: sleeps ``?work=`` ms (default the bench's) and counts calls per Host."""

    def __init__(self, work_ms: float) -> None:
        self.work = work_ms / 1000
        self.served: dict[str, int] = {}
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        work = float(request.query.get("work", self.work * 1000)) / 1000
        if work:
            await asyncio.sleep(work)
        host = request.host.split(":")[0]
        self.served[host] = self.served.get(host, 0) + 1
        self.changed.set()
        return web.Response(text="ok")


def envoy_bootstrap(port: int, queue_port: int, app_port: int) -> dict:
    def cluster(name: str, target: int) -> dict:
        return {"name": name, "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": target}}}}]}]}}

    prefer = {"name": "prefer", "string_match": {"contains": "respond-async", "ignore_case": True}}
    routes = [
        {"match": {"prefix": "/.well-known/knserve/"}, "route": {"cluster": "queue", "timeout": "0s"}},
        {"match": {"prefix": "/", "headers": [prefer]}, "route": {"cluster": "queue", "timeout": "0s"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "app", "timeout": "0s"}},
    ]
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{"name": "ingress", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                           "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                           "typed_config": manager}]}]}],
            "clusters": [cluster("queue", queue_port), cluster("app", app_port)],
        },
    }


def start_queue(work: Path, nats_url: str, port: int, app_port: int, *, dispatch: bool) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", "0", sys.executable, "-m", "callqueue", "--static", str(work / "hosts"),
               "--nats-url", nats_url, "--port", str(port), "--metrics-port", str(free_port()),
               "--ingress-url", f"http://127.0.0.1:{app_port}", "--log-level", "WARNING"]
    if not dispatch:
        command.append("--no-dispatch")
    log = (work / f"queue-{'dispatch' if dispatch else 'accept'}.log").open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parent.parent)


async def wait_answers(session: aiohttp.ClientSession, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with session.get(url) as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:g}s")
        await asyncio.sleep(0.1)


async def one_connection(session: aiohttp.ClientSession, url: str, headers: dict[str, str], count: int,
                         want: int) -> list[float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        async with session.post(url, data=b"x", headers=headers) as response:
            await response.read()
            assert response.status == want, (response.status, await response.text())
        samples.append(time.perf_counter() - began)
    return samples


async def many(session: aiohttp.ClientSession, url: str, headers: dict[str, str], count: int, connections: int,
               want: int) -> float:
    """Seconds to make ``count`` POSTs over ``connections`` at once."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            async with session.post(url, data=b"x", headers=headers) as response:
                await response.read()
                assert response.status == want, (response.status, await response.text())

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - began


async def run(args: argparse.Namespace, work: Path) -> None:
    os.sched_setaffinity(0, {1})
    nats = NatsServer(work / "nats")
    nats.start()
    function = Function(args.work_ms)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", function.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    app_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", app_port, backlog=1024).start()
    settings = f"knserve.dev/async-concurrency={args.concurrency}"
    (work / "hosts").write_text(f"{HOST}: bench/fn {settings}\n{LATENCY_HOST}: bench/lat {settings}\n")
    queue_port, envoy_port = free_port(), free_port()
    accepting = start_queue(work, nats.url, queue_port, app_port, dispatch=False)
    envoy = EnvoyProcess(envoy_bootstrap(envoy_port, queue_port, app_port), work_dir=work / "envoy",
                         log_level="warn", concurrency=1)
    await envoy.start()
    dispatching: subprocess.Popen[bytes] | None = None
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            ingress, direct = f"http://127.0.0.1:{envoy_port}", f"http://127.0.0.1:{queue_port}"
            await wait_answers(session, f"{ingress}/ready-check?work=0")
            await wait_answers(session, f"{direct}/.well-known/knserve/calls")

            # 1. latency through Envoy, one connection
            sync_headers = {"Host": LATENCY_HOST}
            async_headers = {"Host": LATENCY_HOST, "Prefer": "respond-async"}
            await one_connection(session, f"{ingress}/?work=0", sync_headers, 200, 200)
            await one_connection(session, f"{ingress}/?work=0", async_headers, 200, 202)
            sync = await one_connection(session, f"{ingress}/?work=0", sync_headers, args.samples, 200)
            accepted = await one_connection(session, f"{ingress}/?work=0", async_headers, args.samples, 202)

            # 2. accept throughput straight to the queue
            cpu_before = cpu_seconds(accepting.pid)
            accept_seconds = await many(session, f"{direct}/", {"Host": HOST, "Prefer": "respond-async"}, args.calls,
                                        64, 202)
            accept_cpu = cpu_seconds(accepting.pid) - cpu_before
            accepting.terminate()
            accepting.wait(timeout=30)

            # 3. drain, against the same calls made synchronously at the same concurrency
            began = time.perf_counter()
            dispatching = start_queue(work, nats.url, queue_port, app_port, dispatch=True)
            while function.served.get(HOST, 0) < args.calls:
                function.changed.clear()
                try:
                    await asyncio.wait_for(function.changed.wait(), 60)
                except TimeoutError:
                    raise RuntimeError(f"the drain stalled at {function.served.get(HOST, 0)} calls; "
                                       f"see {work / 'queue-dispatch.log'}") from None
            drain_seconds = time.perf_counter() - began
            sync_seconds = await many(session, f"http://127.0.0.1:{app_port}/", {"Host": HOST}, args.calls,
                                      args.concurrency, 200)
    finally:
        for process in (accepting, dispatching):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        await envoy.stop()
        await runner.cleanup()
        nats.stop()

    print(f"\ncall queue ({args.calls} calls, function work {args.work_ms:g} ms, async concurrency {args.concurrency})")
    print(f"{'':44} {'p50':>9} {'p99':>9}")
    print(f"{'sync POST through Envoy (baseline)':44} {ms(statistics.median(sync)):>9} {ms(percentile(sync, 0.99)):>9}")
    print(f"{'accept (202) through Envoy':44} {ms(statistics.median(accepted)):>9} "
          f"{ms(percentile(accepted, 0.99)):>9}")
    added = statistics.median(accepted) - statistics.median(sync)
    print(f"{'  added by accepting (target <= 2 ms)':44} {ms(added):>9}")
    print(f"accept throughput, 64 connections: {args.calls / accept_seconds:7.0f} calls/s wall, "
          f"{args.calls / accept_cpu:7.0f} calls per CPU-second of the queue (target >= 3000)")
    drain_rate, sync_rate = args.calls / drain_seconds, args.calls / sync_seconds
    print(f"drain: {drain_rate:7.0f} calls/s against {sync_rate:7.0f} synchronous calls/s at the same "
          f"concurrency = {drain_rate / sync_rate:4.2f} x (target >= 0.8 x; the drain includes the replica's start)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--work-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--samples", type=int, default=1000, help="latency samples per path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="knserve-queue-bench-") as work:
        asyncio.run(run(args, Path(work)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
