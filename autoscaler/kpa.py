"""From a decision to replicas and status: bounds, scale-to-zero and the activator switch.

``reconcile`` is Knative's KPA reconciler (``pkg/reconciler/autoscaling/kpa``) without the
I/O: it takes the PodAutoscaler, its resolved ``ScalingSpec``, the decider's latest
``DeciderStatus``, the pod counts and the Deployment's replicas, and returns the replicas to
write through ``/scale`` (or None), the new status (a copy, changed through the
PodAutoscaler's condition verbs in ``serving.apis``) and when to look again.

- min/max bounds, and ``initial-scale`` as a floor until the revision first reached it;
- scale to zero only after the PodAutoscaler was Active a whole stable window with a zero
  decision (then it is marked Inactive/NoTraffic and the activator put in the path), and the
  activator has been in the path for the grace period (at once when it already was);
  a revision stuck activating past its progress deadline (+30 s) goes to zero (TimedOut);
- the activator leaves the path only when ``desired > 0 and EBC >= 0``.

Pure; ``now`` is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.config import ScalingSpec
from autoscaler.kube import PodCounts
from knserve.networking import PROGRESS_DEADLINE_ANNOTATION
from knserve.stats_wire import (
    ACTIVATOR_IN_PATH_CONDITION,
    REASON_ALWAYS_IN_PATH,
    REASON_BURST_CAPACITY_AVAILABLE,
    REASON_BURST_CAPACITY_SHORT,
    REASON_SCALE_UNKNOWN,
    REASON_SCALED_TO_ZERO,
)
from serving.apis.autoscaling.v1alpha1 import PodAutoscaler, PodAutoscalerStatus
from serving.apis.autoscaling.v1alpha1.podautoscaler_lifecycle import (
    CONDITION_ACTIVE,
    REASON_NO_TRAFFIC,
    REASON_QUEUED,
    REASON_TIMED_OUT,
)
from serving.apis.conditions import FALSE, TRUE, UNKNOWN
from serving.config.parsers import parse_go_duration

SCALE_UNKNOWN = -1
DEFAULT_PROGRESS_DEADLINE = 600.0
ACTIVATION_TIMEOUT_BUFFER = 30.0
INACTIVE_RECHECK = 3.0


@dataclass(frozen=True, slots=True)
class DeciderStatus:
    """The decider's latest recommendation; ``desired_scale`` is -1 before the first one."""

    desired_scale: int = SCALE_UNKNOWN
    excess_burst_capacity: int = 0


@dataclass(frozen=True, slots=True)
class Reconciled:
    replicas: int | None  # what to write through /scale; None: leave the Deployment alone
    want: int  # the scale the autoscaler settled on; -1 unknown
    activator_in_path: bool
    status: PodAutoscalerStatus
    requeue_after: float | None  # seconds until this PodAutoscaler needs another look


def apply_bounds(minimum: int, maximum: int, value: int) -> int:
    """Clamp into ``[minimum, maximum]``; a maximum of 0 means unbounded."""
    if value < minimum:
        return minimum
    if maximum != 0 and value > maximum:
        return maximum
    return value


def _progress_deadline(pa: PodAutoscaler) -> float:
    raw = pa.metadata.annotation(PROGRESS_DEADLINE_ANNOTATION)
    if raw:
        try:
            return parse_go_duration(raw)
        except ValueError:
            pass
    return DEFAULT_PROGRESS_DEADLINE


def _scale_to_zero(
    pa: PodAutoscaler, status: PodAutoscalerStatus, spec: ScalingSpec, desired: int, *, now: float
) -> tuple[int, bool, float | None]:
    """(want, apply, requeue_after) for a decision that may be zero."""
    if desired != 0:
        return desired, True, None
    if not spec.enable_scale_to_zero:
        return 1, True, None
    if status.is_activating():
        timeout = _progress_deadline(pa) + ACTIVATION_TIMEOUT_BUFFER
        activating_for = status.in_status_for(CONDITION_ACTIVE, UNKNOWN, now)
        if activating_for > timeout:
            return desired, True, None  # could not activate: give up, go to zero
        return SCALE_UNKNOWN, False, max(0.0, timeout - max(0.0, activating_for))
    if status.is_active():
        active_for = status.in_status_for(CONDITION_ACTIVE, TRUE, now)
        if active_for >= spec.stable_window:
            return desired, False, INACTIVE_RECHECK  # mark inactive first; the activator goes in
        return 1, True, spec.stable_window - active_for
    # Inactive: go to zero once the activator has been in the path for the grace period.
    if not status.activator_in_path():
        return desired, False, spec.scale_to_zero_grace_period  # goes into the path now
    inactive_for = status.in_status_for(CONDITION_ACTIVE, FALSE, now)
    retention = spec.scale_to_zero_pod_retention_period
    if inactive_for >= max(spec.scale_to_zero_grace_period, retention):
        return desired, True, None
    if retention > 0 and inactive_for < retention:
        return desired, False, retention - inactive_for
    wait = spec.scale_to_zero_grace_period - status.in_status_for(ACTIVATOR_IN_PATH_CONDITION, TRUE, now)
    if wait <= 0:
        return desired, True, None
    return desired, False, wait


def _active_threshold(status: PodAutoscalerStatus, spec: ScalingSpec) -> int:
    """Ready pods needed to call the revision Active: initial scale until first reached."""
    if not status.is_scale_target_initialized():
        return max(spec.min_scale, spec.initial_scale)
    return max(spec.min_scale, 1)


def _mode(want: int, decider: DeciderStatus, spec: ScalingSpec) -> tuple[bool, str, str]:
    """(activator in path, reason, message) for the ingress."""
    if spec.target_burst_capacity == -1:
        return True, REASON_ALWAYS_IN_PATH, "target-burst-capacity is -1: every request passes the activator."
    if want == SCALE_UNKNOWN:
        return True, REASON_SCALE_UNKNOWN, "No scale decision yet: requests pass the activator."
    if want == 0:
        return True, REASON_SCALED_TO_ZERO, "No pods are wanted: requests wait in the activator."
    if decider.excess_burst_capacity >= 0:
        return False, REASON_BURST_CAPACITY_AVAILABLE, (
            f"Excess burst capacity {decider.excess_burst_capacity} >= 0: pods take traffic directly."
        )
    return True, REASON_BURST_CAPACITY_SHORT, (
        f"Excess burst capacity {decider.excess_burst_capacity} < 0: the activator buffers bursts."
    )


def reconcile(
    pa: PodAutoscaler,
    *,
    spec: ScalingSpec,
    decider: DeciderStatus,
    pods: PodCounts,
    current_replicas: int | None,
    now: float,
) -> Reconciled:
    status = pa.status.model_copy(deep=True)
    status.initialize_conditions(now=now)
    threshold = _active_threshold(status, spec)
    desired = decider.desired_scale
    requeue: float | None = None
    replicas: int | None = None

    if desired < 0 and not status.is_activating():
        want = desired  # metrics are not being collected yet
    else:
        minimum = spec.min_scale
        if spec.initial_scale > 1 and not status.is_scale_target_initialized() and spec.reachable:
            minimum = max(minimum, spec.initial_scale)
        desired = apply_bounds(minimum, spec.max_scale, desired)
        want, apply, requeue = _scale_to_zero(pa, status, spec, desired, now=now)
        if apply and want >= 0 and want != (1 if current_replicas is None else current_replicas):
            replicas = want

    in_path, reason, message = _mode(want, decider, spec)
    status.mark_activator_in_path(in_path, reason, message, now=now)
    status.mark_sks_ready(now=now)

    # desiredScale / actualScale; a restart's -1 does not overwrite a known desired scale.
    if not (want == SCALE_UNKNOWN and status.desired_scale is not None and status.desired_scale >= 0):
        status.desired_scale = want
    status.actual_scale = pods.ready
    status.observed_generation = pa.metadata.generation or 1

    if pods.ready >= threshold:
        status.mark_scale_target_initialized(now=now)
    if want == 0 or threshold == 0:
        if status.is_activating() and threshold > 0:
            status.mark_inactive(REASON_TIMED_OUT, "The target could not be activated.", now=now)
        else:
            status.mark_inactive(REASON_NO_TRAFFIC, "The target is not receiving traffic.", now=now)
    elif pods.ready < threshold:
        if want > 0 or not status.is_inactive():
            status.mark_activating(
                REASON_QUEUED, "Requests to the target are being buffered as resources are provisioned.", now=now
            )
        else:
            status.mark_inactive(REASON_NO_TRAFFIC, "The target is not receiving traffic.", now=now)
    elif want > 0 or not status.is_inactive():
        status.mark_active(now=now)

    return Reconciled(replicas=replicas, want=want, activator_in_path=in_path, status=status, requeue_after=requeue)
