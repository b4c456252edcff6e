"""Losing one of two containerd nodes under steady load: its kubelet, kube-proxy, containerd and
every pod's processes stop at once, as when a machine loses its power. The revision's pods are
replaced on the kept node and the traffic through the kept node's Envoy is served in full again;
the failed requests and the times to recover are printed (and kept in the README)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from localcluster.realcluster import ContainerdCluster

NODES = {"knserve-node-0", "knserve-node-1"}
SURVIVOR = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "survivor", "namespace": "default"},
    "spec": {"template": {
        "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "4"}},
        "spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go:latest", "ports": [{"containerPort": 8080}]}]},
    }},
}
CLIENTS = 4
LOAD_LIMIT = 300.0
"""The load stops after this long whatever happens (the test then fails on what it saw)."""
REPLACE_LIMIT = 180.0
RECOVER_LIMIT = 60.0
"""How long after the pods are replaced the traffic may take to be served in full again (Envoy
learns of the new pods through knserve's controller)."""
STEADY = 15.0
"""The traffic counts as recovered after this long with every request answered."""


class Recorder:
    """Requests sent back to back by ``CLIENTS`` clients until stopped: each one's end time and
    failure (None when answered with the sample's body)."""

    def __init__(self, address: str, host: str) -> None:
        self.address = address
        self.host = host
        self.outcomes: list[tuple[float, str | None]] = []
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._clients = [threading.Thread(target=self._client, name=f"client-{n}") for n in range(CLIENTS)]

    def _client(self) -> None:
        deadline = time.monotonic() + LOAD_LIMIT
        while not self.stopped.is_set() and time.monotonic() < deadline:
            failure = None
            try:
                request = urllib.request.Request(f"http://{self.address}:8080/", headers={"Host": self.host})
                with urllib.request.urlopen(request, timeout=10) as answer:
                    if answer.read() != b"Hello World!\n":
                        failure = "unexpected body"
            except urllib.error.HTTPError as error:
                failure = f"HTTP {error.code}"
            except (urllib.error.URLError, OSError) as error:
                failure = type(getattr(error, "reason", error)).__name__
            with self._lock:
                self.outcomes.append((time.monotonic(), failure))
            time.sleep(0.01)

    def start(self) -> None:
        for client in self._clients:
            client.start()

    def stop(self) -> None:
        self.stopped.set()
        for client in self._clients:
            client.join()

    def since(self, moment: float) -> list[tuple[float, str | None]]:
        with self._lock:
            return [outcome for outcome in self.outcomes if outcome[0] >= moment]


def _kubectl(real: ContainerdCluster, *args: str, input: str | None = None) -> str:
    result = real.kubectl(*args, input=input, timeout=200)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def _pods(real: ContainerdCluster) -> list[dict[str, Any]]:
    listed = json.loads(_kubectl(real, "get", "pods", "-l", "serving.knative.dev/service=survivor", "-o", "json"))
    return list(listed["items"])


def _ready_on(pod: dict[str, Any], node: str) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return (pod["spec"].get("nodeName") == node and "deletionTimestamp" not in pod["metadata"]
            and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions))


def _describe(pods: list[dict[str, Any]]) -> str:
    return "; ".join(f"{p['metadata']['name']} on {p['spec'].get('nodeName')} {p.get('status', {}).get('phase')}"
                     f"{' terminating' if 'deletionTimestamp' in p['metadata'] else ''}" for p in pods)


def test_losing_a_node_under_steady_load_moves_its_pods_and_the_traffic_recovers(two_nodes: ContainerdCluster) -> None:
    _kubectl(two_nodes, "-n", "knative-serving", "rollout", "status", "deployment/controller", "deployment/activator",
             "deployment/autoscaler", "deployment/envoy", "deployment/webhook", "--timeout=180s")
    _kubectl(two_nodes, "apply", "-f", "-", input=json.dumps(SURVIVOR))
    _kubectl(two_nodes, "wait", "ksvc/survivor", "--for=condition=Ready", "--timeout=120s")
    before = _pods(two_nodes)
    assert {p["spec"]["nodeName"] for p in before} == NODES, f"not spread over both nodes: {_describe(before)}"
    envoys = json.loads(_kubectl(two_nodes, "-n", "knative-serving", "get", "pods", "-l",
                                 "app.kubernetes.io/component=ingress", "-o", "json"))["items"]
    kept = envoys[0]["spec"]["nodeName"]
    lost = (NODES - {kept}).pop()
    lost_pods = sum(p["spec"]["nodeName"] == lost for p in before)
    components = json.loads(_kubectl(two_nodes, "-n", "knative-serving", "get", "pods", "-o", "json"))["items"]
    lost_components = sorted(p["metadata"].get("labels", {}).get("app.kubernetes.io/component", p["metadata"]["name"])
                             for p in components if p["spec"].get("nodeName") == lost)
    load = Recorder(envoys[0]["status"]["podIP"], "survivor.default.example.com")
    load.start()
    replaced_after = None
    try:
        time.sleep(5)
        assert load.since(0) and all(failure is None for _, failure in load.since(0)), "failures before the loss"
        lost_at = time.monotonic()
        next(node for node in two_nodes.nodes if node.name == lost).lose(progress=lambda _: None)
        while time.monotonic() - lost_at < REPLACE_LIMIT:
            pods = _pods(two_nodes)
            if sum(_ready_on(p, kept) for p in pods) >= 4:
                replaced_after = time.monotonic() - lost_at
                break
            time.sleep(1)
        recovered_at = None
        while replaced_after is not None and time.monotonic() - lost_at < replaced_after + RECOVER_LIMIT:
            time.sleep(1)
            last_failure = max((moment for moment, failure in load.since(lost_at) if failure is not None),
                               default=lost_at)
            if time.monotonic() - last_failure >= STEADY:
                recovered_at = last_failure
                break
    finally:
        load.stop()
    pods = _pods(two_nodes)
    assert replaced_after is not None, f"the lost node's pods were not replaced within {REPLACE_LIMIT:.0f}s: {_describe(pods)}"
    after_loss = load.since(lost_at)
    failures: dict[str, int] = {}
    for _, failure in after_loss:
        if failure is not None:
            failures[failure] = failures.get(failure, 0) + 1
    recovery = (f"the last failure {recovered_at - lost_at:.1f}s after the loss" if recovered_at is not None
                else "still failing at the end")
    print(f"\nnode loss under load: {lost_pods} of 4 pods on the lost node; {len(after_loss)} requests after the loss, "
          f"{sum(failures.values())} failed {failures}; {recovery}; pods replaced on {kept} after {replaced_after:.1f}s; "
          f"knserve's pods on the lost node: {', '.join(lost_components) or 'none'}")
    assert recovered_at is not None, (
        f"requests were still failing {RECOVER_LIMIT:.0f}s after the pods were replaced: {failures}")
    steady = load.since(recovered_at + 0.001)
    assert len(steady) > 50, f"only {len(steady)} requests answered in the {STEADY:.0f}s after the last failure"
    assert _kubectl(two_nodes, "get", "node", lost, "-o",
                    "jsonpath={.status.conditions[?(@.type=='Ready')].status}").strip() == "Unknown"
