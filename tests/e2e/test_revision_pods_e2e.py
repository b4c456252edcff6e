"""A revision's pods on the node, as Knative runs them.

Exec readiness probes run in the user container (with its environment), the queue-proxy
probing the user port over TCP. Requests in flight survive the deletion of their pod: it is
deleted while a handful of slow requests run in it, each longer than the queue-proxy's drain
quiet period (30 s); the pod leaves the endpoints at once, but its app gets SIGTERM only once
the queue-proxy has answered the last of them (the user container's preStop waits on
``/wait-for-drain``), so every request completes with its full answer.
"""

from __future__ import annotations

import concurrent.futures
import json
import time

from tests.e2e.conftest import Stack

RUNTIME_IMAGE = "knserve.dev/samples/runtime"
IN_FLIGHT = 5
SLOW_MS = 40_000  # longer than the queue-proxy's 30 s drain quiet period


def service(name: str) -> dict:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1",
                                         "autoscaling.knative.dev/max-scale": "1"}},
            "spec": {"containers": [{"image": RUNTIME_IMAGE}]},
        }},
    }


def apply_when_admitted(stack: Stack, manifest: dict, namespace: str, timeout: float = 60) -> None:
    """Apply once the admission webhook has endpoints (it may still be getting them when the
    stack reports healthy)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            stack.apply(manifest, namespace)
            return
        except AssertionError as error:
            if "no endpoints available" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_exec_readiness_probe_runs_in_the_user_container(stack: Stack, namespace: str) -> None:
    probe = {"exec": {"command": ["/bin/sh", "-c", 'test "$READY_WORD" = yes']}, "periodSeconds": 1}
    manifest = service("probed")
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "READY_WORD", "value": "yes"}]  # only the user container has it
    container["readinessProbe"] = probe
    apply_when_admitted(stack, manifest, namespace)
    stack.wait_ready("ksvc", "probed", namespace)
    assert json.loads(stack.wait_answer(f"probed.{namespace}.example.com"))["env"]["K_REVISION"] == "probed-00001"

    deployment = stack.get("deployment", "probed-00001-deployment", namespace)
    user, queue = deployment["spec"]["template"]["spec"]["containers"]
    assert user["readinessProbe"]["exec"] == probe["exec"]
    queue_probe = json.loads(next(e["value"] for e in queue["env"] if e["name"] == "SERVING_READINESS_PROBE"))
    assert "exec" not in queue_probe and queue_probe["tcpSocket"]["port"] == 8080


def revision_pods(stack: Stack, namespace: str, revision: str) -> list[dict]:
    listed = json.loads(stack.kubectl("get", "pods", "-n", namespace, "-l", f"serving.knative.dev/revision={revision}",
                                      "-o", "json").stdout)
    return [pod for pod in listed["items"] if not pod["metadata"].get("deletionTimestamp")]


def test_requests_in_flight_finish_when_their_pod_is_deleted(stack: Stack, namespace: str) -> None:
    apply_when_admitted(stack, service("slow"), namespace)
    stack.wait_ready("ksvc", "slow", namespace)
    host = f"slow.{namespace}.example.com"
    stack.wait_answer(host)
    pods = revision_pods(stack, namespace, "slow-00001")
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    doomed = pods[0]["metadata"]["name"]

    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        pending = [pool.submit(stack.request, host, f"/?sleep={SLOW_MS}&n={n}", timeout=120) for n in range(IN_FLIGHT)]
        time.sleep(3)  # every request has reached the app and sleeps there
        deleted_at = time.monotonic()
        stack.kubectl("delete", "pod", doomed, "-n", namespace, "--wait=false")
        answers = [future.result(timeout=150) for future in pending]
        answered_after = time.monotonic() - deleted_at

    assert [status for status, _ in answers] == [200] * IN_FLIGHT, answers
    assert sorted(json.loads(body)["query"]["n"][0] for _, body in answers) == [str(n) for n in range(IN_FLIGHT)]
    assert answered_after > 30  # they ran on past the drain's quiet period, in the pod being deleted
    # The pod goes away once its app has answered them.
    deadline = time.monotonic() + 60
    while stack.kubectl("get", "pod", doomed, "-n", namespace, check=False).returncode == 0:
        assert time.monotonic() < deadline, f"pod {doomed} was not removed after its requests finished"
        time.sleep(0.5)
    assert stack.request(host, timeout=60)[0] == 200  # the replacement serves
