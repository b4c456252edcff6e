"""How fast a traffic change made with ``kubectl patch`` is served by Envoy, on the whole local stack.

Run on demand (a few minutes, most of it starting the cluster)::

    .venv/bin/python bench/ingress_bench.py [--rounds 20]

Starts the local Kubernetes and knserve (controller, activator, autoscaler, Envoy) on free
ports in a temporary directory, deploys a Service with two warm revisions (min-scale 1, and
target-burst-capacity 0 so the activator stays out of the path) that answer ``Hello a!`` and
``Hello b!``, and measures, in one run:

1. the baseline: one request's round trip (keep-alive, p50/p99) straight to the pod's user
   container, to its queue-proxy, and through Envoy;
2. a split change on the Service (``spec.traffic`` 100/0 <-> 0/100 between the two revisions)
   until Envoy serves it, polled through the ingress on a keep-alive connection:
   - from the merge PATCH sent to the API server (what ``kubectl patch`` sends), and
   - from starting ``kubectl patch`` (adds kubectl's own start-up and discovery, printed
     alone too, with what is left once kubectl has returned).
   Targets (issue 4): p50 <= 100 ms, p99 <= 300 ms.

Side effects: starts and stops processes, writes only in its temporary directory.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localcluster import binaries  # noqa: E402
from localcluster.controlplane import LocalCluster, Ports  # noqa: E402
from localcluster.stack import LocalStack, kubectl_binary  # noqa: E402
from tests.support.http_client import KeepAliveClient  # noqa: E402

NAMESPACE = "bench"
SERVICE = "split"
REVISIONS = ("split-00001", "split-00002")
ANSWERS = {"split-00001": "Hello a!\n", "split-00002": "Hello b!\n"}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def service(target: str) -> dict:
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE},
        "spec": {"template": {
            # Warm, and the activator out of the path: Envoy sends straight to the pods.
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1",
                                         "autoscaling.knative.dev/target-burst-capacity": "0"}},
            "spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go", "ports": [{"containerPort": 8080}],
                                     "env": [{"name": "TARGET", "value": target}]}]},
        }},
    }


def split_traffic(to: str) -> list[dict]:
    return [{"revisionName": name, "percent": 100 if name == to else 0} for name in REVISIONS]


class Bench:
    def __init__(self, state_dir: Path) -> None:
        found = binaries.binaries()
        if not found.all_present():
            found = binaries.ensure_binaries(progress=lambda message: print(f"==> {message}", file=sys.stderr))
        self.cluster = LocalCluster(state_dir, found, ports=Ports.free())
        self.stack = LocalStack(self.cluster)
        self.host = f"{SERVICE}.{NAMESPACE}.example.com"

    # --- setup -------------------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig),
               "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        result = subprocess.run([kubectl_binary(), *args], env=env, input=input, capture_output=True, text=True,
                                timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def start(self) -> None:
        began = time.monotonic()
        self.cluster.start(progress=lambda message: None, node=True)
        self.stack.start(progress=lambda message: None)
        print(f"stack up in {time.monotonic() - began:.0f}s")
        self.kubectl("create", "namespace", NAMESPACE)
        self.wait(lambda: subprocess.run(
            [kubectl_binary(), "get", "serviceaccount", "default", "-n", NAMESPACE],
            env={"KUBECONFIG": str(self.cluster.kubeconfig)}, capture_output=True).returncode == 0, "service account")
        self.kubectl("apply", "-f", "-", input=json.dumps(service("a")))
        self.wait(lambda: self.ready("ksvc", SERVICE), "first revision")
        deployed = service("b")
        deployed["spec"]["traffic"] = split_traffic(REVISIONS[0])
        self.kubectl("apply", "-f", "-", input=json.dumps(deployed))
        self.wait(lambda: self.ready("ksvc", SERVICE) and self.ready("revision", REVISIONS[1]), "second revision")
        self.wait(lambda: self.answer() == ANSWERS[REVISIONS[0]], "first answer through Envoy")

    def stop(self) -> None:
        self.stack.stop(progress=lambda message: None)
        self.cluster.stop(progress=lambda message: None)

    @staticmethod
    def wait(predicate: Callable[[], bool], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.2)

    def ready(self, kind: str, name: str) -> bool:
        current = json.loads(self.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json"))
        status = current.get("status", {})
        return (status.get("observedGeneration") == current["metadata"]["generation"]
                and any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])))

    def answer(self) -> str:
        try:
            return KeepAliveClient("127.0.0.1", self.stack.ports.ingress, self.host).get()[1]
        except (OSError, http.client.HTTPException):
            return ""

    # --- baseline ----------------------------------------------------------------------------
    def pod_ip(self, revision: str) -> str:
        pods = json.loads(self.kubectl("get", "pods", "-n", NAMESPACE, "-l", f"serving.knative.dev/revision={revision}",
                                       "-o", "json"))["items"]
        running = [pod for pod in pods if pod.get("status", {}).get("podIP") and not pod["metadata"].get("deletionTimestamp")]
        return str(running[0]["status"]["podIP"])

    @staticmethod
    def round_trips(connection: KeepAliveClient, count: int = 300) -> list[float]:
        connection.get()
        samples = []
        for _ in range(count):
            began = time.perf_counter()
            status, _ = connection.get()
            samples.append(time.perf_counter() - began)
            assert status == 200, status
        connection.close()
        return samples

    @staticmethod
    def throughput(connect: Callable[[], KeepAliveClient], *, clients: int = 8, seconds: float = 3.0) -> float:
        """Requests a second from ``clients`` threads, each on its own keep-alive connection."""
        counts = [0] * clients
        stop = time.perf_counter() + seconds

        def worker(index: int) -> None:
            connection = connect()
            while time.perf_counter() < stop:
                connection.get()
                counts[index] += 1
            connection.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(counts) / seconds

    def throughputs(self) -> dict[str, float]:
        pod = self.pod_ip(REVISIONS[0])
        ingress = self.stack.ports.ingress
        return {
            "straight to the pod (user container)": self.throughput(lambda: KeepAliveClient(pod, 8080)),
            "straight to the pod's queue-proxy": self.throughput(lambda: KeepAliveClient(pod, 8012, self.host)),
            "through Envoy": self.throughput(lambda: KeepAliveClient("127.0.0.1", ingress, self.host)),
        }

    def baseline(self) -> dict[str, list[float]]:
        self.patch_api(split_traffic(REVISIONS[0]))
        self.wait(lambda: self.answer() == ANSWERS[REVISIONS[0]], "split back on the first revision")
        pod = self.pod_ip(REVISIONS[0])
        return {
            "straight to the pod (user container)": self.round_trips(KeepAliveClient(pod, 8080)),
            "straight to the pod's queue-proxy": self.round_trips(KeepAliveClient(pod, 8012, self.host)),
            "through Envoy": self.round_trips(KeepAliveClient("127.0.0.1", self.stack.ports.ingress, self.host)),
        }

    # --- patches -----------------------------------------------------------------------------
    def patch_api(self, traffic: list[dict]) -> None:
        body = json.dumps({"spec": {"traffic": traffic}}).encode()
        request = urllib.request.Request(
            f"{self.cluster.server}/apis/serving.knative.dev/v1/namespaces/{NAMESPACE}/services/{SERVICE}",
            data=body, method="PATCH", headers={
                "Content-Type": "application/merge-patch+json",
                "Authorization": f"Bearer {self.cluster._token()}"})
        context = ssl.create_default_context(cafile=str(self.cluster.pki_dir / "ca.crt"))
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            response.read()

    def patch_kubectl(self, traffic: list[dict]) -> None:
        self.kubectl("patch", "ksvc", SERVICE, "-n", NAMESPACE, "--type", "merge",
                     "-p", json.dumps({"spec": {"traffic": traffic}}))

    def until_served(self, patch: Callable[[list[dict]], None], to: str) -> tuple[float, float]:
        """Seconds from starting ``patch`` until Envoy answers from ``to``, and the patch's own time."""
        want = ANSWERS[to]
        poll = KeepAliveClient("127.0.0.1", self.stack.ports.ingress, self.host)
        poll.get()
        patch_took: list[float] = []

        def run_patch() -> None:
            began_patch = time.perf_counter()
            patch(split_traffic(to))
            patch_took.append(time.perf_counter() - began_patch)

        began = time.perf_counter()
        patcher = threading.Thread(target=run_patch)
        patcher.start()
        deadline = began + 30
        while True:
            try:
                status, body = poll.get()
            except (OSError, http.client.HTTPException):
                status, body = 0, ""
            if status == 200 and body == want:
                served = time.perf_counter() - began
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"Envoy never served the split to {to}")
            time.sleep(0.001)
        patcher.join()
        poll.close()
        return served, patch_took[0]

    def patches(self, patch: Callable[[list[dict]], None], rounds: int) -> tuple[list[float], list[float]]:
        served, patch_times = [], []
        current = REVISIONS[0] if self.answer() == ANSWERS[REVISIONS[0]] else REVISIONS[1]
        for _ in range(rounds):
            current = REVISIONS[1] if current == REVISIONS[0] else REVISIONS[0]
            took, patch_took = self.until_served(patch, current)
            served.append(took)
            patch_times.append(patch_took)
            time.sleep(0.2)
        return served, patch_times


def report(label: str, samples: list[float], *, target: tuple[float, float] | None = None) -> None:
    line = (f"  {label:<48} p50 {ms(statistics.median(samples))}   p99 {ms(percentile(samples, 0.99))}"
            f"   (n={len(samples)})")
    if target is not None:
        p50_ok = statistics.median(samples) <= target[0]
        p99_ok = percentile(samples, 0.99) <= target[1]
        line += f"   target p50 <= {target[0] * 1000:.0f} ms {'met' if p50_ok else 'MISSED'},"
        line += f" p99 <= {target[1] * 1000:.0f} ms {'met' if p99_ok else 'MISSED'}"
    print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="patches per way of patching")
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="knserve-ingress-bench-") as state:
        bench = Bench(Path(state))
        try:
            bench.start()
            baseline = bench.baseline()
            throughputs = bench.throughputs()
            api_served, api_patch = bench.patches(bench.patch_api, args.rounds)
            kubectl_served, kubectl_patch = bench.patches(bench.patch_kubectl, args.rounds)
        finally:
            bench.stop()
    envoy_p50 = statistics.median(baseline["through Envoy"])
    print("\nbaseline: one request's round trip on a keep-alive connection")
    for label, samples in baseline.items():
        report(label, samples)
    print("\nbaseline: requests/s from 8 threads on keep-alive connections (the sample app is plain Python)")
    for label, rate in throughputs.items():
        print(f"  {label:<48} {rate:7.0f} req/s")
    print("\nsplit change (100/0 <-> 0/100) until Envoy serves it")
    report("merge PATCH to the API server -> served", api_served, target=(0.100, 0.300))
    report("  the PATCH request alone", api_patch)
    report("kubectl patch -> served", kubectl_served, target=(0.100, 0.300))
    report("  kubectl patch alone", kubectl_patch)
    report("  served after kubectl patch returned", [max(0.0, served - took)
                                                     for served, took in zip(kubectl_served, kubectl_patch)])
    print(f"\nPATCH -> served p50 is {statistics.median(api_served) / envoy_p50:.0f}x one request through Envoy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
