"""PodAutoscaler condition verbs (after knative.dev/serving pa_lifecycle.go).

Ready is derived from ``Active`` and ``ScaleTargetInitialized``. Knative also counts
``SKSReady`` (its ServerlessService); knserve has no SKS, so ``SKSReady`` is tracked for
tooling that reads it but is not part of Ready. Pure; no side effects.
"""

from __future__ import annotations

from typing import ClassVar, Final

from serving.apis.conditions import ConditionSet
from serving.apis.v1._lifecycle_base import Now, StatusLifecycle

CONDITION_READY: Final = "Ready"
CONDITION_ACTIVE: Final = "Active"
CONDITION_SCALE_TARGET_INITIALIZED: Final = "ScaleTargetInitialized"
CONDITION_SKS_READY: Final = "SKSReady"  # tracked, not part of Ready

REASON_NOT_OWNED: Final = "NotOwned"
REASON_FAILED_CREATE: Final = "FailedCreate"
REASON_NO_TRAFFIC: Final = "NoTraffic"
REASON_QUEUING: Final = "Queuing"
REASON_NOT_READY: Final = "NotReady"

POD_AUTOSCALER_CONDITION_SET: Final = ConditionSet(CONDITION_ACTIVE, CONDITION_SCALE_TARGET_INITIALIZED)


class PodAutoscalerStatusLifecycle(StatusLifecycle):
    CONDITION_SET: ClassVar[ConditionSet] = POD_AUTOSCALER_CONDITION_SET

    def is_active(self) -> bool:
        condition = self._condition(CONDITION_ACTIVE)
        return condition is not None and condition.is_true()

    def is_activating(self) -> bool:
        condition = self._condition(CONDITION_ACTIVE)
        return condition is not None and condition.is_unknown()

    def is_inactive(self) -> bool:
        condition = self._condition(CONDITION_ACTIVE)
        return condition is not None and condition.is_false()

    def is_scale_target_initialized(self) -> bool:
        condition = self._condition(CONDITION_SCALE_TARGET_INITIALIZED)
        return condition is not None and condition.is_true()

    def mark_scale_target_initialized(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_SCALE_TARGET_INITIALIZED)

    def mark_sks_ready(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_SKS_READY)

    def mark_sks_not_ready(self, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(CONDITION_SKS_READY, REASON_NOT_READY, message)

    def mark_active(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_ACTIVE)

    def mark_activating(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(CONDITION_ACTIVE, reason, message)

    def mark_inactive(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(CONDITION_ACTIVE, reason, message)

    def mark_resource_not_owned(self, kind: str, name: str, *, now: Now = None) -> None:
        self.mark_inactive(REASON_NOT_OWNED, f'There is an existing {kind} "{name}" that we do not own.', now=now)

    def mark_resource_failed_creation(self, kind: str, name: str, *, now: Now = None) -> None:
        self.mark_inactive(REASON_FAILED_CREATE, f'Failed to create {kind} "{name}".', now=now)
