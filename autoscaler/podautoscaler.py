"""The autoscaler's view of a PodAutoscaler: the fields it reads and the status it writes.

A PodAutoscaler (``autoscaling.internal.knative.dev/v1alpha1``) is created by the controller
for each Revision. The autoscaler reads its annotations, ``containerConcurrency``,
``reachability`` and ``scaleTargetRef``, and owns its status: ``desiredScale``,
``actualScale`` and the conditions ``Active`` and ``ScaleTargetInitialized`` (which make up
``Ready``, as ``serving.apis``' PodAutoscaler ConditionSet has it), ``SKSReady`` (tracked for
tooling; knserve has no ServerlessService) and ``ActivatorInPath`` (the routing decision for
the ingress, outside the Ready set because it tells where traffic goes, not whether the
revision is healthy).

Status changes go through named verbs (``mark_active``, ``mark_inactive``, ...); a condition
keeps its ``lastTransitionTime`` unless its status flips. Pure; times are epoch seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from knserve.networking import REVISION_LABEL
from knserve.stats_wire import ACTIVATOR_IN_PATH_CONDITION
from serving.apis.autoscaling.v1alpha1.podautoscaler_lifecycle import (
    CONDITION_ACTIVE,
    CONDITION_READY,
    CONDITION_SCALE_TARGET_INITIALIZED,
    CONDITION_SKS_READY,
)

ACTIVE: Final = CONDITION_ACTIVE
SCALE_TARGET_INITIALIZED: Final = CONDITION_SCALE_TARGET_INITIALIZED
SKS_READY: Final = CONDITION_SKS_READY
READY: Final = CONDITION_READY
READY_DEPENDENCIES: Final = (ACTIVE, SCALE_TARGET_INITIALIZED)  # as serving.apis' ConditionSet

REASON_NO_TRAFFIC: Final = "NoTraffic"
REASON_QUEUED: Final = "Queued"  # Knative's kpa.go writes "Queued"
REASON_TIMED_OUT: Final = "TimedOut"

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
PROGRESS_DEADLINE_ANNOTATION: Final = "serving.knative.dev/progress-deadline"


def format_time(seconds: float) -> str:
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None, default: float) -> float:
    if not text:
        return default
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: float = 0.0

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "lastTransitionTime": format_time(self.last_transition_time),
        }
        if self.reason:
            body["reason"] = self.reason
        if self.message:
            body["message"] = self.message
        return body


@dataclass(frozen=True, slots=True)
class PodAutoscalerStatus:
    desired_scale: int | None = None
    actual_scale: int | None = None
    observed_generation: int = 0
    conditions: tuple[Condition, ...] = ()

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    def _status_of(self, kind: str) -> str:
        found = self.condition(kind)
        return found.status if found else UNKNOWN

    @property
    def is_active(self) -> bool:
        return self._status_of(ACTIVE) == TRUE

    @property
    def is_inactive(self) -> bool:
        return self._status_of(ACTIVE) == FALSE

    @property
    def is_activating(self) -> bool:
        return self._status_of(ACTIVE) == UNKNOWN

    @property
    def is_scale_target_initialized(self) -> bool:
        return self._status_of(SCALE_TARGET_INITIALIZED) == TRUE

    @property
    def activator_in_path(self) -> bool:
        found = self.condition(ACTIVATOR_IN_PATH_CONDITION)
        return found is not None and found.status == TRUE

    def in_status_for(self, kind: str, status: str, now: float) -> float:
        """Seconds ``kind`` has had ``status``; -1 when it has another status or is missing."""
        found = self.condition(kind)
        if found is None or found.status != status:
            return -1.0
        return now - found.last_transition_time

    # --- verbs -----------------------------------------------------------------------------
    def with_condition(self, kind: str, status: str, reason: str, message: str, *, now: float) -> PodAutoscalerStatus:
        old = self.condition(kind)
        since = old.last_transition_time if old is not None and old.status == status else now
        new = Condition(kind, status, reason, message, since)
        if old == new:
            return self
        kept = tuple(c for c in self.conditions if c.type != kind)
        return replace(self, conditions=tuple(sorted((*kept, new), key=lambda c: c.type)))

    def initialize(self, *, now: float) -> PodAutoscalerStatus:
        status = self
        for kind in READY_DEPENDENCIES:
            if status.condition(kind) is None:
                status = status.with_condition(kind, UNKNOWN, "", "", now=now)
        return status.with_ready(now=now)

    def mark_active(self, *, now: float) -> PodAutoscalerStatus:
        return self.with_condition(ACTIVE, TRUE, "", "", now=now)

    def mark_activating(self, reason: str, message: str, *, now: float) -> PodAutoscalerStatus:
        return self.with_condition(ACTIVE, UNKNOWN, reason, message, now=now)

    def mark_inactive(self, reason: str, message: str, *, now: float) -> PodAutoscalerStatus:
        return self.with_condition(ACTIVE, FALSE, reason, message, now=now)

    def mark_scale_target_initialized(self, *, now: float) -> PodAutoscalerStatus:
        return self.with_condition(SCALE_TARGET_INITIALIZED, TRUE, "", "", now=now)

    def mark_sks_ready(self, *, now: float) -> PodAutoscalerStatus:
        return self.with_condition(SKS_READY, TRUE, "", "", now=now)

    def mark_activator_in_path(self, in_path: bool, reason: str, message: str, *, now: float) -> PodAutoscalerStatus:
        return self.with_condition(ACTIVATOR_IN_PATH_CONDITION, TRUE if in_path else FALSE, reason, message, now=now)

    def with_ready(self, *, now: float) -> PodAutoscalerStatus:
        """Derive Ready from its dependencies: any False makes it False, then any Unknown."""
        for wanted in (FALSE, UNKNOWN):
            for kind in READY_DEPENDENCIES:
                found = self.condition(kind)
                status = found.status if found else UNKNOWN
                if status == wanted:
                    reason = found.reason if found else ""
                    message = found.message if found else ""
                    return self.with_condition(READY, wanted, reason, message, now=now)
        return self.with_condition(READY, TRUE, "", "", now=now)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "observedGeneration": self.observed_generation,
            "conditions": [c.to_json() for c in self.conditions],
        }
        if self.desired_scale is not None:
            body["desiredScale"] = self.desired_scale
        if self.actual_scale is not None:
            body["actualScale"] = self.actual_scale
        return body

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None, *, now: float) -> PodAutoscalerStatus:
        obj = obj or {}
        conditions = tuple(
            Condition(
                type=str(c.get("type", "")),
                status=str(c.get("status", UNKNOWN)),
                reason=str(c.get("reason", "")),
                message=str(c.get("message", "")),
                last_transition_time=parse_time(c.get("lastTransitionTime"), now),
            )
            for c in obj.get("conditions") or ()
            if isinstance(c, Mapping)
        )
        desired, actual = obj.get("desiredScale"), obj.get("actualScale")
        return cls(
            desired_scale=int(desired) if isinstance(desired, int) else None,
            actual_scale=int(actual) if isinstance(actual, int) else None,
            observed_generation=int(obj.get("observedGeneration") or 0),
            conditions=tuple(sorted(conditions, key=lambda c: c.type)),
        )


@dataclass(frozen=True, slots=True)
class PodAutoscaler:
    namespace: str
    name: str
    generation: int = 1
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    container_concurrency: int = 0
    reachable: bool = True
    scale_target_name: str = ""
    status: PodAutoscalerStatus = PodAutoscalerStatus()

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def revision(self) -> str:
        return self.labels.get(REVISION_LABEL, self.name)

    @property
    def deployment_name(self) -> str:
        return self.scale_target_name or f"{self.revision}-deployment"

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, now: float) -> PodAutoscaler:
        """Read a PodAutoscaler as the API server returns it (a JSON object)."""
        metadata = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        return cls(
            namespace=str(metadata.get("namespace", "default")),
            name=str(metadata["name"]),
            generation=int(metadata.get("generation") or 1),
            annotations=dict(metadata.get("annotations") or {}),
            labels=dict(metadata.get("labels") or {}),
            container_concurrency=int(spec.get("containerConcurrency") or 0),
            reachable=spec.get("reachability") != "Unreachable",
            scale_target_name=str(target.get("name") or ""),
            status=PodAutoscalerStatus.from_json(obj.get("status"), now=now),
        )


@dataclass(frozen=True, slots=True)
class PodCounts:
    """A revision's pods by state, as Knative's PodAccessor counts them."""

    ready: int = 0
    not_ready: int = 0
    pending: int = 0
    terminating: int = 0
