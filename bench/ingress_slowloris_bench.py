"""A slowloris against the ingress: is a well-behaved client slowed, and does memory come back?

Run on demand (about six minutes with the default memory wait; bounded in connections)::

    .venv/bin/python bench/ingress_slowloris_bench.py [--connections 400] [--memory-wait 330]

Everything runs on 127.0.0.1: an XdsController, a real Envoy (``LocalIngress``) with the
bootstrap knserve ships, one backend. Figures are ratios against a baseline measured in the
same run:

1. a well-behaved client's request (a new connection each) while ``--connections`` raw
   sockets hold half-sent request heads (40 KiB each, a line added every 2 s) and idle
   connections, against the same request with no slowloris: p50 and p99, target <= 2x;
2. Envoy's resident memory: growth while the slowloris holds its heads (Envoy times them
   out after 10 s), and what is left of that growth ``--memory-wait`` seconds after they are
   gone (tcmalloc gives memory back only after a recent peak has aged, a few minutes):
   target <= 0.25 of the growth.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from serving.xds.model import Endpoint, IngressModel, IngressRule, RevisionBackend, Split, Visibility  # noqa: E402
from tests.support.xds_backends import NamedBackend  # noqa: E402
from tests.support.xds_runner import LocalIngress  # noqa: E402

HOST = "hello.bench.example.com"
HEAD_BYTES = 40 * 1024


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def one_request(port: int) -> float:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": HOST})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"answer {response.status}")
    finally:
        connection.close()
    return time.perf_counter() - started


async def latencies(port: int, count: int) -> list[float]:
    found = []
    for _ in range(count):
        found.append(await asyncio.to_thread(one_request, port))
        await asyncio.sleep(0.05)
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextlib.contextmanager
def slowloris(port: int, connections: int) -> object:
    sockets = []
    head = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Pad: ".encode() + b"a" * HEAD_BYTES + b"\r\n"
    try:
        for index in range(connections):
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            if index % 2:
                connection.sendall(head)
            sockets.append(connection)
        yield sockets
    finally:
        for connection in sockets:
            connection.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--memory-wait", type=float, default=330.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        async with NamedBackend("hello-00001") as backend, LocalIngress(Path(work_dir) / "envoy") as ingress:
            splits = (Split("hello-00001", "bench", 100),)
            version = ingress.controller.update(IngressModel(
                rules=(IngressRule(namespace="bench", name="hello", hosts=(HOST,), generation=1,
                                   visibility=Visibility.EXTERNAL_IP, splits=splits),),
                backends=(RevisionBackend("bench", "hello-00001", (Endpoint("127.0.0.1", backend.port),)),),
            ))
            await ingress.controller.wait_served(version, timeout=30)
            port = ingress.settings.external_port
            pid = ingress.envoy.pid
            assert pid is not None
            await latencies(port, 20)  # warm up
            baseline = await latencies(port, 100)
            resident_before = resident_mib(pid)
            with slowloris(port, args.connections) as held:
                await asyncio.sleep(1.0)
                resident_peak = resident_mib(pid)
                under_attack = await latencies(port, 100)
                for connection in held:  # keep the half-sent ones trickling
                    with contextlib.suppress(OSError):
                        connection.sendall(b"X-Still: here\r\n")
            await asyncio.sleep(args.memory_wait)
            resident_after = resident_mib(pid)

    growth = resident_peak - resident_before
    left = (resident_after - resident_before) / growth if growth > 0 else 0.0
    for name, share in (("p50", 0.5), ("p99", 0.99)):
        ratio = percentile(under_attack, share) / percentile(baseline, share)
        print(f"well-behaved request {name} under slowloris: {ratio:.2f}x baseline "
              f"({percentile(under_attack, share) * 1000:.1f} vs {percentile(baseline, share) * 1000:.1f} ms)"
              f"   target <= 2x")
    print(f"Envoy resident memory: {resident_before:.0f} MiB, {resident_peak:.0f} MiB with {args.connections} "
          f"slowloris connections, {resident_after:.0f} MiB {args.memory_wait:.0f} s after")
    print(f"growth left after {args.memory_wait:.0f} s: {left:.2f} of it   target <= 0.25")
    print(f"(median request {statistics.median(baseline) * 1000:.1f} ms with no slowloris)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
