"""autoscaling.internal.knative.dev/v1alpha1: the PodAutoscaler."""

from serving.apis.autoscaling.v1alpha1.podautoscaler_types import (
    PodAutoscaler,
    PodAutoscalerSpec,
    PodAutoscalerStatus,
)

__all__ = ["PodAutoscaler", "PodAutoscalerSpec", "PodAutoscalerStatus"]
