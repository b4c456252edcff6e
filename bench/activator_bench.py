"""How much latency the activator adds: requests straight to a fake pod vs through the activator.

Run on demand (never in the test suite)::

    .venv/bin/python -m bench.activator_bench [--requests 3000] [--concurrency 1]

Starts a fake queue-proxy (answers the activator's probe and ``GET /`` with a small body) and
``knserve activator --static`` as separate processes, warms both paths up, then sends the
same number of keep-alive requests straight to the fake pod and through the activator, one
path after the other, and prints p50/p90/p99 of each and the added p50 (target: <= 1 ms).
Everything listens on 127.0.0.1; the request loops are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.support.ports import free_port

HEADERS = {
    "Knative-Serving-Revision": "bench-00001",
    "Knative-Serving-Namespace": "default",
    "Host": "bench.default.example.com",
}


def serve_upstream(port: int) -> None:
    """The fake pod: probe answers and a small fixed body."""

    async def handle(request: web.BaseRequest) -> web.Response:
        if request.headers.get("K-Network-Probe") == "queue":
            return web.Response(text="queue")
        return web.Response(text="hello from the pod\n")

    async def main() -> None:
        runner = web.ServerRunner(web.Server(handle, access_log=None))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())


async def wait_ready(client: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                async with client.get(url, headers=headers) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def measure(client: aiohttp.ClientSession, url: str, headers: dict[str, str], count: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            async with client.get(url, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append((time.perf_counter() - started) * 1000.0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(requests: int, concurrency: int) -> int:
    upstream_port, data_port, metrics_port = free_port(), free_port(), free_port()
    upstream = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.activator_bench", "--serve-upstream", str(upstream_port)
    )
    with tempfile.TemporaryDirectory() as scratch:
        revisions = Path(scratch) / "revisions.json"
        revisions.write_text(json.dumps({"revisions": [
            {"namespace": "default", "name": "bench-00001", "containerConcurrency": 0,
             "ready": [f"127.0.0.1:{upstream_port}"]},
        ]}))
        activator = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "knserve.cli", "activator", "--static", str(revisions), "--host", "127.0.0.1",
            "--port", str(data_port), "--metrics-port", str(metrics_port),
            "--autoscaler-url", f"http://127.0.0.1:{free_port()}", "--log-level", "ERROR",
        )
        try:
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as client:
                direct_url, activator_url = f"http://127.0.0.1:{upstream_port}/", f"http://127.0.0.1:{data_port}/"
                await wait_ready(client, direct_url, HEADERS)
                await wait_ready(client, activator_url, HEADERS)
                for url in (direct_url, activator_url):  # warm-up
                    await measure(client, url, HEADERS, min(500, requests), concurrency)
                direct = await measure(client, direct_url, HEADERS, requests, concurrency)
                proxied = await measure(client, activator_url, HEADERS, requests, concurrency)
        finally:
            for process in (activator, upstream):
                process.send_signal(signal.SIGTERM)
                await process.wait()

    print(f"{requests} GET requests, concurrency {concurrency}, keep-alive, latencies in ms")
    print(f"{'path':<22}{'p50':>8}{'p90':>8}{'p99':>8}{'mean':>8}")
    for name, values in (("straight to the pod", direct), ("through the activator", proxied)):
        print(f"{name:<22}{percentile(values, .5):>8.3f}{percentile(values, .9):>8.3f}"
              f"{percentile(values, .99):>8.3f}{statistics.fmean(values):>8.3f}")
    added = percentile(proxied, 0.5) - percentile(direct, 0.5)
    ratio = percentile(proxied, 0.5) / percentile(direct, 0.5)
    verdict = "within" if added <= 1.0 else "OVER"
    print(f"added p50 latency: {added:.3f} ms ({ratio:.2f}x the direct p50; {verdict} the 1 ms target)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return 0
    return asyncio.run(run(args.requests, args.concurrency))


if __name__ == "__main__":
    sys.exit(main())
