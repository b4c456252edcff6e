"""The two runtimes side by side: cold starts through the activator on a containerd node beside
the process node's, a containerd node's set-up from warm caches, and its idle CPU and memory.

Run on demand (never in the test suite), as root, after ``make node-setup`` and ``make binaries
RUNTIME=containerd`` (or a first ``make up RUNTIME=containerd``, which fills the same caches)::

    .venv/bin/python -m bench.node_runtime_bench [--cold-starts 8] [--idle 30]

In one run, one runtime after the other:

1. the process node (the baseline): a private local stack, ``config-autoscaler`` at initial
   scale 0 with short windows, ``examples/hello.yaml`` unchanged in one namespace per cold
   start; sequential requests at zero through Envoy (127.0.0.1) -> activator -> new pod, time
   from the request to its first response byte;
2. one containerd node (``localcluster.realcluster``) in a temporary state directory: the
   time of each set-up step from the caches (control plane and node, CoreDNS, knserve's images
   built and imported, ``config/`` applied and every component ready), the same cold starts
   through the Envoy pod's address inside the node, then the CPU time and the resident memory of
   the node's containerd, kubelet and kube-proxy over ``--idle`` seconds with knserve's
   components running as pods and no traffic.

A first set-up from empty caches (builds of kubelet, kube-proxy, kube-scheduler and CoreDNS,
debootstrap bases, knserve's image) takes many minutes and is not repeated here; the README
keeps the times recorded when they were first built. The machine's load average is printed
with each part: on a shared two-core machine every figure moves with other work.

Side effects: the processes, network namespaces, routes and files of both private clusters,
removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.coldstart_bench import (
    AUTOSCALER_SETTINGS,
    HELLO,
    REPOSITORY,
    apply_services,
    percentile,
    private_stack,
    wait_all_ready,
)
from localcluster import binaries, nodesetup
from localcluster.controlplane import Ports
from localcluster.realcluster import ContainerdCluster, RealNodesControlPlane

TARGET_COLD_P50 = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def first_byte(address: str, port: int, host: str) -> tuple[float, int, bytes]:
    """(seconds to the first byte, status, body) of one GET / on a fresh connection."""
    reader, writer = await asyncio.open_connection(address, port)
    try:
        sent = time.monotonic()
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        head = await reader.read(1)
        arrived = time.monotonic()
        rest = await reader.read()
    finally:
        writer.close()
    response = head + rest
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return arrived - sent, status, response.partition(b"\r\n\r\n")[2]


async def cold_starts(address: str, port: int, namespaces: list[str], *, gap: float) -> list[float]:
    """One request to each namespace's hello, at zero; raises if one is not answered."""
    times = []
    for namespace in namespaces:
        seconds, status, body = await first_byte(address, port, f"hello.{namespace}.example.com")
        if status != 200 or body != b"Hello World!\n":
            raise RuntimeError(f"the cold request to hello.{namespace} was answered {status} {body[:80]!r}")
        times.append(seconds)
        await asyncio.sleep(gap)
    return times


def prepare_cold(kubectl: Callable[..., Any]) -> None:
    """Short autoscaler windows and initial scale 0: a new revision is Ready with no pod."""
    result = kubectl("patch", "configmap", "config-autoscaler", "-n", "knative-serving", "--type", "merge",
                     "-p", json.dumps({"data": AUTOSCALER_SETTINGS}))
    if result.returncode != 0:
        raise RuntimeError(f"patching config-autoscaler failed: {result.stderr.strip()}")


def describe(times: list[float]) -> str:
    """The percentiles, and every time in the order sent (the first on a containerd node also
    pulls the sample image from the local registry, unless an earlier run left it there)."""
    return (f"p50 {statistics.median(times):.2f} s, p90 {percentile(times, 0.9):.2f} s, "
            f"min {min(times):.2f} s, max {max(times):.2f} s; in order: {' '.join(f'{t:.2f}' for t in times)}")


# --- the process node ---------------------------------------------------------------------
def process_node(args: argparse.Namespace) -> list[float]:
    print(f"process node (load average {load_average()})", flush=True)
    with private_stack(progress=lambda message: None) as stack:
        prepare_cold(stack.kubectl)
        namespaces = [f"cold-{i}" for i in range(1, args.cold_starts + 1)]
        apply_services(stack, namespaces, warm="")
        wait_all_ready(stack, namespaces)
        times = asyncio.run(cold_starts("127.0.0.1", stack.ports.ingress, namespaces, gap=args.gap))
    print(f"  cold start through the activator: {describe(times)}", flush=True)
    return times


# --- the containerd node ------------------------------------------------------------------
@contextmanager
def containerd_node(steps: dict[str, float]) -> Iterator[ContainerdCluster]:
    nodesetup.ensure_packages()
    with tempfile.TemporaryDirectory(prefix="node-runtime-bench-") as state:
        began = time.monotonic()
        control_plane = RealNodesControlPlane(Path(state) / "state", binaries.ensure_binaries(), ports=Ports.free())
        real = ContainerdCluster(control_plane, binaries.ensure_node_binaries(), nodes=1)
        steps["binaries found in the cache"] = time.monotonic() - began
        try:
            began = time.monotonic()
            real.start(progress=lambda message: None)
            steps["control plane and node Ready"] = time.monotonic() - began
            began = time.monotonic()
            real.start_addons(progress=lambda message: None)
            steps["CoreDNS ready"] = time.monotonic() - began
            began = time.monotonic()
            real.install_knserve(REPOSITORY, progress=lambda message: None)
            steps["knserve's images (cached bases) built, imported; config/ applied"] = time.monotonic() - began
            began = time.monotonic()
            result = real.kubectl("-n", "knative-serving", "rollout", "status", "deployment/controller",
                                  "deployment/activator", "deployment/autoscaler", "deployment/envoy",
                                  "deployment/webhook", "--timeout=300s", timeout=320)
            if result.returncode != 0:
                raise RuntimeError(f"knserve's components did not become ready: {result.stderr.strip()}")
            steps["knserve's components ready"] = time.monotonic() - began
            yield real
        finally:
            real.stop(progress=lambda message: None)


def daemon_usage(real: ContainerdCluster) -> dict[str, tuple[float, int]]:
    """name -> (CPU seconds so far, resident bytes) of each node daemon."""
    usage = {}
    for name, pid in real.nodes[0].daemon_pids().items():
        if pid is None:
            raise RuntimeError(f"the node's {name} is not running")
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        cpu = sum(int(value) for value in fields[11:13]) / CLOCK_TICKS
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        usage[name] = (cpu, resident)
    return usage


def containerd_runtime(args: argparse.Namespace) -> tuple[list[float], dict[str, float], dict[str, tuple[float, int]]]:
    print(f"containerd node (load average {load_average()})", flush=True)
    steps: dict[str, float] = {}
    with containerd_node(steps) as real:
        for step, seconds in steps.items():
            print(f"  {step}: {seconds:.1f} s", flush=True)

        def kubectl(*command: str, input: str | None = None) -> Any:
            return real.kubectl(*command, input=input)

        prepare_cold(kubectl)
        namespaces = [f"cold-{i}" for i in range(1, args.cold_starts + 1)]
        hello = yaml.safe_load(HELLO.read_text())
        documents = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces]
        for namespace in namespaces:
            service = json.loads(json.dumps(hello))
            service["metadata"]["namespace"] = namespace
            documents.append(service)
        for kind in ("Namespace", "Service"):
            result = kubectl("apply", "-f", "-", input=yaml.safe_dump_all([d for d in documents if d["kind"] == kind]))
            if result.returncode != 0:
                raise RuntimeError(f"applying the hello Services failed: {result.stderr.strip()}")
        deadline = time.monotonic() + 300
        while True:
            items = json.loads(kubectl("get", "ksvc", "-A", "-o", "json").stdout)["items"]
            ready = {i["metadata"]["namespace"] for i in items
                     if any(c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", []))}
            if set(namespaces) <= ready:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"hello not Ready after 300 s in {sorted(set(namespaces) - ready)}")
            time.sleep(1)
        envoys = json.loads(kubectl("-n", "knative-serving", "get", "pods", "-l",
                                    "app.kubernetes.io/component=ingress", "-o", "json").stdout)["items"]
        address = envoys[0]["status"]["podIP"]
        times = asyncio.run(cold_starts(address, 8080, namespaces, gap=args.gap))
        print(f"  cold start through the activator: {describe(times)}", flush=True)
        # Let the cold Services scale back to zero before the node is watched idle.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pods = json.loads(kubectl("get", "pods", "-A", "-o", "json").stdout)["items"]
            if not any(p["metadata"]["namespace"] in namespaces for p in pods):
                break
            time.sleep(2)
        time.sleep(5)
        print(f"  idle for {args.idle:.0f} s (load average {load_average()})", flush=True)
        before = daemon_usage(real)
        time.sleep(args.idle)
        after = daemon_usage(real)
        idle = {name: ((after[name][0] - before[name][0]) / args.idle, after[name][1]) for name in after}
        for name, (share, resident) in idle.items():
            print(f"  {name}: {share * 100:.2f} % of a core, {resident / 2**20:.0f} MiB resident", flush=True)
        total_share = sum(share for share, _ in idle.values())
        total_resident = sum(resident for _, resident in idle.values())
        print(f"  node daemons together: {total_share * 100:.2f} % of a core, {total_resident / 2**20:.0f} MiB",
              flush=True)
    return times, steps, idle


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-starts", type=int, default=8, help="sequential cold starts each (default: %(default)s)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between cold starts (default: %(default)s)")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds the idle node is watched (default: %(default)s)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("error: the containerd node needs root; run the bench as root", file=sys.stderr)
        return 1
    baseline = process_node(args)
    containerd, _steps, _idle = containerd_runtime(args)
    ratio = statistics.median(containerd) / statistics.median(baseline)
    verdict = "met" if statistics.median(containerd) <= TARGET_COLD_P50 else "NOT met"
    print(f"cold start p50: containerd {statistics.median(containerd):.2f} s against the process node's "
          f"{statistics.median(baseline):.2f} s ({ratio:.1f} x); target p50 <= {TARGET_COLD_P50:.0f} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
