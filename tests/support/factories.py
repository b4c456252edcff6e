"""Object factories for tests: API objects as models, with options for what a test cares about."""

from __future__ import annotations

from serving.apis.autoscaling.v1alpha1 import PodAutoscaler, PodAutoscalerStatus
from serving.apis.conditions import Condition, ConditionStatus, format_time
from serving.apis.meta import ObjectMeta


def pa_condition(kind: str, status: ConditionStatus, *, since: float, reason: str = "") -> Condition:
    """A condition as the autoscaler writes it: ``since`` is epoch seconds."""
    return Condition(type=kind, status=status, reason=reason or None, last_transition_time=format_time(since))


def pod_autoscaler(status: PodAutoscalerStatus | None = None, *, name: str = "hello-00001",
                   namespace: str = "default") -> PodAutoscaler:
    return PodAutoscaler(metadata=ObjectMeta(name=name, namespace=namespace), status=status or PodAutoscalerStatus())
