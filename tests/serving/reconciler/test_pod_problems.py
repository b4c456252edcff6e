"""What a revision's pods say is wrong when its Deployment has no available replica."""

from __future__ import annotations

from typing import Any

import pytest

from kube.objects import JSON
from serving.reconciler.revision.pod_problems import PodProblem, surface_pod_problems

IMAGES = {"user-container": "ghcr.io/knative/helloworld-go:latest"}


def pod(*container_statuses: JSON, conditions: list[JSON] | None = None) -> JSON:
    status: JSON = {"phase": "Running", "containerStatuses": list(container_statuses)}
    if conditions is not None:
        status["conditions"] = conditions
    return {"metadata": {"name": "hello-00001-deployment-abc-1"}, "status": status}


def user(name: str = "user-container", **fields: Any) -> JSON:
    return {"name": name, "ready": False, **fields}


def waiting(reason: str, message: str = "") -> JSON:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def terminated(exit_code: int, message: str = "") -> JSON:
    return {"terminated": {"exitCode": exit_code, "reason": "Error", **({"message": message} if message else {})}}


UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}


@pytest.mark.parametrize(
    ("pods", "timed_out", "want"),
    [
        pytest.param([], False, None, id="no pods"),
        pytest.param([pod(user(state={"running": {}}))], True, None, id="a running container is no problem"),
        pytest.param([pod(conditions=[UNSCHEDULABLE])], False,
                     PodProblem("ResourcesAvailable", "Unschedulable", "0/1 nodes are available"), id="unschedulable"),
        pytest.param([pod(conditions=[{"type": "PodScheduled", "status": "False"}])], False,
                     PodProblem("ResourcesAvailable", "Unschedulable", ""), id="unschedulable without a reason"),
        pytest.param([pod(user(state=waiting("CrashLoopBackOff"), lastState=terminated(3, "cannot bind")))], False,
                     PodProblem("ContainerHealthy", "ExitCode3", "Container failed with: cannot bind"),
                     id="crashed last time"),
        pytest.param([pod(user(state=terminated(1)))], False,
                     PodProblem("ContainerHealthy", "ExitCode1", "Container failed with: "), id="terminated now"),
        pytest.param([pod(user(state=terminated(0)))], False,
                     PodProblem("ContainerHealthy", "ExitCode0", "Container failed with: container exited with no error"),
                     id="exited cleanly"),
        pytest.param([pod(user("queue-proxy", state=terminated(1)))], True, None, id="the queue-proxy is not looked at"),
        pytest.param([pod(user(image="example.com/app:1", state=waiting("ImageNotMapped", "no entry")))], False,
                     PodProblem("ContainerHealthy", "ContainerMissing",
                                'Unable to fetch image "ghcr.io/knative/helloworld-go:latest": no entry'),
                     id="image not mapped: the revision's image"),
        pytest.param([pod(user("sidecar", image="example.com/side:1", state=waiting("ErrImagePull")))], False,
                     PodProblem("ContainerHealthy", "ContainerMissing",
                                'Unable to fetch image "example.com/side:1": ErrImagePull'),
                     id="pull error of a container the revision does not name: the pod's image, the reason"),
        pytest.param([pod(user(state=waiting("CreateContainerConfigError", 'secret "s" not found')))], False, None,
                     id="waiting before the progress deadline"),
        pytest.param([pod(user(state=waiting("CreateContainerConfigError", 'secret "s" not found')))], True,
                     PodProblem("ResourcesAvailable", "CreateContainerConfigError", 'secret "s" not found'),
                     id="waiting after the progress deadline"),
        pytest.param([pod(user(state=waiting("ContainerCreating"))), pod(user(state=terminated(2, "boom")))], False,
                     PodProblem("ContainerHealthy", "ExitCode2", "Container failed with: boom"),
                     id="the first pod with a problem"),
    ],
)
def test_surface_pod_problems(pods: list[JSON], timed_out: bool, want: PodProblem | None) -> None:
    assert surface_pod_problems(pods, images=IMAGES, timed_out=timed_out) == want
