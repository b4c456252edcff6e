"""Revision condition verbs and reasons (after knative.dev/serving revision_lifecycle.go).

Ready is derived from ``ResourcesAvailable`` and ``ContainerHealthy``. ``Active`` is tracked
but deliberately *not* part of Ready: a Revision scaled to zero is inactive yet perfectly
healthy and routable (the activator holds requests while it scales up), so counting Active
would flip every idle Revision — and the Configuration, Route and Service above it — to
not-Ready and break traffic assignment to scaled-to-zero Revisions. Pure; no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final

from serving.apis.conditions import FALSE, TRUE, UNKNOWN, ConditionSet
from serving.apis.v1._lifecycle_base import Now, StatusLifecycle

if TYPE_CHECKING:
    from serving.apis.autoscaling.v1alpha1.podautoscaler_types import PodAutoscalerStatus

CONDITION_READY: Final = "Ready"
CONDITION_RESOURCES_AVAILABLE: Final = "ResourcesAvailable"
CONDITION_CONTAINER_HEALTHY: Final = "ContainerHealthy"
CONDITION_ACTIVE: Final = "Active"  # tracked, not part of Ready (see the module docstring)

REASON_CONTAINER_MISSING: Final = "ContainerMissing"
REASON_DEPLOYING: Final = "Deploying"
REASON_NOT_OWNED: Final = "NotOwned"
REASON_PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"

REVISION_CONDITION_SET: Final = ConditionSet(CONDITION_RESOURCES_AVAILABLE, CONDITION_CONTAINER_HEALTHY)

# Deployment conditions folded into one Ready (Knative's TransformDeploymentStatus).
_DEPLOYMENT_CONDITION_SET: Final = ConditionSet("Progressing", "ReplicaSetReady")


def resource_not_owned_message(kind: str, name: str) -> str:
    return f'There is an existing {kind} "{name}" that we do not own.'


def exit_code_reason(exit_code: int) -> str:
    return f"ExitCode{exit_code}"


def container_exiting_message(message: str) -> str:
    return f"Container failed with: {message}"


def container_missing_message(image: str, message: str) -> str:
    return f'Unable to fetch image "{image}": {message}'


def transform_deployment_status(deployment_status: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(status, reason, message) of a Deployment's readiness from its ``status.conditions``."""
    from serving.apis.conditions import Status

    folded = Status()
    manager = _DEPLOYMENT_CONDITION_SET.manage(folded)
    manager.initialize()
    manager.mark_true("ReplicaSetReady")
    manager.mark_unknown("Progressing", REASON_DEPLOYING, None)
    conditions = deployment_status.get("conditions") or []
    for wanted in ("Progressing", "ReplicaFailure"):
        for condition in conditions:
            if condition.get("type") != wanted:
                continue
            status, reason, message = condition.get("status"), condition.get("reason"), condition.get("message")
            if wanted == "Progressing":
                manager.mark("Progressing", status, reason, message)
            else:
                if status == TRUE:
                    manager.mark_false("ReplicaSetReady", reason, message)
                elif status == FALSE:
                    manager.mark_true("ReplicaSetReady")
                else:
                    manager.mark_unknown("ReplicaSetReady", reason, message)
    ready = manager.happy()
    assert ready is not None
    return ready.status, ready.reason, ready.message


class RevisionStatusLifecycle(StatusLifecycle):
    CONDITION_SET: ClassVar[ConditionSet] = REVISION_CONDITION_SET

    if TYPE_CHECKING:  # fields of the status model this is mixed into
        actual_replicas: int | None
        desired_replicas: int | None

    # --- Active (not part of Ready) -------------------------------------------------------
    def mark_active_true(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_ACTIVE)

    def mark_active_false(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(CONDITION_ACTIVE, reason, message)

    def mark_active_unknown(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(CONDITION_ACTIVE, reason, message)

    # --- ContainerHealthy ---------------------------------------------------------------------
    def mark_container_healthy_true(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_CONTAINER_HEALTHY)

    def mark_container_healthy_false(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(CONDITION_CONTAINER_HEALTHY, reason, message)

    # --- ResourcesAvailable -------------------------------------------------------------------
    def mark_resources_available_true(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_RESOURCES_AVAILABLE)

    def mark_resources_available_false(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(CONDITION_RESOURCES_AVAILABLE, reason, message)

    mark_resources_unavailable = mark_resources_available_false

    def mark_resources_available_unknown(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(CONDITION_RESOURCES_AVAILABLE, reason, message)

    def mark_not_owned(self, kind: str, name: str, *, now: Now = None) -> None:
        self.mark_resources_available_false(REASON_NOT_OWNED, resource_not_owned_message(kind, name), now=now)

    # --- propagation ----------------------------------------------------------------------------
    def propagate_deployment_status(self, deployment_status: dict[str, Any], *, now: Now = None) -> None:
        """Fold a Deployment's ``status`` (a dict as the API returns it) into ResourcesAvailable."""
        status, reason, message = transform_deployment_status(deployment_status)
        self.manage(now).mark(CONDITION_RESOURCES_AVAILABLE, status, reason, message)

    def propagate_autoscaler_status(self, pa_status: PodAutoscalerStatus, *, now: Now = None) -> None:
        """Knative's PropagateAutoscalerStatus: replicas, Active, and the initial-scale checks."""
        manager = self.manage(now)
        resources = manager.get(CONDITION_RESOURCES_AVAILABLE)
        healthy = manager.get(CONDITION_CONTAINER_HEALTHY)
        unavailable = bool((resources and resources.is_false()) or (healthy and healthy.is_false()))

        actual, desired = pa_status.actual_scale, pa_status.desired_scale
        self.actual_replicas = actual if actual is not None and actual >= 0 else None
        self.desired_replicas = desired if desired is not None and desired >= 0 else None

        ready = pa_status.get_condition(CONDITION_READY)
        if ready is None:
            self.mark_active_unknown(REASON_DEPLOYING, "", now=now)
            if not unavailable:
                self.mark_resources_available_unknown(REASON_DEPLOYING, "", now=now)
            return

        initialized = pa_status.is_scale_target_initialized()
        if initialized and not unavailable:
            self.mark_resources_available_true(now=now)
            self.mark_container_healthy_true(now=now)

        resources = manager.get(CONDITION_RESOURCES_AVAILABLE)
        if resources is not None and resources.is_true() and (not pa_status.service_name or not initialized):
            self.mark_resources_available_unknown(REASON_DEPLOYING, "", now=now)

        if ready.status == UNKNOWN:
            self.mark_active_unknown(ready.reason or "", ready.message or "", now=now)
        elif ready.status == FALSE:
            if not initialized and not unavailable and pa_status.service_name:
                self.mark_resources_available_false(
                    REASON_PROGRESS_DEADLINE_EXCEEDED, "Initial scale was never achieved", now=now
                )
            self.mark_active_false(ready.reason or "", ready.message or "", now=now)
        else:
            self.mark_active_true(now=now)
