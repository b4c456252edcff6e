"""Knative's API as its users meet it through kubectl: what the Route's Kubernetes Services
carry, one tag made private by a label, config-features, and what the API refuses (and in
whose words)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import EXAMPLES

VISIBILITY = "networking.knative.dev/visibility"


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}")
        time.sleep(0.3)


def patch_template(stack, namespace: str, name: str, spec: dict[str, Any], *extra: str):  # type: ignore[no-untyped-def]
    body = json.dumps({"spec": {"template": {"spec": spec}}})
    return stack.kubectl("patch", "ksvc", name, "-n", namespace, "--type", "merge", "-p", body, *extra, check=False)


def test_route_services_carry_the_routes_labels_and_annotations(stack, namespace):
    stack.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "hello.yaml"))
    service = stack.wait_ready("ksvc", "hello", namespace)
    listed = json.loads(stack.kubectl("get", "services", "-n", namespace, "-l", "serving.knative.dev/service=hello",
                                      "-o", "json").stdout)
    by_name = {item["metadata"]["name"]: item for item in listed["items"]}
    assert "hello" in by_name, sorted(by_name)
    route_service = by_name["hello"]["metadata"]
    creator = service["metadata"]["annotations"]["serving.knative.dev/creator"]
    assert creator
    assert route_service["annotations"]["serving.knative.dev/creator"] == creator
    assert route_service["annotations"]["serving.knative.dev/lastModifier"] == creator
    assert route_service["labels"]["serving.knative.dev/route"] == "hello"
    revision = stack.get("revision", "hello-00001", namespace)
    assert revision["metadata"]["annotations"]["serving.knative.dev/creator"] == creator
    # every container is listed in the Revision's status, as Knative lists them
    assert [status["name"] for status in revision["status"]["containerStatuses"]] == ["user-container"]


def test_one_tag_is_made_cluster_local_by_labelling_its_service(stack, namespace):
    stack.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "hello.yaml"))
    stack.wait_ready("ksvc", "hello", namespace)
    traffic = {"spec": {"traffic": [{"latestRevision": True, "percent": 100},
                                    {"revisionName": "hello-00001", "percent": 0, "tag": "canary"}]}}
    stack.kubectl("patch", "ksvc", "hello", "-n", namespace, "--type", "merge", "-p", json.dumps(traffic))
    public_host = f"canary-hello.{namespace}.example.com"
    stack.wait_answer(public_host)

    def canary_url() -> str:
        route = stack.get("route", "hello", namespace)
        return next((t.get("url", "") for t in route.get("status", {}).get("traffic", []) if t.get("tag") == "canary"), "")

    stack.kubectl("label", "service", "canary-hello", "-n", namespace, f"{VISIBILITY}=cluster-local")
    private_url = f"http://canary-hello.{namespace}.svc.cluster.local"
    wait_until(lambda: canary_url() == private_url, f"the canary URL {private_url}")
    stack.wait_answer(public_host, want_status=404)
    stack.wait_answer(f"hello.{namespace}.example.com")  # the rest of the Route stays public
    ksvc = stack.get("ksvc", "hello", namespace)
    assert private_url in [t.get("url") for t in ksvc["status"]["traffic"]]

    stack.kubectl("label", "service", "canary-hello", "-n", namespace, f"{VISIBILITY}-")
    wait_until(lambda: canary_url() == f"http://{public_host}", "the canary URL public again")
    stack.wait_answer(public_host)


def test_config_features_exists_and_a_disabled_feature_is_refused_until_enabled(stack, namespace):
    features = json.loads(stack.kubectl("get", "configmap", "config-features", "-n", "knative-serving",
                                        "-o", "json").stdout)
    assert 'kubernetes.podspec-persistent-volume-claim: "disabled"' in features["data"]["_example"]
    stack.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "hello.yaml"))
    claim = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
             "containers": [{"name": "user-container", "image": "ghcr.io/knative/helloworld-go:latest",
                             "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]}]}
    refused = patch_template(stack, namespace, "hello", claim, "--dry-run=server")
    assert refused.returncode != 0
    assert ("must not set the field(s): spec.template.spec.volumes[0].persistentVolumeClaim"
            in refused.stderr), refused.stderr
    enable = json.dumps({"data": {"kubernetes.podspec-persistent-volume-claim": "enabled"}})
    stack.kubectl("patch", "configmap", "config-features", "-n", "knative-serving", "--type", "merge", "-p", enable)
    try:
        wait_until(lambda: patch_template(stack, namespace, "hello", claim, "--dry-run=server").returncode == 0,
                   "the claim accepted once the feature is enabled", timeout=30)
    finally:
        stack.kubectl("patch", "configmap", "config-features", "-n", "knative-serving", "--type", "json", "-p",
                      '[{"op": "remove", "path": "/data/kubernetes.podspec-persistent-volume-claim"}]')


def test_the_api_refuses_what_knative_refuses_in_knatives_words(stack, namespace):
    stack.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "hello.yaml"))
    image = "ghcr.io/knative/helloworld-go:latest"
    privileged = patch_template(stack, namespace, "hello", {"containers": [
        {"name": "user-container", "image": image, "securityContext": {"privileged": True}}]})
    assert ("must not set the field(s): spec.template.spec.containers[0].securityContext.privileged"
            in privileged.stderr), privileged.stderr
    invalid_name = patch_template(stack, namespace, "hello", {"containers": [{"name": "&Invalid", "image": image}]},
                                  "--dry-run=server")
    assert "invalid value: &Invalid: spec.template.spec.containers[0].name" in invalid_name.stderr, invalid_name.stderr
    host_network = patch_template(stack, namespace, "hello", {"hostNetwork": True})
    assert "must not set the field(s): spec.template.spec.hostNetwork" in host_network.stderr, host_network.stderr
    for value in ("abc", 1e30):
        wrong = patch_template(stack, namespace, "hello", {"containerConcurrency": value})
        assert wrong.returncode != 0
        assert "spec.template.spec.containerConcurrency" in wrong.stderr, wrong.stderr
        assert "could not read" not in wrong.stderr, wrong.stderr
    assert stack.get("ksvc", "hello", namespace)["metadata"]["generation"] == 1


def test_traffic_to_a_revision_of_another_service_is_not_owned(stack, namespace):
    stack.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "hello.yaml"))
    other = (EXAMPLES / "hello.yaml").read_text().replace("name: hello", "name: other")
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=other)
    stack.wait_ready("ksvc", "other", namespace)
    stack.wait_ready("ksvc", "hello", namespace)
    traffic = {"spec": {"traffic": [{"revisionName": "other-00001", "percent": 100}]}}
    stack.kubectl("patch", "ksvc", "hello", "-n", namespace, "--type", "merge", "-p", json.dumps(traffic))

    def assigned() -> dict[str, Any] | None:
        route = stack.get("route", "hello", namespace)
        found = [c for c in route.get("status", {}).get("conditions", []) if c["type"] == "AllTrafficAssigned"]
        return found[0] if found and found[0].get("reason") == "RevisionNotOwned" else None

    condition = wait_until(assigned, "AllTrafficAssigned=False RevisionNotOwned")
    assert condition["status"] == "False"
    assert condition["message"] == 'Revision "other-00001" belongs to Service "other", not Service "hello".'
