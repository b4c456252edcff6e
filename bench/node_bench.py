"""Node agent figures: pod start latency and idle CPU, against a real local cluster.

    .venv/bin/python bench/node_bench.py [--pods 10] [--idle-pods 20] [--idle-seconds 20]

Starts a throwaway local cluster (etcd, kube-apiserver, kube-controller-manager, node agent)
in a temporary directory and prints:

* pod created -> Running and Ready, and created -> the app answering HTTP on its pod IP, p50
  and p90 over ``--pods`` pods of a small Python HTTP server, next to the baseline of
  starting the same server directly (no Kubernetes) measured in the same run;
* the node agent's CPU use while ``--idle-pods`` such pods (each with an HTTP readiness
  probe on the default 10 s period) sit idle, in percent of one core.

Targets: Ready p50 <= 1 s; idle CPU < 2 % of a core.
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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localcluster import binaries, processes  # noqa: E402
from localcluster.controlplane import LocalCluster, Ports  # noqa: E402
from kube.client import KubeClient, connect  # noqa: E402
from kube.errors import ApiError  # noqa: E402
from kube.resources import NAMESPACES, PODS, SERVICE_ACCOUNTS  # noqa: E402

APP = ROOT / "tests" / "node" / "http_app.py"
NAMESPACE = "node-bench"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def wait_answer(url: str, deadline: float) -> float:
    while time.monotonic() < deadline:
        if answers(url):
            return time.monotonic()
        time.sleep(0.005)
    raise TimeoutError(url)


def baseline(runs: int) -> list[float]:
    """Seconds from spawning the server directly until it answers."""
    seconds = []
    for _ in range(runs):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        began = time.monotonic()
        server = subprocess.Popen([sys.executable, str(APP)], env={**os.environ, "PORT": str(port)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            seconds.append(wait_answer(f"http://127.0.0.1:{port}/", began + 20) - began)
        finally:
            server.terminate()
            server.wait()
    return seconds


def pod(name: str, *, probe: bool) -> dict:
    container: dict = {
        "name": "app",
        "image": "example.test/bench",
        "command": [sys.executable, str(APP)],
        "env": [{"name": "PORT", "value": "8080"}],
        "ports": [{"containerPort": 8080}],
    }
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"bench": "node"}},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 2},
    }


def is_ready(obj: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in obj.get("status", {}).get("conditions", []))


async def wait_ready(client: KubeClient, name: str, resource_version: str) -> dict:
    async for event in client.watch(
        PODS, namespace=NAMESPACE, field_selector=f"metadata.name={name}", resource_version=resource_version,
        timeout_seconds=60,
    ):
        if event.type in ("ADDED", "MODIFIED") and is_ready(event.object):
            return event.object
    raise TimeoutError(name)


async def start_latency(client: KubeClient, count: int) -> tuple[list[float], list[float]]:
    ready_seconds, http_seconds = [], []
    for index in range(count):
        began = time.monotonic()
        created = await client.create(PODS, pod(f"start-{index}", probe=False))
        ready = await wait_ready(client, f"start-{index}", created["metadata"]["resourceVersion"])
        ready_at = time.monotonic()
        answered = await asyncio.to_thread(wait_answer, f"http://{ready['status']['podIP']}:8080/", began + 30)
        ready_seconds.append(ready_at - began)
        http_seconds.append(answered - began)
    return ready_seconds, http_seconds


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_cpu(client: KubeClient, agent_pid: int, pods: int, seconds: float) -> float:
    for index in range(pods):
        await client.create(PODS, pod(f"idle-{index}", probe=True))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = await client.list(PODS, namespace=NAMESPACE, label_selector="bench=node")
        if sum(1 for item in listed.items if item["metadata"]["name"].startswith("idle-") and is_ready(item)) == pods:
            break
        await asyncio.sleep(0.5)
    else:
        raise TimeoutError("idle pods never became ready")
    await asyncio.sleep(3)  # let the start-up status writes settle
    before, began = cpu_seconds(agent_pid), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (cpu_seconds(agent_pid) - before) / (time.monotonic() - began)


def p(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


async def measure(cluster: LocalCluster, args: argparse.Namespace) -> None:
    client = await connect(str(cluster.kubeconfig), field_manager="knserve-node-bench")
    try:
        await client.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
        for _ in range(100):  # pods need the namespace's default ServiceAccount
            try:
                await client.get(SERVICE_ACCOUNTS, NAMESPACE, "default")
                break
            except ApiError:
                await asyncio.sleep(0.1)
        direct = await asyncio.to_thread(baseline, args.pods)
        ready, http = await start_latency(client, args.pods)
        base = statistics.median(direct)
        print(f"direct start -> answers        p50 {base:.3f}s  p90 {p(direct, 0.9):.3f}s  (baseline)")
        print(f"pod created -> Running+Ready   p50 {statistics.median(ready):.3f}s  p90 {p(ready, 0.9):.3f}s  "
              f"({statistics.median(ready) / base:.1f}x baseline; target p50 <= 1 s)")
        print(f"pod created -> answers HTTP    p50 {statistics.median(http):.3f}s  p90 {p(http, 0.9):.3f}s  "
              f"({statistics.median(http) / base:.1f}x baseline)")
        agent_pid = processes.running_pid(cluster.node_spec())
        assert agent_pid is not None, "the node agent is not running"
        percent = await idle_cpu(client, agent_pid, args.idle_pods, args.idle_seconds)
        print(f"node agent idle CPU with {args.idle_pods} ready pods over {args.idle_seconds:.0f}s: "
              f"{percent:.2f}% of one core (target < 2%)")
    finally:
        await client.close()


def start_cluster(directory: Path) -> LocalCluster:
    found = binaries.binaries()
    if not found.all_present():
        found = binaries.ensure_binaries(progress=lambda message: print(f"==> {message}", file=sys.stderr))
    cluster = LocalCluster(directory, found, ports=Ports.free())
    for attempt in range(3):
        try:
            cluster.start(progress=lambda message: None, node=True)
            return cluster
        except processes.StartError:
            if attempt == 2:
                raise
    return cluster


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pods", type=int, default=10)
    parser.add_argument("--idle-pods", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="knserve-node-bench-") as directory:
        cluster = start_cluster(Path(directory))
        try:
            asyncio.run(measure(cluster, args))
        finally:
            cluster.stop(progress=lambda message: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
