"""Queue-proxy data-path benchmark: throughput, CPU per request and added latency vs direct.

Run on demand (not part of the test suite):

    .venv/bin/python bench/queueproxy_bench.py [--duration 5] [--connections 32]

It starts a trivial app (uvloop + httptools, a 5-byte answer) and the queue-proxy as
real processes, the queue-proxy pinned to CPU 0 with ``taskset`` and the app and the
load generator on CPU 1, then measures in one run:

- the app alone (direct) and through the queue-proxy at N connections, with the breaker
  active (containerConcurrency = N, and a smaller one so requests queue);
- the queue-proxy's CPU time per request (utime + stime from /proc over the run);
- p50 latency at 1 connection, direct and through the proxy.

The load generator is ``wrk`` when installed (``apt-get install -y wrk``), else a
built-in asyncio client (much weaker: it may itself be the bottleneck). Figures print
as ratios against the direct run. Side effects: processes on loopback ports, killed at
the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[1]
PROXY_CPU = "0"
LOAD_CPU = "1"

APP_SOURCE = textwrap.dedent('''
    import asyncio, sys
    import httptools
    try:
        import uvloop
    except ImportError:
        uvloop = None
    ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\nContent-Type: text/plain\\r\\n\\r\\nhello"

    class App(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)

        def data_received(self, data):
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_message_complete(self):
            self.transport.write(ANSWER)

    async def main(port):
        server = await asyncio.get_running_loop().create_server(App, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    (uvloop.run if uvloop else asyncio.run)(main(int(sys.argv[1])))
''')


def wait_for(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def pinned(cpu: str, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *command] if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1 \
        else command


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- load generators ---------------------------------------------------------------------------
def run_wrk(port: int, connections: int, duration: float, *, latency: bool = False) -> tuple[float, int, float]:
    """(requests/s, requests, p50 seconds or nan)."""
    command = pinned(LOAD_CPU, ["wrk", "-t1", f"-c{connections}", f"-d{duration:.0f}s"]
                     + (["--latency"] if latency else []) + [f"http://127.0.0.1:{port}/"])
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    p50 = float("nan")
    match = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    if match:
        p50 = float(match.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[match.group(2)]
    return rate, count, p50


PY_CLIENT = textwrap.dedent('''
    import asyncio, json, sys, time
    port, connections, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    REQUEST = b"GET / HTTP/1.1\\r\\nHost: bench\\r\\n\\r\\n"
    latencies, count = [], 0

    async def worker(stop):
        global count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop:
            started = time.perf_counter()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            count += 1
        writer.close()

    async def main():
        stop = time.monotonic() + duration
        started = time.monotonic()
        await asyncio.gather(*(worker(stop) for _ in range(connections)))
        elapsed = time.monotonic() - started
        latencies.sort()
        print(json.dumps({"rate": count / elapsed, "count": count, "p50": latencies[len(latencies) // 2]}))

    asyncio.run(main())
''')


def run_python_client(port: int, connections: int, duration: float, *, latency: bool = False) -> tuple[float, int, float]:
    import json

    output = subprocess.run(pinned(LOAD_CPU, [sys.executable, "-c", PY_CLIENT, str(port), str(connections),
                                              str(duration)]), capture_output=True, text=True, check=True).stdout
    result = json.loads(output)
    return result["rate"], result["count"], result["p50"]


# --- the run -------------------------------------------------------------------------------------
class QueueProxyUnderTest:
    def __init__(self, app_port: int, concurrency: int) -> None:
        self.port = free_port()
        env = {
            **os.environ, "USER_PORT": str(app_port), "QUEUE_SERVING_PORT": str(self.port),
            "QUEUE_ADMIN_PORT": str(free_port()), "AUTOSCALING_STATS_PORT": str(free_port()),
            "USER_METRICS_PORT": str(free_port()), "SERVING_POD_IP": "127.0.0.1",
            "CONTAINER_CONCURRENCY": str(concurrency), "DRAIN_QUIET_PERIOD_SECONDS": "0", "QUEUE_LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen(pinned(PROXY_CPU, [sys.executable, "-m", "queueproxy"]), cwd=REPO, env=env)
        wait_for(self.port)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default 5)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--queueing-concurrency", type=int, default=8,
                        help="containerConcurrency for the run where requests wait in the breaker")
    parser.add_argument("--python-client", action="store_true", help="use the built-in client even if wrk exists")
    args = parser.parse_args(argv)
    load = run_python_client if args.python_client or not shutil.which("wrk") else run_wrk
    generator = "wrk" if load is run_wrk else "built-in asyncio client"

    app_port = free_port()
    app = subprocess.Popen(pinned(LOAD_CPU, [sys.executable, "-c", APP_SOURCE, str(app_port)]))
    rows: list[tuple[str, float, float, float, float]] = []  # name, rate, cpu us/request, p50, rss
    try:
        wait_for(app_port)
        load(app_port, args.connections, 1.0)  # warm up
        direct_rate, _, _ = load(app_port, args.connections, args.duration)
        _, _, direct_p50 = load(app_port, 1, args.duration, latency=True)
        rows.append(("direct to app", direct_rate, float("nan"), direct_p50, float("nan")))
        for concurrency in (args.connections, args.queueing_concurrency):
            proxy = QueueProxyUnderTest(app_port, concurrency)
            try:
                load(proxy.port, args.connections, 1.0)  # warm up: connections to the app, code paths
                before = cpu_seconds(proxy.process.pid)
                rate, count, _ = load(proxy.port, args.connections, args.duration)
                cpu = cpu_seconds(proxy.process.pid) - before
                p50 = float("nan")
                if concurrency == args.connections:
                    _, _, p50 = load(proxy.port, 1, args.duration, latency=True)
                rows.append((f"queue-proxy CC={concurrency}", rate, cpu / count * 1e6, p50,
                             rss_mib(proxy.process.pid)))
            finally:
                proxy.stop()
    finally:
        app.kill()
        app.wait()

    print(f"\nqueue-proxy benchmark: {args.connections} connections, {args.duration:.0f}s each, load by {generator}; "
          f"proxy on CPU {PROXY_CPU}, app + load on CPU {LOAD_CPU}")
    print(f"{'path':<22} {'req/s':>9} {'vs direct':>9} {'CPU us/req':>10} {'p50 @1 conn':>12} {'peak RSS':>9}")
    for name, rate, cpu_us, p50, rss in rows:
        p50_text = f"{p50 * 1e6:.0f} us" if p50 == p50 else "-"
        print(f"{name:<22} {rate:>9.0f} {rate / direct_rate:>9.2f} "
              f"{(f'{cpu_us:.1f}' if cpu_us == cpu_us else '-'):>10} {p50_text:>12} "
              f"{(f'{rss:.1f} MiB' if rss == rss else '-'):>9}")
    proxied = [row for row in rows if row[0] == f"queue-proxy CC={args.connections}"]
    if proxied and proxied[0][3] == proxied[0][3] and direct_p50 == direct_p50:
        print(f"added latency at 1 connection (p50): {(proxied[0][3] - direct_p50) * 1e3:.3f} ms")
    medians = [row[1] for row in rows[1:]]
    if medians:
        print(f"median proxied throughput: {statistics.median(medians):.0f} req/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
