"""PodAutoscaler (autoscaling.internal.knative.dev/v1alpha1): the autoscaler's view of a Revision.

Pure models; the condition verbs live in ``podautoscaler_lifecycle.py``.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from serving.apis.autoscaling.v1alpha1.podautoscaler_lifecycle import PodAutoscalerStatusLifecycle
from serving.apis.conditions import Status
from serving.apis.meta import FrozenModel, ObjectReference, Resource

API_VERSION: Final = "autoscaling.internal.knative.dev/v1alpha1"

REACHABILITY_REACHABLE: Final = "Reachable"
REACHABILITY_UNREACHABLE: Final = "Unreachable"
REACHABILITY_UNKNOWN: Final = ""
PROTOCOL_HTTP1: Final = "http1"
PROTOCOL_H2C: Final = "h2c"


class PodAutoscalerSpec(FrozenModel):
    container_concurrency: int | None = None
    scale_target_ref: ObjectReference = Field(default_factory=ObjectReference)
    reachability: str | None = None
    protocol_type: str | None = None


class PodAutoscalerStatus(PodAutoscalerStatusLifecycle, Status):
    service_name: str | None = None
    metrics_service_name: str | None = None
    desired_scale: int | None = None
    actual_scale: int | None = None


class PodAutoscaler(Resource):
    api_version: str | None = API_VERSION
    kind: str | None = "PodAutoscaler"
    spec: PodAutoscalerSpec = Field(default_factory=PodAutoscalerSpec)
    status: PodAutoscalerStatus = Field(default_factory=PodAutoscalerStatus)

    def is_ready(self) -> bool:
        return self.status.observed_generation == self.metadata.generation and self.status.is_ready()
