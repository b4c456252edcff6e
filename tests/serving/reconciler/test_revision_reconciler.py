"""Revision reconciler table: Deployment, Service, PodAutoscaler and the Revision's conditions."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kube.errors import ApiError
from kube.resources import DEPLOYMENTS, KUBE_SERVICES, PODAUTOSCALERS, PODS, REVISIONS, Resource
from serving.apis.v1 import Revision
from serving.apis.v1.revision_defaults import default_revision
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.revision.resources.deployment import make_deployment
from tests.serving.reconciler.harness import assert_status, reconcile_once
from tests.support.factories import deleting, owned_by, pod, revision, revision_of, with_container_statuses

# as the Configuration reconciler stores it: with Knative's defaults in the spec
REV = default_revision(Revision.model_validate(revision("hello-00001", revision_of("hello"))), ConfigSnapshot()).to_dict()


def deployment(*, status: dict[str, Any] | None = None, replicas: int | None = None, owned: bool = True,
               stale: bool = False) -> dict[str, Any]:
    obj = make_deployment(Revision.model_validate(REV), ConfigSnapshot())
    obj["metadata"].update(uid="deployment-uid", resourceVersion="1", generation=1)
    if not owned:
        obj["metadata"]["ownerReferences"] = []
    if stale:
        obj["metadata"]["annotations"]["serving.knserve.dev/desired-hash"] = "old"
    if replicas is not None:
        obj["spec"]["replicas"] = replicas
    if status is not None:
        obj["status"] = status
    return obj


AVAILABLE = {"availableReplicas": 1, "readyReplicas": 1, "replicas": 1, "conditions": [
    {"type": "Available", "status": "True"},
    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
PROGRESSING = {"replicas": 1, "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}
DEADLINE = {"replicas": 1, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                           "message": 'ReplicaSet "x" has timed out progressing.'}]}


POD = "hello-00001-deployment-abc-1"
CRASHED = pod(POD, with_container_statuses({
    "name": "user-container", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
    "lastState": {"terminated": {"exitCode": 3, "reason": "Error", "message": "cannot bind"}}}))
NOT_MAPPED = pod(POD, with_container_statuses({
    "name": "user-container", "ready": False, "image": "example.com/app:1", "state": {"waiting": {
        "reason": "ImageNotMapped", "message": 'image "example.com/app:1" has no entry in the local image map'}}}))
CONFIG_ERROR = pod(POD, with_container_statuses({
    "name": "user-container", "ready": False,
    "state": {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "s" not found'}}}))


@dataclasses.dataclass
class Row:
    objects: list[tuple[Resource, dict[str, Any]]]
    key: str = "default/hello-00001"
    creates: list[str] = dataclasses.field(default_factory=list)
    updates: list[str] = dataclasses.field(default_factory=list)
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    fail: tuple[str, Resource | None, Exception] | None = None
    error: bool = False


ALL_CHILDREN = ["deployments default/hello-00001-deployment", "services default/hello-00001",
                "podautoscalers default/hello-00001"]
ROWS = [
    pytest.param(Row([], key="default/missing"), id="missing key"),
    pytest.param(Row([(REVISIONS, revision("hello-00001", deleting))]), id="deleted object"),
    pytest.param(Row(
        [(REVISIONS, REV)], creates=ALL_CHILDREN,
        status={"Ready": ("Unknown", "Deploying"), "ResourcesAvailable": ("Unknown", "Deploying"),
                "ContainerHealthy": ("Unknown",), "Active": ("Unknown", "Deploying")},
    ), id="new revision"),
    pytest.param(Row(
        [(REVISIONS, REV), (DEPLOYMENTS, deployment(status=AVAILABLE))],
        creates=ALL_CHILDREN[1:],
        status={"Ready": ("True",), "ResourcesAvailable": ("True",), "ContainerHealthy": ("True",),
                "Active": ("True",), "actualReplicas": 1},
    ), id="available deployment without an autoscaler"),
    pytest.param(Row(
        [(REVISIONS, REV), (DEPLOYMENTS, deployment(status=PROGRESSING)), (PODS, CRASHED)],
        creates=ALL_CHILDREN[1:],
        status={"Ready": ("False", "ExitCode3", "Container failed with: cannot bind"),
                "ContainerHealthy": ("False", "ExitCode3", "Container failed with: cannot bind")},
    ), id="crashing user container"),
    pytest.param(Row(
        [(REVISIONS, REV), (DEPLOYMENTS, deployment(status=PROGRESSING)), (PODS, NOT_MAPPED)],
        creates=ALL_CHILDREN[1:],
        status={"Ready": ("False", "ContainerMissing"),
                "ContainerHealthy": ("False", "ContainerMissing",
                                     'Unable to fetch image "ghcr.io/knative/helloworld-go:latest": image '
                                     '"example.com/app:1" has no entry in the local image map')},
    ), id="image without a local mapping"),
    pytest.param(Row(
        [(REVISIONS, REV), (DEPLOYMENTS, deployment(status=DEADLINE)), (PODS, CONFIG_ERROR)],
        creates=ALL_CHILDREN[1:],
        status={"Ready": ("False", "CreateContainerConfigError"),
                "ResourcesAvailable": ("False", "CreateContainerConfigError", 'secret "s" not found')},
    ), id="waiting container after the progress deadline"),
    pytest.param(Row(
        [(REVISIONS, REV), (DEPLOYMENTS, deployment(status=DEADLINE))],
        creates=ALL_CHILDREN[1:],
        status={"Ready": ("False", "ProgressDeadlineExceeded"),
                "ResourcesAvailable": ("False", "ProgressDeadlineExceeded")},
    ), id="never came up"),
    pytest.param(Row(
        [(REVISIONS, REV), (DEPLOYMENTS, deployment(owned=False))],
        creates=ALL_CHILDREN[1:],
        status={"Ready": ("False", "NotOwned"),
                "ResourcesAvailable": ("False", "NotOwned",
                                       'There is an existing Deployment "hello-00001-deployment" that we do not own.')},
    ), id="deployment owned by someone else"),
    pytest.param(Row(
        [(REVISIONS, REV), (DEPLOYMENTS, deployment(stale=True, replicas=5))],
        creates=ALL_CHILDREN[1:], updates=["deployments default/hello-00001-deployment"],
    ), id="changed deployment is updated, replicas kept"),
    pytest.param(Row(
        [(REVISIONS, REV)],
        fail=("create", DEPLOYMENTS, ApiError(403, "Forbidden", "quota exceeded")),
        creates=ALL_CHILDREN[1:],
        error=True,
    ), id="induced create failure"),
]


@pytest.mark.parametrize("row", ROWS)
async def test_revision_reconciler(row: Row) -> None:
    outcome = await reconcile_once(row.objects, "revision", row.key, fail=row.fail)
    assert (outcome.error is not None) == row.error, outcome.error
    assert outcome.writes("create") == row.creates
    assert outcome.writes("update") == row.updates
    if row.updates:
        assert outcome.get(DEPLOYMENTS, "hello-00001-deployment")["spec"]["replicas"] == 5
    if row.status:
        assert_status(outcome, REVISIONS, "hello-00001", row.status)
    elif not row.creates and not row.updates and not row.error:
        assert outcome.fake.actions == []


async def test_autoscaler_status_is_folded_in_once_it_reports() -> None:
    from serving.reconciler.revision.resources.podautoscaler import make_pod_autoscaler

    pa = make_pod_autoscaler(Revision.model_validate(REV), ConfigSnapshot())
    pa["metadata"].update(uid="pa-uid", resourceVersion="1", generation=1)
    pa["status"] = {"observedGeneration": 1, "serviceName": "hello-00001", "actualScale": 0, "desiredScale": 0,
                    "conditions": [{"type": "Active", "status": "False", "reason": "NoTraffic"},
                                   {"type": "ScaleTargetInitialized", "status": "True"},
                                   {"type": "Ready", "status": "False", "reason": "NoTraffic"}]}
    service = {"metadata": {"name": "hello-00001", "namespace": "default", "uid": "svc-uid",
                            "ownerReferences": owned_by_rev()}, "spec": {}}
    outcome = await reconcile_once(
        [(REVISIONS, REV), (DEPLOYMENTS, deployment(status=PROGRESSING)), (PODAUTOSCALERS, pa),
         (KUBE_SERVICES, service)], "revision", "default/hello-00001")
    assert_status(outcome, REVISIONS, "hello-00001", {
        "Ready": ("True",), "Active": ("False", "NoTraffic"), "actualReplicas": 0, "desiredReplicas": 0})


def owned_by_rev() -> list[dict[str, Any]]:
    holder: dict[str, Any] = {"metadata": {}}
    owned_by(REV)(holder)
    return holder["metadata"]["ownerReferences"]


async def test_a_second_pass_over_an_unchanged_revision_writes_nothing() -> None:
    first = await reconcile_once([(REVISIONS, REV), (DEPLOYMENTS, deployment(status=PROGRESSING))], "revision",
                                 "default/hello-00001")
    objects = [(resource, first.get(resource, name)) for resource, name in (
        (REVISIONS, "hello-00001"), (DEPLOYMENTS, "hello-00001-deployment"), (KUBE_SERVICES, "hello-00001"),
        (PODAUTOSCALERS, "hello-00001"))]
    import datetime

    from tests.serving.reconciler.harness import NOW

    second = await reconcile_once(objects, "revision", "default/hello-00001", now=NOW + datetime.timedelta(seconds=30))
    assert second.fake.actions == []


async def test_a_container_that_crashed_is_healthy_again_once_a_pod_is_ready() -> None:
    from serving.reconciler.revision.resources.podautoscaler import make_pod_autoscaler

    # The revision served, then its container crashed (ExitCode3) and came back.
    crashed = {**REV, "status": {"observedGeneration": 1, "conditions": [
        {"type": "Ready", "status": "False", "reason": "ExitCode3", "message": "Container failed with: cannot bind"},
        {"type": "ContainerHealthy", "status": "False", "reason": "ExitCode3",
         "message": "Container failed with: cannot bind"},
        {"type": "ResourcesAvailable", "status": "True"}, {"type": "Active", "status": "True"}]}}
    pa = make_pod_autoscaler(Revision.model_validate(REV), ConfigSnapshot())
    pa["metadata"].update(uid="pa-uid", resourceVersion="1", generation=1)
    pa["status"] = {"observedGeneration": 1, "serviceName": "hello-00001", "actualScale": 1, "desiredScale": 1,
                    "conditions": [{"type": "Active", "status": "True"},
                                   {"type": "ScaleTargetInitialized", "status": "True"},
                                   {"type": "Ready", "status": "True"}]}
    service = {"metadata": {"name": "hello-00001", "namespace": "default", "uid": "svc-uid",
                            "ownerReferences": owned_by_rev()}, "spec": {}}
    still_crashing = await reconcile_once(
        [(REVISIONS, crashed), (DEPLOYMENTS, deployment(status=PROGRESSING)), (PODS, CRASHED),
         (PODAUTOSCALERS, pa), (KUBE_SERVICES, service)], "revision", "default/hello-00001")
    assert_status(still_crashing, REVISIONS, "hello-00001", {
        "Ready": ("False", "ExitCode3"), "ContainerHealthy": ("False", "ExitCode3")})

    recovered = await reconcile_once(
        [(REVISIONS, crashed), (DEPLOYMENTS, deployment(status=AVAILABLE)), (PODAUTOSCALERS, pa),
         (KUBE_SERVICES, service)], "revision", "default/hello-00001")
    assert_status(recovered, REVISIONS, "hello-00001", {
        "Ready": ("True",), "ContainerHealthy": ("True",), "ResourcesAvailable": ("True",), "actualReplicas": 1})
