"""PodAutoscaler condition verbs (after knative.dev/serving pa_lifecycle.go).

Ready is derived from ``Active`` and ``ScaleTargetInitialized``. Knative also counts
``SKSReady`` (its ServerlessService); knserve has no SKS, so ``SKSReady`` is tracked for
tooling that reads it but is not part of Ready. ``ActivatorInPath`` (written by the
autoscaler, read by the ingress; see ``knserve.stats_wire``) says where traffic goes, not
whether the revision is healthy, so it is outside the Ready set too.

The controller creates PodAutoscalers and reads their status; the autoscaler owns the status
and writes it through these verbs, with epoch seconds as ``now``. Pure; no side effects.
"""

from __future__ import annotations

from typing import ClassVar, Final

from knserve.stats_wire import ACTIVATOR_IN_PATH_CONDITION
from serving.apis.conditions import FALSE, TRUE, UNKNOWN, ConditionSet, ConditionStatus, parse_time
from serving.apis.v1._lifecycle_base import Now, StatusLifecycle

CONDITION_READY: Final = "Ready"
CONDITION_ACTIVE: Final = "Active"
CONDITION_SCALE_TARGET_INITIALIZED: Final = "ScaleTargetInitialized"
CONDITION_SKS_READY: Final = "SKSReady"  # tracked, not part of Ready

REASON_NO_TRAFFIC: Final = "NoTraffic"
REASON_QUEUED: Final = "Queued"  # Knative's kpa.go writes "Queued"
REASON_TIMED_OUT: Final = "TimedOut"

POD_AUTOSCALER_CONDITION_SET: Final = ConditionSet(CONDITION_ACTIVE, CONDITION_SCALE_TARGET_INITIALIZED)


class PodAutoscalerStatusLifecycle(StatusLifecycle):
    CONDITION_SET: ClassVar[ConditionSet] = POD_AUTOSCALER_CONDITION_SET

    def _status_of(self, condition_type: str) -> ConditionStatus | None:
        condition = self._condition(condition_type)
        return None if condition is None else condition.status

    def is_active(self) -> bool:
        return self._status_of(CONDITION_ACTIVE) == TRUE

    def is_activating(self) -> bool:
        return self._status_of(CONDITION_ACTIVE) == UNKNOWN

    def is_inactive(self) -> bool:
        return self._status_of(CONDITION_ACTIVE) == FALSE

    def is_scale_target_initialized(self) -> bool:
        return self._status_of(CONDITION_SCALE_TARGET_INITIALIZED) == TRUE

    def activator_in_path(self) -> bool:
        """Whether the autoscaler last put the activator in the revision's path."""
        return self._status_of(ACTIVATOR_IN_PATH_CONDITION) == TRUE

    def in_status_for(self, condition_type: str, status: ConditionStatus, now: float) -> float:
        """Seconds ``condition_type`` has had ``status`` at ``now`` (epoch seconds); -1 when it
        has another status or is missing, 0 when its transition time is not known."""
        condition = self._condition(condition_type)
        if condition is None or condition.status != status:
            return -1.0
        since = parse_time(condition.last_transition_time)
        return 0.0 if since is None else now - since

    def mark_scale_target_initialized(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_SCALE_TARGET_INITIALIZED)

    def mark_sks_ready(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_SKS_READY)

    def mark_active(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_ACTIVE)

    def mark_activating(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(CONDITION_ACTIVE, reason, message)

    def mark_inactive(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(CONDITION_ACTIVE, reason, message)

    def mark_activator_in_path(self, in_path: bool, reason: str, message: str, *, now: Now = None) -> None:
        manager = self.manage(now)
        if in_path:
            manager.mark_true(ACTIVATOR_IN_PATH_CONDITION, reason, message)
        else:
            manager.mark_false(ACTIVATOR_IN_PATH_CONDITION, reason, message)
