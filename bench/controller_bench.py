"""How fast the controller turns Services into Deployments, and what it costs.

Run on demand (never in the test suite)::

    .venv/bin/python -m bench.controller_bench [--services 200] [--kubeconfig PATH]

Without ``--kubeconfig`` it starts a private local control plane (etcd, kube-apiserver,
kube-controller-manager; no node agent, so no pod runs) in a temporary directory on free
ports, and removes it afterwards. It applies the CRDs and ConfigMaps, starts
the reconcilers (``python -m serving.controller``, without the xDS server and webhook that
``knserve controller`` adds) as a subprocess, then:

1. baseline: creates N Deployments directly, all at once, and times each from its create
   call until an informer sees it (the API server's own floor);
2. creates N Services all at once and times each from its create call until an informer
   sees its Deployment ``<svc>-00001-deployment``;
3. reads the controller's CPU time (``/proc``) over the burst (until it has a quiet second)
   and over 10 idle seconds after that.

Prints p50/p99 of both, their ratio, the controller's CPU seconds per Service and its idle
CPU share. Target: Deployment p99 <= 1 s after the apply; idle CPU ~0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serving.kube.client import RestKubeClient, connect
from serving.kube.informer import Informer
from serving.kube.resources import DEPLOYMENTS, NAMESPACES, SERVICES

REPO = Path(__file__).resolve().parents[1]
KUBECTL = str(Path(sys.executable).parent / "kubectl")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def kubectl(kubeconfig: str, *args: str) -> None:
    subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, *args], check=True, capture_output=True, text=True)


def service_body(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go:latest"}]}}},
    }


def deployment_body(namespace: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "baseline"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }


async def timed_burst(
    client: RestKubeClient, informer: Informer, created: dict[str, float], bodies: list[tuple[str, dict[str, Any]]],
    resource: Any, deployment_of: dict[str, str], controller: subprocess.Popen[bytes],
) -> list[float]:
    seen: dict[str, float] = {}
    wanted = set(deployment_of.values())
    informer.add_handler(lambda change: seen.setdefault(change.object["metadata"]["name"], time.monotonic())
                         if change.object["metadata"]["name"] in wanted else None)

    async def create(key: str, body: dict[str, Any]) -> None:
        created[key] = time.monotonic()
        await client.create(resource, body)

    await asyncio.gather(*(create(key, body) for key, body in bodies))
    async with asyncio.timeout(300):
        while len(seen.keys() & wanted) < len(wanted):
            if controller.poll() is not None:
                raise RuntimeError(f"the controller exited with {controller.returncode}; see its log")
            await asyncio.sleep(0.05)
    return [seen[deployment_of[key]] - created[key] for key, _ in bodies]


async def run(kubeconfig: str, services: int, workers: int, writes: int) -> None:
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "config" / "300-resources"))
    for crd in ("services.serving.knative.dev", "configurations.serving.knative.dev",
                "revisions.serving.knative.dev", "routes.serving.knative.dev",
                "podautoscalers.autoscaling.internal.knative.dev"):
        kubectl(kubeconfig, "wait", "--for=condition=established", "--timeout=60s", f"crd/{crd}")
    client = await connect(kubeconfig)
    log = tempfile.NamedTemporaryFile(prefix="controller-bench-", suffix=".log", delete=False)
    controller = subprocess.Popen(
        [sys.executable, "-m", "serving.controller", "--kubeconfig", kubeconfig, "--log-level", "info",
         "--workers", str(workers), "--max-writes-in-flight", str(writes)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        namespace = f"bench-{int(time.time())}"
        await client.create(NAMESPACES, {"metadata": {"name": namespace}})
        await asyncio.sleep(3)  # let the controller list and start

        baseline_informer = Informer(client, DEPLOYMENTS, namespace=namespace, label_selector="bench=baseline")
        baseline_task = asyncio.create_task(baseline_informer.run())
        await baseline_informer.wait_synced()
        names = [f"direct-{i}" for i in range(services)]
        baseline = await timed_burst(client, baseline_informer, {},
                                     [(n, deployment_body(namespace, n)) for n in names], DEPLOYMENTS,
                                     {n: n for n in names}, controller)
        baseline_task.cancel()

        informer = Informer(client, DEPLOYMENTS, namespace=namespace, label_selector="serving.knative.dev/service")
        informer_task = asyncio.create_task(informer.run())
        await informer.wait_synced()
        names = [f"svc-{i}" for i in range(services)]
        cpu_before, wall_before = cpu_seconds(controller.pid), time.monotonic()
        latencies = await timed_burst(client, informer, {}, [(n, service_body(namespace, n)) for n in names],
                                      SERVICES, {n: f"{n}-00001-deployment" for n in names}, controller)
        # let the follow-up work (status writes, routes, events) finish: until a quiet second
        settle_deadline = time.monotonic() + 120
        while time.monotonic() < settle_deadline:
            before = cpu_seconds(controller.pid)
            await asyncio.sleep(1)
            if cpu_seconds(controller.pid) - before < 0.02:
                break
        cpu_burst = cpu_seconds(controller.pid) - cpu_before
        burst_wall = time.monotonic() - wall_before
        idle_before = cpu_seconds(controller.pid)
        await asyncio.sleep(10)
        idle_share = (cpu_seconds(controller.pid) - idle_before) / 10
        informer_task.cancel()

        p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
        b50, b99 = statistics.median(baseline), percentile(baseline, 0.99)
        print(f"services: {services} applied at once")
        print(f"baseline (Deployment created directly): p50 {b50 * 1000:.0f} ms  p99 {b99 * 1000:.0f} ms")
        print(f"Service -> Deployment:                  p50 {p50 * 1000:.0f} ms  p99 {p99 * 1000:.0f} ms"
              f"  (target p99 <= 1000 ms: {'met' if p99 <= 1.0 else 'NOT met'})")
        print(f"ratio to baseline:                      p50 x{p50 / max(b50, 1e-6):.1f}  p99 x{p99 / max(b99, 1e-6):.1f}")
        print(f"controller CPU during the burst: {cpu_burst:.2f} s over {burst_wall:.1f} s wall"
              f" = {cpu_burst / services * 1000:.1f} ms per Service (all its objects)")
        print(f"controller CPU when idle: {idle_share * 100:.2f}% of one core")
        kubectl(kubeconfig, "delete", "namespace", namespace, "--wait=false")
    finally:
        controller.terminate()
        controller.wait(timeout=10)
        await client.close()
        for line in Path(log.name).read_text(errors="replace").splitlines():
            if "API writes:" in line:
                print("controller " + line.split("knserve.controller: ", 1)[-1])
        print(f"controller log: {log.name}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so the private cluster is stopped on SIGTERM too


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--kubeconfig", help="an existing cluster (default: start a private one)")
    parser.add_argument("--workers", type=int, default=256, help="the controller's --workers")
    parser.add_argument("--max-writes-in-flight", type=int, default=16, help="the controller's --max-writes-in-flight")
    args = parser.parse_args(argv)
    if args.kubeconfig:
        asyncio.run(run(args.kubeconfig, args.services, args.workers, args.max_writes_in_flight))
        return 0
    from serving.local import binaries
    from serving.local.controlplane import LocalCluster, Ports

    with tempfile.TemporaryDirectory(prefix="controller-bench-") as state:
        local = LocalCluster(Path(state), binaries.ensure_binaries(), ports=Ports.free())
        local.start(progress=lambda message: None, node=False)
        try:
            asyncio.run(run(str(local.kubeconfig), args.services, args.workers, args.max_writes_in_flight))
        finally:
            local.stop(progress=lambda message: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
