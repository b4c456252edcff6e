"""Knative's hello world, applied unchanged, answers through the ingress by Host header."""

from __future__ import annotations

import json

from tests.e2e.conftest import EXAMPLES


def test_hello_world_answers_through_the_ingress(stack, namespace):
    stack.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "hello.yaml"))
    service = stack.wait_ready("ksvc", "hello", namespace)
    assert service["status"]["url"] == f"http://hello.{namespace}.example.com"
    assert service["status"]["latestReadyRevisionName"] == "hello-00001"

    body = stack.wait_answer(f"hello.{namespace}.example.com")
    assert body == "Hello World!\n"
    # host:port is the same virtual host
    assert stack.request(f"hello.{namespace}.example.com:8080")[1] == "Hello World!\n"


def test_unknown_host_gets_404(stack):
    status, _ = stack.request("nobody.nowhere.example.com")
    assert status == 404


def test_knserve_runs_as_pods_of_config_deployments(stack):
    """`local up` installs config/ and the node runs the components as pods under their own
    service accounts, readable with kubectl like any workload."""
    pods = json.loads(stack.kubectl("get", "pods", "-n", "knative-serving", "-o", "json").stdout)["items"]
    by_deployment = {}
    for pod in pods:
        owner = pod["metadata"]["ownerReferences"][0]["name"].rsplit("-", 1)[0]  # the ReplicaSet's Deployment
        by_deployment[owner] = pod
    assert set(by_deployment) == {"controller", "webhook", "activator", "autoscaler", "envoy", "knserve-queue", "nats",
                                  "knserve-gateway", "knserve-dashboard"}
    for name, pod in by_deployment.items():
        assert pod["status"]["phase"] == "Running", (name, pod["status"])
        assert all(c["ready"] for c in pod["status"]["containerStatuses"]), (name, pod["status"])
        assert pod["spec"]["serviceAccountName"] == name
    assert by_deployment["envoy"]["spec"]["hostNetwork"] is True

    logs = stack.kubectl("logs", "-n", "knative-serving", "deployment/controller").stdout
    # One of the two replicas leads (it reconciles), the other stands by for the Lease.
    assert "informer" in logs or "reconcil" in logs or "lease knative-serving/knserve-controller" in logs, logs[-2000:]


def test_local_status_lists_every_component_with_its_log(stack):
    """`knserve local status` covers the components `up` does not wait for too (the call queue,
    NATS, the gateway, the dashboard), each healthy once its pods are Ready."""
    import time

    deadline = time.monotonic() + 90
    while True:
        rows = {name: (healthy, log) for name, _, healthy, log in stack.local.status()}
        if all(healthy for healthy, _ in rows.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(rows) == {"autoscaler", "activator", "webhook", "controller", "envoy", "knserve-queue", "nats",
                         "knserve-gateway", "knserve-dashboard"}
    assert all(healthy for healthy, _ in rows.values()), rows
    assert all(str(log).endswith(".log") for _, log in rows.values()), rows
