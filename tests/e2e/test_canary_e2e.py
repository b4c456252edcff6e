"""Issue 14 end to end: canaries that promote or roll back by themselves, driven as users do
(``kubectl apply``/``patch``, steady load through Envoy with a Host header), judged on the
request metrics the queue-proxies report to the autoscaler.

Intervals are short (a few seconds) and the bounds generous where the test wants a pass, so
a busy machine does not decide the outcome; the failing Revisions fail by far (20% errors, an
800 ms delay against a 300 ms bound).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.e2e.test_traffic_e2e import Answers, steady_stream

FAULTY_IMAGE = "knserve.dev/samples/faulty"
V1, V2 = "Hello v1!\n", "Hello v2!\n"
HOST = "hello.{namespace}.example.com"


def canary_service(target: str, *, env: dict[str, str] | None = None, traffic: list[dict[str, Any]] | None = None,
                   **policy: str) -> dict[str, Any]:
    annotations = {"knserve.dev/canary-steps": "5,25,50", "knserve.dev/canary-interval": "3s",
                   "knserve.dev/canary-min-requests": "10", "knserve.dev/canary-max-latency-p99": "2s",
                   **{f"knserve.dev/canary-{key.replace('_', '-')}": value for key, value in policy.items()}}
    variables = {"TARGET": target, **(env or {})}
    service: dict[str, Any] = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "hello", "annotations": annotations},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}},
            "spec": {"containers": [{
                "image": FAULTY_IMAGE, "ports": [{"containerPort": 8080}],
                "env": [{"name": name, "value": value} for name, value in variables.items()]}]}}},
    }
    if traffic is not None:
        service["spec"]["traffic"] = traffic
    return service


def canary(stack, namespace: str) -> dict[str, Any]:
    return stack.get("ksvc", "hello", namespace).get("status", {}).get("canary") or {}


def condition(service: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in service.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def deploy_v1(stack, namespace: str, *, traffic: list[dict[str, Any]] | None = None, **policy: str) -> None:
    stack.apply(canary_service("v1", traffic=traffic, **policy), namespace)
    service = stack.wait_ready("ksvc", "hello", namespace, timeout=120)
    assert (service["status"]["canary"]["phase"], service["status"]["canary"]["revisionName"]) == (
        "Promoted", "hello-00001"), service["status"]
    stack.wait_answer(HOST.format(namespace=namespace))


def wait_phase(stack, namespace: str, phases: set[str], *, revision: str = "hello-00002",
               timeout: float = 120) -> tuple[dict[str, Any], list[int]]:
    """Poll until the canary of ``revision`` is in one of ``phases``; its shares seen on the way."""
    deadline = time.monotonic() + timeout
    seen: list[int] = []
    while True:
        state = canary(stack, namespace)
        if state.get("phase") == "Progressing" and (not seen or seen[-1] != state.get("percent")):
            seen.append(state["percent"])
        if state.get("revisionName") == revision and state.get("phase") in phases:
            return state, seen
        assert time.monotonic() < deadline, f"the canary never reached {phases}: {json.dumps(state)}"
        time.sleep(0.2)


def assert_only(answers: Answers, body: str) -> None:
    assert answers.total >= 50, f"only {answers.total} requests were made"
    assert dict(answers.bodies) == {body: answers.total}, (dict(answers.bodies), answers.failures[:5])


def test_a_healthy_revision_walks_every_step_and_is_promoted(stack, namespace):
    deploy_v1(stack, namespace)
    host = HOST.format(namespace=namespace)
    with steady_stream(stack.local.ports.ingress, host, rate=40, clients=4) as answers:
        stack.apply(canary_service("v2"), namespace)
        state, seen = wait_phase(stack, namespace, {"Promoted", "RolledBack"})
    assert state["phase"] == "Promoted", state
    assert state["revisionName"] == "hello-00002" and seen == [5, 25, 50], (seen, state)
    assert not answers.failures, answers.failures[:5]
    assert answers.bodies[V2] > 0 and answers.bodies[V1] > 0

    service = stack.wait_ready("ksvc", "hello", namespace)
    assert condition(service, "CanaryReady")["reason"] == "Promoted"
    assert [(t["revisionName"], t["percent"]) for t in service["status"]["traffic"]] == [("hello-00002", 100)]
    with steady_stream(stack.local.ports.ingress, host, rate=50, clients=2) as after:
        time.sleep(2)
    assert_only(after, V2)
    events = stack.kubectl("get", "events", "-n", namespace, "--field-selector", "involvedObject.kind=Service",
                           "-o", "jsonpath={.items[*].reason}").stdout.split()
    assert {"CanaryStarted", "CanaryStep", "CanaryPromoted"} <= set(events), events


def test_a_revision_failing_one_request_in_five_is_rolled_back_at_its_first_interval(stack, namespace):
    deploy_v1(stack, namespace)
    host = HOST.format(namespace=namespace)
    with steady_stream(stack.local.ports.ingress, host, rate=40, clients=4) as answers:
        stack.apply(canary_service("v2", env={"ERROR_PERCENT": "20"}), namespace)
        state, seen = wait_phase(stack, namespace, {"Promoted", "RolledBack"})
    assert state["phase"] == "RolledBack", state
    assert seen == [5], seen  # judged at the first step, never moved on
    assert "error rate" in state["message"] and "hello-00001" in state["message"], state
    failed = [f for f in answers.failures if f.startswith("500")]
    assert len(failed) < 0.05 * answers.total, (len(failed), answers.total)  # only the canary's share failed

    service = stack.get("ksvc", "hello", namespace)
    ready = condition(service, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RolledBack")
    assert "error rate" in ready["message"]
    assert service["status"]["latestCreatedRevisionName"] == "hello-00002"
    reason = stack.kubectl("get", "ksvc", "hello", "-n", namespace, "--no-headers").stdout.split()[-1]
    assert reason == "RolledBack"
    deadline = time.monotonic() + 30
    while [(t["revisionName"], t["percent"]) for t in stack.get("ksvc", "hello", namespace)["status"]["traffic"]] \
            != [("hello-00001", 100)]:
        assert time.monotonic() < deadline, stack.get("ksvc", "hello", namespace)["status"]["traffic"]
        time.sleep(0.2)
    time.sleep(1)  # the route's status says what Envoy was given; give it a moment to apply
    with steady_stream(stack.local.ports.ingress, host, rate=50, clients=2) as after:
        time.sleep(2)
    assert_only(after, V1)


def test_a_slow_revision_is_rolled_back_on_its_p99(stack, namespace):
    deploy_v1(stack, namespace, max_latency_p99="300ms")
    host = HOST.format(namespace=namespace)
    with steady_stream(stack.local.ports.ingress, host, rate=40, clients=8):
        stack.apply(canary_service("v2", env={"DELAY_MS": "800"}, max_latency_p99="300ms"), namespace)
        state, _ = wait_phase(stack, namespace, {"Promoted", "RolledBack"})
    assert state["phase"] == "RolledBack", state
    assert "p99 latency" in state["message"], state
    assert state["lastAnalysis"]["p99Ms"] > 300


def test_a_manual_traffic_edit_ends_the_analysis_and_stands(stack, namespace):
    tagged = [{"latestRevision": True, "percent": 100}, {"latestRevision": True, "tag": "candidate", "percent": 0}]
    deploy_v1(stack, namespace, interval="10m", traffic=tagged)
    host = HOST.format(namespace=namespace)
    stack.apply(canary_service("v2", interval="10m", traffic=tagged), namespace)
    wait_phase(stack, namespace, {"Progressing"})
    # the canary keeps its tag URL while it gets 5% of the rest
    deadline = time.monotonic() + 30
    while stack.request(f"candidate-{host}") != (200, V2):
        assert time.monotonic() < deadline, stack.request(f"candidate-{host}")
        time.sleep(0.2)
    with steady_stream(stack.local.ports.ingress, host, rate=100, clients=4) as during:
        time.sleep(2)
    assert not during.failures and during.share(V2) < 25, dict(during.bodies)
    split = [{"revisionName": "hello-00001", "percent": 50}, {"revisionName": "hello-00002", "percent": 50}]
    stack.kubectl("patch", "ksvc", "hello", "-n", namespace, "--type", "merge",
                  "-p", json.dumps({"spec": {"traffic": split}}))
    state, _ = wait_phase(stack, namespace, {"Stopped", "RolledBack", "Promoted"}, timeout=60)
    assert state["phase"] == "Stopped", state
    service = stack.wait_ready("ksvc", "hello", namespace)
    assert condition(service, "CanaryReady")["reason"] == "Stopped"
    assert sorted((t["revisionName"], t["percent"]) for t in service["status"]["traffic"]) == [
        ("hello-00001", 50), ("hello-00002", 50)]
    with steady_stream(stack.local.ports.ingress, host, rate=100, clients=4) as answers:
        time.sleep(3)
    assert not answers.failures and answers.total >= 100
    assert 25 <= answers.share(V2) <= 75, dict(answers.bodies)


def test_a_malformed_canary_annotation_is_refused_at_apply(stack, namespace):
    bad = canary_service("v1", steps="50,25", max_error_rate="two")
    result = stack.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "knserve.dev/canary-steps" in result.stderr and "like \"5,25,50\"" in result.stderr, result.stderr
    assert "knserve.dev/canary-max-error-rate" in result.stderr, result.stderr
    assert stack.kubectl("get", "ksvc", "hello", "-n", namespace, check=False).returncode != 0


@pytest.fixture
def fast_scale_to_zero(stack):
    """The autoscaling e2e's short windows, so a revision without traffic reaches zero in seconds."""
    from tests.e2e.test_autoscaling_e2e import FAST_AUTOSCALER, _merge_patch

    original = stack.get("configmap", "config-autoscaler", "knative-serving").get("data") or {}
    _merge_patch(stack, "configmap", "config-autoscaler", dict(FAST_AUTOSCALER))
    try:
        yield stack
    finally:
        _merge_patch(stack, "configmap", "config-autoscaler", {key: original.get(key) for key in FAST_AUTOSCALER})


def revision_pods(stack, namespace: str, revision: str) -> int:
    pods = json.loads(stack.kubectl("get", "pods", "-n", namespace, "-l", f"serving.knative.dev/revision={revision}",
                                    "-o", "json").stdout)["items"]
    return sum(1 for pod in pods if not pod["metadata"].get("deletionTimestamp"))


def test_a_candidate_that_scales_to_zero_between_requests_is_still_judged_and_promoted(fast_scale_to_zero, namespace):
    stack = fast_scale_to_zero
    deploy_v1(stack, namespace, steps="50", interval="45s")
    host = HOST.format(namespace=namespace)
    v2 = canary_service("v2", steps="50", interval="45s")
    del v2["spec"]["template"]["metadata"]  # no min-scale: the candidate may go to zero
    stack.apply(v2, namespace)
    wait_phase(stack, namespace, {"Progressing"})

    def burst() -> set[str]:
        return {stack.request(host)[1] for _ in range(30)}

    assert V2 in burst()
    deadline = time.monotonic() + 40
    while revision_pods(stack, namespace, "hello-00002"):
        assert time.monotonic() < deadline, "the candidate never scaled to zero"
        assert canary(stack, namespace).get("phase") == "Progressing", canary(stack, namespace)
        time.sleep(0.5)
    assert canary(stack, namespace).get("phase") == "Progressing"  # zero within the step
    assert V2 in burst()  # woken through the activator, answered, counted
    state, _ = wait_phase(stack, namespace, {"Promoted", "RolledBack"})
    assert state["phase"] == "Promoted", state
    assert state["lastAnalysis"]["requests"] >= 10, state
