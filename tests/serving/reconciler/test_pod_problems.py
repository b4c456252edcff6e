"""What a revision's pods say is wrong when its Deployment has no available replica."""

from __future__ import annotations

from typing import Any

import pytest

from kube.objects import JSON
from serving.reconciler.revision.pod_problems import PodProblem, surface_pod_problems
from tests.support.factories import pod, with_condition, with_container_statuses

IMAGES = {"user-container": "ghcr.io/knative/helloworld-go:latest"}
POD = "hello-00001-deployment-abc-1"


def pod_of(*container_statuses: JSON) -> JSON:
    return pod(POD, with_container_statuses(*container_statuses))


def user(name: str = "user-container", **fields: Any) -> JSON:
    return {"name": name, "ready": False, **fields}


def waiting(reason: str, message: str = "") -> JSON:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def terminated(exit_code: int, message: str = "") -> JSON:
    return {"terminated": {"exitCode": exit_code, "reason": "Error", **({"message": message} if message else {})}}


UNSCHEDULABLE = pod(POD, with_condition("PodScheduled", "False", reason="Unschedulable",
                                        message="0/1 nodes are available"))
CONFIG_ERROR = pod_of(user(state=waiting("CreateContainerConfigError", 'secret "s" not found')))


@pytest.mark.parametrize(
    ("pods", "timed_out", "want"),
    [
        pytest.param([], False, None, id="no pods"),
        pytest.param([pod_of(user(state={"running": {}}))], True, None, id="a running container is no problem"),
        pytest.param([UNSCHEDULABLE], False,
                     PodProblem("ResourcesAvailable", "Unschedulable", "0/1 nodes are available"), id="unschedulable"),
        pytest.param([pod(POD, with_condition("PodScheduled", "False"))], False,
                     PodProblem("ResourcesAvailable", "Unschedulable", ""), id="unschedulable without a reason"),
        pytest.param([pod_of(user(state=waiting("CrashLoopBackOff"), lastState=terminated(3, "cannot bind")))], False,
                     PodProblem("ContainerHealthy", "ExitCode3", "Container failed with: cannot bind"),
                     id="crashed last time"),
        pytest.param([pod_of(user(state=terminated(1)))], False,
                     PodProblem("ContainerHealthy", "ExitCode1", "Container failed with: "), id="terminated now"),
        pytest.param([pod_of(user(state=terminated(0)))], False,
                     PodProblem("ContainerHealthy", "ExitCode0",
                                "Container failed with: container exited with no error"),
                     id="exited cleanly"),
        pytest.param([pod_of(user("queue-proxy", state=terminated(1)))], True, None,
                     id="the queue-proxy is not looked at"),
        pytest.param([pod_of(user(image="example.com/app:1", state=waiting("ImageNotMapped", "no entry")))], False,
                     PodProblem("ContainerHealthy", "ContainerMissing",
                                'Unable to fetch image "ghcr.io/knative/helloworld-go:latest": no entry'),
                     id="image not mapped: the revision's image"),
        pytest.param([pod_of(user("sidecar", image="example.com/side:1", state=waiting("ErrImagePull")))], False,
                     PodProblem("ContainerHealthy", "ContainerMissing",
                                'Unable to fetch image "example.com/side:1": ErrImagePull'),
                     id="pull error of a container the revision does not name: the pod's image, the reason"),
        pytest.param([CONFIG_ERROR], False, None, id="waiting before the progress deadline"),
        pytest.param([CONFIG_ERROR], True,
                     PodProblem("ResourcesAvailable", "CreateContainerConfigError", 'secret "s" not found'),
                     id="waiting after the progress deadline"),
        pytest.param([pod_of(user(state=waiting("ContainerCreating"))), pod_of(user(state=terminated(2, "boom")))],
                     False, PodProblem("ContainerHealthy", "ExitCode2", "Container failed with: boom"),
                     id="the first pod with a problem"),
    ],
)
def test_surface_pod_problems(pods: list[JSON], timed_out: bool, want: PodProblem | None) -> None:
    assert surface_pod_problems(pods, images=IMAGES, timed_out=timed_out) == want
