"""How fast the controller turns Services into Deployments, and what it costs.

Run on demand (never in the test suite)::

    .venv/bin/python -m bench.controller_bench [--services 200] [--kubeconfig PATH]

Without ``--kubeconfig`` it starts a private local control plane (etcd, kube-apiserver,
kube-controller-manager; no node agent, so no pod runs) in a temporary directory on free
ports, and removes it afterwards. It applies the CRDs and ConfigMaps, starts
the reconcilers (``knserve controller --reconcilers-only``: no xDS server, no webhook) as a
subprocess, then:

1. baseline: creates N Deployments directly, all at once, and times each from its create
   call until an informer sees it (the API server's own floor);
2. creates N Services all at once and times each from its create call until an informer
   sees its Deployment ``<svc>-00001-deployment`` (the headline), and also from the moment
   its create returned (the API server had accepted the Service);
3. reads the controller's CPU time (``/proc``) over the burst (until it has a quiet second)
   and over 10 idle seconds after that.

Prints p50/p99 of both, their ratio, the API server's floor (four writes per Service, one
after another, at the rate it took the baseline's creates), the controller's CPU seconds per
Service and its idle CPU share. Target: Deployment p99 <= 1 s after the apply; idle CPU ~0.

Where the time goes: the bench's own informers also see each Service's Configuration and
Revision, which splits the apply -> Deployment time into its three hops (each one: the
controller hears of the parent, reconciles it, and the API server stores the child). While
the burst lasts it samples the controller's CPU and the machine's idle share every 100 ms:
a controller near 100% of a core is CPU bound, a machine with no idle share is API bound.
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

from kube.client import RestKubeClient, connect
from kube.informer import Informer
from kube.resources import CONFIGURATIONS, DEPLOYMENTS, NAMESPACES, REVISIONS, SERVICES

REPO = Path(__file__).resolve().parents[1]
KUBECTL = str(Path(sys.executable).parent / "kubectl")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def api_requests(kubeconfig: str) -> dict[tuple[str, str], float]:
    """The API server's request counters (``apiserver_request_total``) by verb and resource."""
    raw = subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, "get", "--raw", "/metrics"], check=True,
                         capture_output=True, text=True).stdout
    counts: dict[tuple[str, str], float] = {}
    for line in raw.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(part.split("=", 1) for part in line[line.index("{") + 1:line.rindex("}")].split(","))
        verb, resource = labels.get("verb", "").strip('"'), labels.get("resource", "").strip('"')
        subresource = labels.get("subresource", "").strip('"')
        if verb in ("WATCH", "LIST", "GET"):
            continue
        key = (verb, f"{resource}/{subresource}" if subresource else resource)
        counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def machine_idle_ticks() -> tuple[int, int]:
    """(idle, total) jiffies of all cores since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of every process, with its command name."""
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
                found[int(entry.name)] = (name, cpu_seconds(int(entry.name)))
            except (OSError, ValueError, IndexError):
                continue
    return found


def top_cpu(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], wall: float) -> str:
    used: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        used[name] = used.get(name, 0.0) + seconds - before.get(pid, (name, 0.0))[1]
    ranked = sorted(used.items(), key=lambda item: -item[1])[:5]
    return ", ".join(f"{name} {seconds / wall * 100:.0f}%" for name, seconds in ranked if seconds > 0)


class Sampler:
    """Controller CPU share and machine idle share, every 100 ms, until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float, float]] = []  # (elapsed, controller share of a core, machine idle)

    async def run(self) -> None:
        started = time.monotonic()
        cpu, (idle, total), wall = cpu_seconds(self.pid), machine_idle_ticks(), time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            cpu2, (idle2, total2), wall2 = cpu_seconds(self.pid), machine_idle_ticks(), time.monotonic()
            share, idle_share = (cpu2 - cpu) / (wall2 - wall), (idle2 - idle) / max(1, total2 - total)
            self.samples.append((wall2 - started, share, idle_share))
            cpu, idle, total, wall = cpu2, idle2, total2, wall2

    def summary(self, until: float) -> str:
        window = [sample for sample in self.samples if sample[0] <= until] or self.samples
        busy = statistics.mean(share for _, share, _ in window)
        idle = statistics.mean(idle for _, _, idle in window)
        saturated = sum(1 for _, share, _ in window if share > 0.9) / len(window)
        return (f"over the first {until:.1f} s: controller {busy * 100:.0f}% of a core on average "
                f"(>90% in {saturated * 100:.0f}% of the 100 ms samples); machine idle {idle * 100:.0f}%")


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
    accepted: dict[str, float] | None = None,
) -> list[float]:
    """Times from each create call to its Deployment; ``accepted`` gets when each create returned."""
    accepted = {} if accepted is None else accepted
    seen: dict[str, float] = {}
    wanted = set(deployment_of.values())
    informer.add_handler(lambda change: seen.setdefault(change.object["metadata"]["name"], time.monotonic())
                         if change.object["metadata"]["name"] in wanted else None)

    async def create(key: str, body: dict[str, Any]) -> None:
        created[key] = time.monotonic()
        await client.create(resource, body)
        accepted[key] = time.monotonic()

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
        for attempt in range(20):  # right after the apply the CRD may not be listed yet
            try:
                kubectl(kubeconfig, "wait", "--for=condition=established", "--timeout=60s", f"crd/{crd}")
                break
            except subprocess.CalledProcessError:
                if attempt == 19:
                    raise
                time.sleep(0.5)
    # the bench's own creates are not queued on the client side: "at once" means all requests sent together
    client = await connect(kubeconfig, max_writes_in_flight=2 * services)
    log = tempfile.NamedTemporaryFile(prefix="controller-bench-", suffix=".log", delete=False)
    controller = subprocess.Popen(
        [sys.executable, "-m", "knserve.cli", "controller", "--reconcilers-only", "--kubeconfig", kubeconfig,
         "--log-level", "info",
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
        hops = {resource: Informer(client, resource, namespace=namespace) for resource in (CONFIGURATIONS, REVISIONS)}
        first_seen: dict[Any, dict[str, float]] = {resource: {} for resource in hops}
        for resource, hop in hops.items():
            hop.add_handler(lambda change, seen=first_seen[resource]: seen.setdefault(
                change.object["metadata"]["name"], time.monotonic()))
        informer_tasks = [asyncio.create_task(each.run()) for each in (informer, *hops.values())]
        for each in (informer, *hops.values()):
            await each.wait_synced()
        names = [f"svc-{i}" for i in range(services)]
        sampler = Sampler(controller.pid)
        sampler_task = asyncio.create_task(sampler.run())
        requests_before = api_requests(kubeconfig)
        processes_before = cpu_by_process()
        cpu_before, wall_before = cpu_seconds(controller.pid), time.monotonic()
        created: dict[str, float] = {}
        accepted: dict[str, float] = {}
        latencies = await timed_burst(client, informer, created, [(n, service_body(namespace, n)) for n in names],
                                      SERVICES, {n: f"{n}-00001-deployment" for n in names}, controller, accepted)
        from_accepted = [created[n] + latency - accepted[n] for n, latency in zip(names, latencies)]
        apply_times = [accepted[n] - created[n] for n in names]
        last_deployment = time.monotonic() - wall_before
        processes_after = cpu_by_process()
        requests_after = api_requests(kubeconfig)
        sampler_task.cancel()
        configuration_seen, revision_seen = first_seen[CONFIGURATIONS], first_seen[REVISIONS]
        hop_times = {
            "apply -> Configuration": [configuration_seen[n] - created[n] for n in names],
            "Configuration -> Revision": [revision_seen[f"{n}-00001"] - configuration_seen[n] for n in names],
            "Revision -> Deployment": [created[n] + latency - revision_seen[f"{n}-00001"]
                                       for n, latency in zip(names, latencies)],
        }
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
        for task in informer_tasks:
            task.cancel()

        p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
        b50, b99 = statistics.median(baseline), percentile(baseline, 0.99)
        print(f"services: {services} applied at once")
        print(f"baseline (Deployment created directly): p50 {b50 * 1000:.0f} ms  p99 {b99 * 1000:.0f} ms")
        print(f"Service -> Deployment:                  p50 {p50 * 1000:.0f} ms  p99 {p99 * 1000:.0f} ms"
              f"  (target p99 <= 1000 ms: {'met' if p99 <= 1.0 else 'NOT met'})")
        a50, a99 = statistics.median(from_accepted), percentile(from_accepted, 0.99)
        print(f"  from each apply's return:             p50 {a50 * 1000:.0f} ms  p99 {a99 * 1000:.0f} ms"
              f"  (the applies themselves: p50 {statistics.median(apply_times) * 1000:.0f} ms,"
              f" p99 {percentile(apply_times, 0.99) * 1000:.0f} ms)")
        print(f"ratio to baseline:                      p50 x{p50 / max(b50, 1e-6):.1f}  p99 x{p99 / max(b99, 1e-6):.1f}")
        # Each Service needs four writes before its Deployment exists (its apply, then the
        # Configuration, Revision and Deployment creates, each waiting for the one before). At
        # the rate the API server took the baseline's creates, 4 x N writes need this long:
        floor = 4 * max(baseline)
        print(f"API server floor (4 writes per Service at the baseline's rate, {services / max(baseline):.0f} "
              f"creates/s): {floor * 1000:.0f} ms; p99 is x{p99 / max(floor, 1e-6):.2f} of it")
        for hop, values in hop_times.items():
            print(f"  hop {hop:<27} p50 {statistics.median(values) * 1000:.0f} ms"
                  f"  p99 {percentile(values, 0.99) * 1000:.0f} ms")
        print(f"  last Deployment seen {last_deployment:.2f} s after the first apply;"
              f" {sampler.summary(last_deployment)}")
        print("  CPU until then, by process (% of one core):"
              f" {top_cpu(processes_before, processes_after, last_deployment)}")
        served = {key: requests_after[key] - requests_before.get(key, 0.0) for key in requests_after}
        writes = sorted(((count, verb, resource) for (verb, resource), count in served.items() if count >= 1),
                        reverse=True)
        print(f"  API writes served until then: {sum(count for count, _, _ in writes):.0f} ("
              + ", ".join(f"{verb} {resource} {count:.0f}" for count, verb, resource in writes[:10]) + ")")
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
    from localcluster import binaries
    from localcluster.controlplane import LocalCluster, Ports

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
