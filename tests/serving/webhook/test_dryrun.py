"""Knative's PodSpec dry run: when config-features and the annotation ask for it, and what a
refusal from the API server becomes."""

from __future__ import annotations

from typing import Any

import pytest

from kube.errors import ApiError, Invalid
from kube.fake import FakeKubeClient
from kube.resources import PODS
from serving.config import ConfigSnapshot
from serving.webhook.dryrun import check_pod, dry_run_mode, dry_run_pod

IMAGE = "ghcr.io/knative/helloworld-go:latest"


def review(annotations: dict[str, str] | None = None, kind: str = "Service") -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"image": IMAGE}]}}}
    obj = {"apiVersion": "serving.knative.dev/v1", "kind": kind,
           "metadata": {"name": "hello", "namespace": "default", "annotations": annotations or {}}, "spec": spec}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": "CREATE", "namespace": "default", "object": obj,
                        "kind": {"group": "serving.knative.dev", "version": "v1", "kind": kind}}}


@pytest.mark.parametrize(
    ("flag", "annotation", "want"),
    [
        pytest.param(None, None, None, id="allowed by default, not asked"),
        pytest.param(None, "enabled", "enabled", id="allowed and asked"),
        pytest.param(None, "strict", "strict", id="allowed and asked strictly"),
        pytest.param("enabled", None, "enabled", id="enabled: always"),
        pytest.param("enabled", "strict", "strict", id="enabled, strict asked"),
        pytest.param("disabled", "enabled", None, id="disabled: never"),
    ],
)
def test_when_the_pod_is_dry_run(flag: str | None, annotation: str | None, want: str | None) -> None:
    config = ConfigSnapshot.from_configmaps({"config-features": {"kubernetes.podspec-dryrun": flag} if flag else {}})
    annotations = {"features.knative.dev/podspec-dryrun": annotation} if annotation else None
    assert dry_run_mode(annotations, config) == want


@pytest.mark.parametrize("kind", ["Service", "Configuration"])
def test_the_pod_is_the_one_the_revision_would_run(kind: str) -> None:
    found = dry_run_pod(review({"features.knative.dev/podspec-dryrun": "enabled"}, kind), ConfigSnapshot())
    assert found is not None
    pod, mode = found
    assert (pod["kind"], pod["metadata"]["namespace"], mode) == ("Pod", "default", "enabled")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["user-container", "queue-proxy"]
    assert dry_run_pod(review(kind=kind), ConfigSnapshot()) is None


async def test_a_refusal_from_the_api_server_is_knatives_dry_run_failure() -> None:
    client = FakeKubeClient([])
    pod, mode = dry_run_pod(review({"features.knative.dev/podspec-dryrun": "enabled"}), ConfigSnapshot()) or ({}, "")
    assert await check_pod(client, pod, mode) is None
    assert client.actions == []  # a dry run stores nothing
    problem = 'Pod "dry-run-validation" is invalid: spec.containers[0].resources.requests: Invalid value: "2"'
    client.fail_on("create", PODS, Invalid(422, "Invalid", problem))
    assert await check_pod(client, pod, mode) == f"dry run failed with {problem}: spec.template"


@pytest.mark.parametrize(("mode", "want_refused"), [("enabled", False), ("strict", True)])
async def test_an_api_server_that_cannot_dry_run_refuses_only_in_strict_mode(mode: str, want_refused: bool) -> None:
    client = FakeKubeClient([])
    client.fail_on("create", PODS, ApiError(403, "Forbidden", 'pods is forbidden: cannot create resource "pods"'))
    assert (await check_pod(client, {"metadata": {"namespace": "default"}}, mode) is not None) is want_refused
