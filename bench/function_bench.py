"""Functions: warm call overhead, cold start from zero beside ``hello``'s, deploy to first answer.

Run on demand (never in the test suite)::

    .venv/bin/python -m bench.function_bench [--warm-requests 5000] [--cold-starts 10] [--warm-only]

1. Warm call overhead (no cluster): the function runtime serving a plain ``main(data)`` and
   a plain app on the same small HTTP server answering the same JSON by hand, each on
   127.0.0.1, asked in alternating rounds over one keep-alive connection; p50 of each and
   the difference (target <= 0.2 ms).
2. Cold start from zero through the ingress and the activator, on a private local stack
   (the coldstart bench's settings: initial scale 0, short windows): a function deployed with
   ``knserve func deploy`` and ``examples/hello.yaml``, one per namespace, woken alternately;
   time to first byte p50/p99 of each and their ratio (target: the function no slower).
3. ``knserve func deploy`` until the URL answers: wall time of the command plus the first
   answer, for a new function (p50 over a few).

The machine's load average is printed first: on a shared two-core machine every figure moves
with other work. Side effects: processes, a temporary directory, a private stack (removed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.coldstart_bench import (
    AUTOSCALER_SETTINGS,
    apply_services,
    first_byte,
    kubectl,
    percentile,
    private_stack,
    wait_all_ready,
)

REPOSITORY = Path(__file__).resolve().parents[1]
PLAIN_APP = '''
import json, sys
from functions.httpserver import SampleHandler, serve

class Handler(SampleHandler):
    def do_POST(self):
        data = json.loads(self.read_body() or b"{}")
        self.send_body(json.dumps({"tax": round(data["subtotal"] * 0.047, 2)}).encode(), content_type="application/json")

sys.exit(serve(Handler, name="plain"))
'''
HANDLER = "def main(data):\n    return {'tax': round((data or {}).get('subtotal', 100) * 0.047, 2)}\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class KeepAlive:
    """One keep-alive connection sending the same POST; returns each round trip's seconds."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = b'{"subtotal": 100}'
        self.request = (f"POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def call(self) -> float:
        started = time.perf_counter()
        self.sock.sendall(self.request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        while len(rest) < length:
            rest += self.sock.recv(65536)
        elapsed = time.perf_counter() - started
        assert b'"tax":' in rest.replace(b" ", b""), rest
        return elapsed


def warm_overhead(requests: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="function-bench-") as directory:
        (Path(directory) / "handler.py").write_text(HANDLER)
        (Path(directory) / "plain_app.py").write_text(PLAIN_APP)
        function_port, plain_port = free_port(), free_port()
        env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
        processes = [
            subprocess.Popen([sys.executable, "-m", "knserve.cli", "function"], stderr=subprocess.DEVNULL,
                             env={**env, "PORT": str(function_port), "FUNCTION_DIR": directory}),
            subprocess.Popen([sys.executable, str(Path(directory) / "plain_app.py")], stderr=subprocess.DEVNULL,
                             env={**env, "PORT": str(plain_port)}),
        ]
        try:
            wait_port(function_port)
            wait_port(plain_port)
            function, plain = KeepAlive(function_port), KeepAlive(plain_port)
            for _ in range(200):  # warm both
                function.call()
                plain.call()
            through_function: list[float] = []
            through_plain: list[float] = []
            for round_start in range(0, requests, 100):
                for _ in range(min(100, requests - round_start)):
                    through_function.append(function.call())
                for _ in range(min(100, requests - round_start)):
                    through_plain.append(plain.call())
            return through_function, through_plain
        finally:
            for process in processes:
                process.terminate()
                process.wait()


def func(stack: Any, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(stack.cluster.kubeconfig),
           "KNSERVE_INGRESS": f"http://127.0.0.1:{stack.ports.ingress}",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "knserve.cli", "func", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"knserve func {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


async def measure_stack(stack: Any, args: argparse.Namespace, workdir: Path) -> None:
    kubectl(stack, "patch", "configmap", "config-autoscaler", "-n", "knative-serving", "--type", "merge",
            "-p", __import__("json").dumps({"data": AUTOSCALER_SETTINGS}))
    hello_ns = [f"hello-{i}" for i in range(1, args.cold_starts + 1)]
    function_ns = [f"fn-{i}" for i in range(1, args.cold_starts + 1)]
    apply_services(stack, hello_ns, warm="")
    kubectl(stack, "apply", "-f", "-", input="".join(
        f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n" for ns in function_ns))
    source = workdir / "tax"
    source.mkdir()
    (source / "handler.py").write_text(HANDLER)
    (source / "func.yaml").write_text("name: tax\nstyle: plain\n")
    deploys: list[float] = []
    for namespace in function_ns:
        started = time.monotonic()
        func(stack, "deploy", str(source), "-n", namespace, cwd=workdir)
        sent, arrived, status, _ = await first_byte(stack.ports.ingress, f"tax.{namespace}.example.com")
        deploys.append(time.monotonic() - started)
        if status != 200:
            raise RuntimeError(f"tax.{namespace} answered {status} after deploy")
    wait_all_ready(stack, hello_ns)
    print(f"{len(hello_ns)} hello and {len(function_ns)} function Services deployed; waiting for zero", flush=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        pods = kubectl(stack, "get", "pods", "-A", "-l", "serving.knative.dev/service", "-o", "name")
        if not pods.strip():
            break
        await asyncio.sleep(2)
    hello_times: list[float] = []
    function_times: list[float] = []
    for hello, function in zip(hello_ns, function_ns):
        for host, into in ((f"hello.{hello}.example.com", hello_times), (f"tax.{function}.example.com", function_times)):
            sent, arrived, status, body = await first_byte(stack.ports.ingress, host)
            if status != 200:
                raise RuntimeError(f"{host} answered {status}: {body[:200]!r}")
            into.append(arrived - sent)
            await asyncio.sleep(args.gap)
    print("\ncold start from zero through the ingress and the activator (time to first byte)")
    for label, values in (("hello", hello_times), ("function", function_times)):
        print(f"  {label:<9} p50 {statistics.median(values) * 1000:7.0f} ms   p99 {percentile(values, 0.99) * 1000:7.0f} ms"
              f"   (n={len(values)})")
    ratio = statistics.median(function_times) / statistics.median(hello_times)
    print(f"  function / hello p50: {ratio:.2f}  ({'met' if ratio <= 1.05 else 'MISSED'}: target no slower)")
    print("\nknserve func deploy until the URL answers (new function, new namespace)")
    print(f"  p50 {statistics.median(deploys):.1f} s   max {max(deploys):.1f} s   (n={len(deploys)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-requests", type=int, default=5000)
    parser.add_argument("--cold-starts", type=int, default=10)
    parser.add_argument("--gap", type=float, default=1.0)
    parser.add_argument("--warm-only", action="store_true", help="only the warm call overhead (no cluster)")
    args = parser.parse_args(argv)
    print(f"load average before the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    through_function, through_plain = warm_overhead(args.warm_requests)
    function_p50, plain_p50 = statistics.median(through_function), statistics.median(through_plain)
    overhead = (function_p50 - plain_p50) * 1000
    print("warm call, one keep-alive connection on 127.0.0.1 (POST {\"subtotal\": 100})")
    print(f"  plain app        p50 {plain_p50 * 1000:.3f} ms   p99 {percentile(through_plain, 0.99) * 1000:.3f} ms")
    print(f"  function runtime p50 {function_p50 * 1000:.3f} ms   p99 {percentile(through_function, 0.99) * 1000:.3f} ms")
    print(f"  overhead p50 {overhead:+.3f} ms  ({'met' if overhead <= 0.2 else 'MISSED'}: target <= 0.2 ms)", flush=True)
    if args.warm_only:
        return 0
    with tempfile.TemporaryDirectory(prefix="function-bench-") as workdir, \
            private_stack(progress=lambda message: print(f"  {message}", flush=True)) as stack:
        asyncio.run(measure_stack(stack, args, Path(workdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
