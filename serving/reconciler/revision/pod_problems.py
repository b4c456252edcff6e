"""What the pods of a Revision whose Deployment has no available replica say is wrong.

Knative looks at the pods when a revision cannot come up, so the user reads why on the
Revision instead of in the pod list: ``surface_pod_problems`` returns the first problem it
finds, as the Revision condition to set False with Knative's reason and message:

- a pod the scheduler could not place: ``ResourcesAvailable`` with the scheduler's reason;
- a user container that terminated (now or last time): ``ContainerHealthy`` ``ExitCode<N>``
  with its termination message;
- an image the node cannot get (``ImageNotMapped``, pull errors): ``ContainerHealthy``
  ``ContainerMissing``, at once;
- any other waiting reason: ``ResourcesAvailable``, once the Deployment's progress deadline
  passed.

The queue-proxy's own container is not looked at. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from kube.objects import JSON
from serving.apis.v1.revision_lifecycle import (
    CONDITION_CONTAINER_HEALTHY,
    CONDITION_RESOURCES_AVAILABLE,
    REASON_CONTAINER_MISSING,
    container_exiting_message,
    container_missing_message,
    exit_code_reason,
)
from serving.reconciler.revision.resources.deployment import QUEUE_CONTAINER_NAME

# Waiting reasons that mean the container can never start as written: surfaced at once.
IMAGE_FAILURE_REASONS: Final = frozenset(
    {"ImageNotMapped", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)


@dataclass(frozen=True, slots=True)
class PodProblem:
    condition: str  # CONDITION_RESOURCES_AVAILABLE or CONDITION_CONTAINER_HEALTHY, to be set False
    reason: str
    message: str


def surface_pod_problems(pods: Iterable[JSON], *, images: Mapping[str, str], timed_out: bool) -> PodProblem | None:
    """The first problem the pods show; ``images``: the Revision's image by container name;
    ``timed_out``: the Deployment's progress deadline has passed."""
    for pod in pods:
        status: JSON = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return PodProblem(CONDITION_RESOURCES_AVAILABLE, condition.get("reason") or "Unschedulable",
                                  condition.get("message") or "")
        for container in status.get("containerStatuses") or []:
            if container.get("name") == QUEUE_CONTAINER_NAME:
                continue
            problem = _container_problem(container, images=images, timed_out=timed_out)
            if problem is not None:
                return problem
    return None


def _container_problem(container: JSON, *, images: Mapping[str, str], timed_out: bool) -> PodProblem | None:
    state = container.get("state") or {}
    terminated = (container.get("lastState") or {}).get("terminated") or state.get("terminated")
    if terminated:
        exit_code = int(terminated.get("exitCode") or 0)
        message = terminated.get("message") or ""
        if exit_code == 0 and not message:
            message = "container exited with no error"
        return PodProblem(CONDITION_CONTAINER_HEALTHY, exit_code_reason(exit_code), container_exiting_message(message))
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if reason in IMAGE_FAILURE_REASONS:
        image = images.get(container.get("name") or "", container.get("image") or "")
        return PodProblem(CONDITION_CONTAINER_HEALTHY, REASON_CONTAINER_MISSING,
                          container_missing_message(image, waiting.get("message") or reason))
    if reason and timed_out:
        return PodProblem(CONDITION_RESOURCES_AVAILABLE, reason, waiting.get("message") or "")
    return None
