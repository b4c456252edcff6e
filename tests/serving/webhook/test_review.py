"""Pure admission review: defaulting patches and validation answers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from serving.config import ConfigSnapshot
from serving.webhook import jsonpatch
from serving.webhook.review import admit
from tests.support.factories import revision, service, with_annotations, with_containers, with_spec, with_traffic

CONFIG = ConfigSnapshot()


def review(obj: dict[str, Any], *, operation: str = "CREATE", old: dict[str, Any] | None = None,
           sub_resource: str | None = None, user: str | None = "alice") -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "u-1",
        "kind": {"group": "serving.knative.dev", "version": "v1", "kind": obj["kind"]},
        "operation": operation,
        "object": obj,
        "userInfo": {"username": user} if user else {},
    }
    if old is not None:
        request["oldObject"] = old
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def patch_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    raw = answer["response"].get("patch")
    return json.loads(base64.b64decode(raw)) if raw else []


def test_defaulting_patch_applies_to_the_request_object() -> None:
    obj = service()
    answer = admit(review(obj), CONFIG, mutate=True)
    assert answer["response"]["allowed"] and answer["response"]["patchType"] == "JSONPatch"
    patched = jsonpatch.apply(obj, patch_of(answer))
    assert patched["metadata"]["annotations"] == {
        "serving.knative.dev/creator": "alice", "serving.knative.dev/lastModifier": "alice"}
    assert patched["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
    assert patched["spec"]["template"]["spec"]["containers"][0]["name"] == "user-container"
    assert admit(review(patched), CONFIG, mutate=False)["response"] == {"uid": "u-1", "allowed": True}


def test_update_sets_last_modifier_only_when_spec_changes() -> None:
    created = jsonpatch.apply(service(), patch_of(admit(review(service()), CONFIG, mutate=True)))
    same = admit(review(created, operation="UPDATE", old=created, user="bob"), CONFIG, mutate=True)
    assert patch_of(same) == []
    changed = json.loads(json.dumps(created))
    changed["spec"]["template"]["spec"]["timeoutSeconds"] = 10
    ops = patch_of(admit(review(changed, operation="UPDATE", old=created, user="bob"), CONFIG, mutate=True))
    assert ops == [{"op": "replace", "path": "/metadata/annotations/serving.knative.dev~1lastModifier", "value": "bob"}]


@pytest.mark.parametrize(
    ("obj", "old", "message"),
    [
        pytest.param(
            service("hello", with_traffic({"latestRevision": True, "percent": 90})), None,
            "validation failed: Traffic targets sum to 90, want 100: spec.traffic", id="sum"),
        pytest.param(
            service("hello", with_annotations({"autoscaling.knative.dev/min-scale": "1"}),
                    with_traffic({"latestRevision": True, "percent": 100})), None,
            'validation failed: invalid key name "autoscaling.knative.dev/min-scale": metadata.annotations\n'
            'autoscaling annotations must be put under "spec.template.metadata.annotations" to work',
            id="autoscaling annotation outside the template"),
        pytest.param(
            revision("hello-00001", with_spec(timeoutSeconds=5)), revision(),
            "validation failed: Immutable fields changed (-old +new): spec\n"
            "{v1.RevisionSpec}.timeoutSeconds:\n\t-: 300\n\t+: 5",
            id="revision spec edit"),
        pytest.param(
            service("hello", with_containers({"image": 3}), with_traffic({"latestRevision": True, "percent": 100})), None,
            "could not read the Service: spec.template.spec.containers.0.image: Input should be a valid string",
            id="unreadable object"),
    ],
)
def test_validation_denies_with_knatives_words(obj: dict[str, Any], old: dict[str, Any] | None, message: str) -> None:
    answer = admit(review(obj, operation="UPDATE" if old else "CREATE", old=old), CONFIG, mutate=False)
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"] == message
    assert answer["response"]["status"]["code"] == 400


@pytest.mark.parametrize(
    "request_review",
    [
        pytest.param(review(service("hello", with_traffic({"percent": 1}))) | {"request": {
            **review(service())["request"], "operation": "DELETE"}}, id="delete"),
        pytest.param(review(service("hello", with_traffic({"percent": 1})), sub_resource="status"), id="status"),
        pytest.param({"request": {"uid": "u-1", "operation": "CREATE", "kind": {"group": "apps", "kind": "Deployment"},
                                  "object": {}}}, id="other kind"),
    ],
)
def test_passes_what_it_does_not_check(request_review: dict[str, Any]) -> None:
    assert admit(request_review, CONFIG, mutate=False)["response"] == {"uid": "u-1", "allowed": True}


def test_jsonpatch_round_trip() -> None:
    old = {"a": 1, "b": {"c": [1, 2], "d/e": "x"}, "gone": True}
    new = {"a": 2, "b": {"c": [1, 3, 4], "d/e": "y", "f~": None}}
    assert jsonpatch.apply(old, jsonpatch.diff(old, new)) == new


@pytest.mark.parametrize("value", [pytest.param("abc", id="string"), pytest.param(1e30, id="huge float")])
def test_defaulting_lets_a_wrong_type_through_for_the_schema_to_refuse(value: Any) -> None:
    obj = service("hello", with_spec(containerConcurrency=value))
    answer = admit(review(obj), CONFIG, mutate=True)["response"]
    assert (answer["allowed"], answer.get("patch")) == (True, None)
    denied = admit(review(obj), CONFIG, mutate=False)["response"]
    assert denied["allowed"] is False
