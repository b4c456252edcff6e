"""PodAutoscaler (autoscaling.internal.knative.dev/v1alpha1): the autoscaler's view of a Revision.

The controller creates one per Revision; the autoscaler reads its annotations,
``containerConcurrency``, ``reachability`` and ``scaleTargetRef`` and owns its status.
Pure models; the condition verbs live in ``podautoscaler_lifecycle.py``.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from knserve.networking import REVISION_LABEL
from serving.apis.autoscaling.v1alpha1.podautoscaler_lifecycle import PodAutoscalerStatusLifecycle
from serving.apis.conditions import Status
from serving.apis.meta import ApiObject, FrozenModel, ObjectReference

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


class PodAutoscaler(ApiObject):
    api_version: str | None = API_VERSION
    kind: str | None = "PodAutoscaler"
    spec: PodAutoscalerSpec = Field(default_factory=PodAutoscalerSpec)
    status: PodAutoscalerStatus = Field(default_factory=PodAutoscalerStatus)

    def is_ready(self) -> bool:
        return self.status.observed_generation == self.metadata.generation and self.status.is_ready()

    @property
    def revision(self) -> str:
        """The Revision it scales (its label; the PodAutoscaler is named like the Revision)."""
        return self.metadata.label(REVISION_LABEL) or self.name

    @property
    def deployment_name(self) -> str:
        return self.spec.scale_target_ref.name or f"{self.revision}-deployment"

    @property
    def reachable(self) -> bool:
        """False only for a revision no route sends traffic to (it may go to zero below min-scale)."""
        return self.spec.reachability != REACHABILITY_UNREACHABLE
