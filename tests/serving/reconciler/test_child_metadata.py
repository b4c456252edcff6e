"""Labels and annotations Knative carries from a parent onto the objects made for it: the
Route's Kubernetes Services (its host and each tag's) and a Configuration's Revisions."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from serving.apis.v1 import Configuration, Revision, Route
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.configuration.resources.revision import make_revision
from serving.reconciler.kmeta import DESIRED_HASH_ANNOTATION
from serving.reconciler.revision.resources.inherited import child_annotations, child_labels
from serving.reconciler.route.resources.placeholder import keep_visibility, make_placeholder_service

NOW = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
VISIBILITY = "networking.knative.dev/visibility"
ROUTE_LABELS = {"serving.knative.dev/service": "hello", "team": "a", VISIBILITY: "cluster-local"}
ROUTE_ANNOTATIONS = {"serving.knative.dev/creator": "alice", "serving.knative.dev/lastModifier": "bob",
                     "example.com/note": "mine"}


def hello_route() -> Route:
    return Route.model_validate({
        "apiVersion": "serving.knative.dev/v1", "kind": "Route",
        "metadata": {"name": "hello", "namespace": "default", "uid": "route-hello-uid",
                     "labels": ROUTE_LABELS, "annotations": ROUTE_ANNOTATIONS},
        "spec": {"traffic": [{"configurationName": "hello", "percent": 100}]},
    })


@pytest.mark.parametrize("name", [pytest.param("hello", id="route host"), pytest.param("canary-hello", id="tag host")])
def test_route_service_carries_the_routes_labels_but_visibility_and_all_its_annotations(name: str) -> None:
    metadata = make_placeholder_service(hello_route(), name)["metadata"]
    assert metadata["labels"] == {"serving.knative.dev/service": "hello", "team": "a",
                                  "serving.knative.dev/route": "hello"}
    annotations = {k: v for k, v in metadata["annotations"].items() if k != DESIRED_HASH_ANNOTATION}
    assert annotations == ROUTE_ANNOTATIONS


def test_route_service_update_keeps_the_visibility_label_its_user_set() -> None:
    desired = make_placeholder_service(hello_route(), "canary-hello")
    existing = {"metadata": {"name": "canary-hello", "labels": {VISIBILITY: "cluster-local", "stale": "x"}}}
    body: dict[str, Any] = {"metadata": {"name": "canary-hello", "labels": dict(desired["metadata"]["labels"])}}
    keep_visibility(existing, body)
    assert body["metadata"]["labels"] == {**desired["metadata"]["labels"], VISIBILITY: "cluster-local"}


def test_revision_creator_is_the_configurations_last_modifier() -> None:
    configuration = Configuration.model_validate({
        "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
        "metadata": {"name": "hello", "namespace": "default", "uid": "configuration-hello-uid", "generation": 2,
                     "annotations": {"serving.knative.dev/creator": "alice", "serving.knative.dev/lastModifier": "bob"}},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go:latest"}]}}},
    })
    annotations = make_revision(configuration, ConfigSnapshot(), now=NOW).metadata.annotations or {}
    assert annotations["serving.knative.dev/creator"] == "bob"
    assert "serving.knative.dev/lastModifier" not in annotations


def test_revision_children_carry_its_labels_and_annotations_but_the_routing_ones() -> None:
    revision = Revision.model_validate({
        "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {"name": "hello-00001", "namespace": "default", "uid": "revision-uid",
                     "labels": {"serving.knative.dev/service": "hello", "team": "a",
                                "serving.knative.dev/route": "hello", "serving.knative.dev/routingState": "active"},
                     "annotations": {"serving.knative.dev/creator": "bob", "serving.knative.dev/routes": "hello",
                                     "serving.knative.dev/routingStateModified": "2026-01-02T00:00:00Z"}},
        "spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go:latest"}]},
    })
    assert child_labels(revision) == {
        "app": "hello-00001", "serving.knative.dev/service": "hello", "team": "a",
        "serving.knative.dev/revision": "hello-00001", "serving.knative.dev/revisionUID": "revision-uid"}
    assert child_annotations(revision) == {"serving.knative.dev/creator": "bob"}
