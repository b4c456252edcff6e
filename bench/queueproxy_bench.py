"""Queue-proxy benchmark: throughput, CPU per request and added latency vs direct; start-up.

Run on demand (not part of the test suite):

    .venv/bin/python bench/queueproxy_bench.py [--duration 5] [--connections 32] [--startups 15]

It starts a trivial app (uvloop + httptools; a 5-byte answer at ``/``, 1 MiB at ``/1m``,
10 MiB at ``/10m``, each with a Content-Length) and the queue-proxy as real processes,
the queue-proxy pinned to CPU 0 with ``taskset`` and the app and the load generator on
CPU 1, then measures in one run:

- the app alone (direct) and through the queue-proxy at N connections, with the breaker
  active (containerConcurrency = N, and a smaller one so requests queue), for each body
  size; a row's "vs direct" is its rate over the app alone at the same size;
- the queue-proxy's CPU time per request (utime + stime from /proc over the run);
- p50 latency at 1 connection, direct and through the proxy;
- start-up: the CPU an exec'd ``knserve queue-proxy`` spends until it has answered its
  first ``K-Network-Probe: queue`` with 200 (the app already listening), beside the CPU
  of a bare ``python -c pass``; medians of ``--startups`` runs each.

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

    def big(size):
        head = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nContent-Type: application/octet-stream\\r\\n\\r\\n"
        return head % size + b"x" * size

    ANSWERS = {b"/1m": big(1 << 20), b"/10m": big(10 << 20)}

    class App(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)
            self.url = b"/"

        def data_received(self, data):
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_url(self, url):
            self.url = url

        def on_message_complete(self):
            self.transport.write(ANSWERS.get(self.url, ANSWER))

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
def run_wrk(port: int, connections: int, duration: float, *, latency: bool = False,
            path: str = "/") -> tuple[float, int, float]:
    """(requests/s, requests, p50 seconds or nan)."""
    command = pinned(LOAD_CPU, ["wrk", "-t1", f"-c{connections}", f"-d{duration:.0f}s"]
                     + (["--latency"] if latency else []) + [f"http://127.0.0.1:{port}{path}"])
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
    REQUEST = b"GET %s HTTP/1.1\\r\\nHost: bench\\r\\n\\r\\n" % sys.argv[4].encode()
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


def run_python_client(port: int, connections: int, duration: float, *, latency: bool = False,
                      path: str = "/") -> tuple[float, int, float]:
    import json

    output = subprocess.run(pinned(LOAD_CPU, [sys.executable, "-c", PY_CLIENT, str(port), str(connections),
                                              str(duration), path]), capture_output=True, text=True, check=True).stdout
    result = json.loads(output)
    return result["rate"], result["count"], result["p50"]


# --- the run -------------------------------------------------------------------------------------
BODIES = (("/", "5 B", 5), ("/1m", "1 MiB", 1 << 20), ("/10m", "10 MiB", 10 << 20))


def queue_proxy_env(app_port: int, port: int, concurrency: int) -> dict[str, str]:
    return {
        **os.environ, "USER_PORT": str(app_port), "QUEUE_SERVING_PORT": str(port),
        "QUEUE_ADMIN_PORT": str(free_port()), "AUTOSCALING_STATS_PORT": str(free_port()),
        "USER_METRICS_PORT": str(free_port()), "SERVING_POD_IP": "127.0.0.1",
        "CONTAINER_CONCURRENCY": str(concurrency), "DRAIN_QUIET_PERIOD_SECONDS": "0", "QUEUE_LOG_LEVEL": "WARNING",
    }


class QueueProxyUnderTest:
    def __init__(self, app_port: int, concurrency: int) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(pinned(PROXY_CPU, [sys.executable, "-m", "queueproxy"]), cwd=REPO,
                                        env=queue_proxy_env(app_port, self.port, concurrency))
        wait_for(self.port)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- start-up ------------------------------------------------------------------------------------
PROBE = b"GET / HTTP/1.1\r\nHost: bench\r\nK-Network-Probe: queue\r\nConnection: close\r\n\r\n"


def knserve_command() -> list[str]:
    """How a node execs the sidecar: the ``knserve`` console script (``python -m`` without one)."""
    script = Path(sys.executable).parent / "knserve"
    return [str(script), "queue-proxy"] if script.exists() else [sys.executable, "-m", "knserve.cli", "queue-proxy"]


def probe_answered(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(PROBE)
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def cpu_ms_of_exit(process: subprocess.Popen[bytes]) -> float:
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    return (usage.ru_utime + usage.ru_stime) * 1000


def startup_once(app_port: int) -> tuple[float, float]:
    """(CPU ms, wall ms) of an exec'd queue-proxy until its first probe answered 200."""
    port = free_port()
    started = time.monotonic()
    env = {**queue_proxy_env(app_port, port, 0), "PYTHONPATH": str(REPO)}  # this tree's code, installed or not
    process = subprocess.Popen(pinned(PROXY_CPU, knserve_command()), cwd=REPO, env=env)
    while not probe_answered(port):
        if time.monotonic() - started > 10:
            process.kill()
            raise TimeoutError("the queue-proxy answered no probe in 10 s")
        time.sleep(0.001)
    wall = (time.monotonic() - started) * 1000
    process.kill()
    return cpu_ms_of_exit(process), wall


def bare_python_ms() -> float:
    return cpu_ms_of_exit(subprocess.Popen(pinned(PROXY_CPU, [sys.executable, "-c", "pass"])))


def measure_startup(app_port: int, runs: int) -> tuple[float, float, float]:
    """Medians: (bare python CPU ms, queue-proxy CPU ms, queue-proxy wall ms), interleaved runs.

    The tree's modules are byte-compiled first, as the image's ``compileall`` has them.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", "knserve", "queueproxy"], cwd=REPO, check=True)
    bare, cpu, wall = [], [], []
    for _ in range(runs):
        bare.append(bare_python_ms())
        cpu_ms, wall_ms = startup_once(app_port)
        cpu.append(cpu_ms)
        wall.append(wall_ms)
    return statistics.median(bare), statistics.median(cpu), statistics.median(wall)


# --- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default 5)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--queueing-concurrency", type=int, default=8,
                        help="containerConcurrency for the run where requests wait in the breaker")
    parser.add_argument("--startups", type=int, default=15, help="exec'd start-ups to measure (0: none)")
    parser.add_argument("--small-only", action="store_true", help="skip the 1 MiB and 10 MiB bodies")
    parser.add_argument("--startup-only", action="store_true", help="measure only the exec'd start-up")
    parser.add_argument("--python-client", action="store_true", help="use the built-in client even if wrk exists")
    args = parser.parse_args(argv)
    load = run_python_client if args.python_client or not shutil.which("wrk") else run_wrk
    generator = "wrk" if load is run_wrk else "built-in asyncio client"
    bodies = BODIES[:1] if args.small_only else BODIES

    load_average_before = os.getloadavg()[0]
    app_port = free_port()
    app = subprocess.Popen(pinned(LOAD_CPU, [sys.executable, "-c", APP_SOURCE, str(app_port)]))
    rows: list[tuple[str, str, float, float, float, float, float]] = []  # path, body, rate, vs, cpu, p50, rss
    direct: dict[str, float] = {}
    startup = None
    try:
        wait_for(app_port)
        for path, label, _ in () if args.startup_only else bodies:
            load(app_port, args.connections, 1.0, path=path)  # warm up
            direct[path], _, _ = load(app_port, args.connections, args.duration, path=path)
            rows.append(("direct to app", label, direct[path], 1.0, float("nan"), float("nan"), float("nan")))
        for concurrency in () if args.startup_only else (args.connections, args.queueing_concurrency):
            if concurrency == args.connections:
                _, _, direct_p50 = load(app_port, 1, args.duration, latency=True)
                rows.append(("direct to app, 1 conn", "5 B", float("nan"), float("nan"), float("nan"), direct_p50,
                             float("nan")))
            proxy = QueueProxyUnderTest(app_port, concurrency)
            try:
                for path, label, _ in bodies if concurrency == args.connections else bodies[:1]:
                    load(proxy.port, args.connections, 1.0, path=path)  # warm up: connections to the app, code paths
                    before = cpu_seconds(proxy.process.pid)
                    rate, count, _ = load(proxy.port, args.connections, args.duration, path=path)
                    cpu = cpu_seconds(proxy.process.pid) - before
                    rows.append((f"queue-proxy CC={concurrency}", label, rate, rate / direct[path],
                                 cpu / max(count, 1) * 1e6, float("nan"), rss_mib(proxy.process.pid)))
                if concurrency == args.connections:
                    _, _, p50 = load(proxy.port, 1, args.duration, latency=True)
                    rows.append((f"queue-proxy, 1 conn", "5 B", float("nan"), float("nan"), float("nan"), p50,
                                 rss_mib(proxy.process.pid)))
            finally:
                proxy.stop()
        if args.startups:
            startup = measure_startup(app_port, args.startups)
    finally:
        app.kill()
        app.wait()

    print(f"\nqueue-proxy benchmark: {args.connections} connections, {args.duration:.0f}s each, load by {generator}; "
          f"proxy on CPU {PROXY_CPU}, app + load on CPU {LOAD_CPU}; load average {load_average_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print(f"{'path':<22} {'body':>6} {'req/s':>9} {'MiB/s':>8} {'vs direct':>9} {'CPU us/req':>10} "
          f"{'p50':>8} {'peak RSS':>9}")
    sizes = {label: size for _, label, size in BODIES}

    def number(value: float, text: str) -> str:
        return text.format(value) if value == value else "-"

    for name, label, rate, ratio, cpu_us, p50, rss in rows:
        print(f"{name:<22} {label:>6} {number(rate, '{:.0f}'):>9} {number(rate * sizes[label] / (1 << 20), '{:.0f}'):>8} "
              f"{number(ratio, '{:.2f}'):>9} {number(cpu_us, '{:.1f}'):>10} {number(p50 * 1e6, '{:.0f} us'):>8} "
              f"{number(rss, '{:.1f} MiB'):>9}")
    latencies = {name: p50 for name, _, _, _, _, p50, _ in rows if p50 == p50}
    if len(latencies) == 2:
        print(f"added latency at 1 connection (p50): "
              f"{(latencies['queue-proxy, 1 conn'] - latencies['direct to app, 1 conn']) * 1e3:.3f} ms")
    if startup is not None:
        bare, cpu_ms, wall_ms = startup
        print(f"start-up, exec'd `knserve queue-proxy` to its first probe answered: {cpu_ms:.1f} ms CPU "
              f"({wall_ms:.0f} ms wall); bare `python -c pass`: {bare:.1f} ms CPU, so {cpu_ms - bare:.1f} ms are the "
              f"queue-proxy's own (medians of {args.startups} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
