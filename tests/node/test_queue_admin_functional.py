"""The queue-proxy's admin port on the local node: an ordinary pod in another namespace cannot
make a revision pod drain, neither at the pod's IP nor through a Service; the kubelet's
preStop hook still can."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.node.test_node_functional import app_container, apply, get_json, is_ready, wait_for
from tests.node.test_services_functional import client

KNSERVE = str(Path(sys.executable).parent / "knserve")
QUIET_PERIOD_SECONDS = 3


def revision_like_pod(namespace: str, marker: Path) -> dict:
    """An app and a queue-proxy wired as a revision's Deployment wires them (preStop included)."""
    app = app_container(env=[{"name": "SIGTERM_FILE", "value": str(marker)}])
    app["lifecycle"] = {"preStop": {"httpGet": {"path": "/wait-for-drain", "port": 8022}}}
    queue = {
        "name": "queue-proxy",
        "image": "example.test/queue-proxy",
        "command": [KNSERVE, "queue-proxy"],
        "env": [
            {"name": "USER_PORT", "value": "8080"},
            {"name": "SERVING_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "DRAIN_QUIET_PERIOD_SECONDS", "value": str(QUIET_PERIOD_SECONDS)},
        ],
        "ports": [{"containerPort": 8012}, {"containerPort": 8022, "name": "http-queueadm"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8012,
                                       "httpHeaders": [{"name": "K-Network-Probe", "value": "queue"}]},
                           "periodSeconds": 1},
    }
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "victim", "namespace": namespace, "labels": {"app": "victim"}},
        "spec": {"terminationGracePeriodSeconds": 20, "containers": [app, queue]},
    }


def admin_service(namespace: str) -> dict:
    """As a revision's private Service does, it exposes the admin port."""
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "victim-private", "namespace": namespace},
        "spec": {"selector": {"app": "victim"}, "ports": [{"name": "http-queueadm", "port": 8022, "targetPort": 8022}]},
    }


def test_another_namespaces_pod_cannot_drain_a_pod_but_its_kubelet_can(cluster, namespace, tmp_path):
    marker = tmp_path / "sigterm"
    apply(cluster, revision_like_pod(namespace, marker), admin_service(namespace))
    wait_for("the victim ready", lambda: is_ready(get_json(cluster, "pod", "victim", "-n", namespace)))
    pod_ip = get_json(cluster, "pod", "victim", "-n", namespace)["status"]["podIP"]

    other = f"{namespace}-other"
    cluster.kubectl("create", "namespace", other)
    try:
        wait_for("the other namespace's service account",
                 lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", other, check=False).returncode == 0)
        targets = [f"http://{pod_ip}:8022/wait-for-drain",
                   f"http://victim-private.{namespace}.svc.cluster.local:8022/wait-for-drain"]
        apply(cluster, client(other, "attacker", [f"http={target}" for target in targets]))

        def refusals() -> list[str] | None:
            logs = cluster.kubectl("logs", "attacker", "-n", other, check=False).stdout
            found = {target for target in targets for line in logs.splitlines()
                     if target in line and "HTTPError 403" in line}
            return sorted(found) if len(found) == len(targets) else None

        assert wait_for("both ways to be refused", refusals, timeout=90) == sorted(targets)
        assert "http http" not in cluster.kubectl("logs", "attacker", "-n", other).stdout, "no attempt succeeded"
        time.sleep(2)  # a drain would fail the queue-proxy's readiness at once
        assert is_ready(get_json(cluster, "pod", "victim", "-n", namespace)), "the victim stayed in service"
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)

    # The kubelet's preStop hook is admitted: the app gets SIGTERM only after the quiet period.
    deleted = time.monotonic()
    cluster.kubectl("delete", "pod", "victim", "-n", namespace, "--wait=false")
    wait_for("the app's SIGTERM", marker.exists, timeout=30, interval=0.05)
    assert time.monotonic() - deleted >= QUIET_PERIOD_SECONDS - 0.5, "preStop returned before the drain"
