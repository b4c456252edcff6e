"""Pure builder of a revision's PodAutoscaler ``<rev>``: what the autoscaler scales and how.

``scaleTargetRef`` names the Deployment; ``containerConcurrency`` and ``protocolType``
come from the revision; ``reachability`` follows its routing state (active -> Reachable,
reserve -> Unreachable, otherwise unknown); the revision's annotations (the
``autoscaling.knative.dev/*`` knobs, initial scale included) are carried over, with the
class defaulted from config-autoscaler. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

from knserve.networking import AUTOSCALING_CLASS_ANNOTATION, ROUTING_STATE_LABEL
from serving.apis.autoscaling.v1alpha1.podautoscaler_types import (
    REACHABILITY_REACHABLE,
    REACHABILITY_UNKNOWN,
    REACHABILITY_UNREACHABLE,
)
from serving.apis.v1 import Revision
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.kmeta import owner_reference_dict, with_desired_hash
from serving.reconciler.revision.resources.inherited import child_annotations, child_labels, protocol_type
from serving.reconciler.revision.resources.names import deployment_name, pod_autoscaler_name

_REACHABILITY = {"active": REACHABILITY_REACHABLE, "reserve": REACHABILITY_UNREACHABLE}


def make_pod_autoscaler(revision: Revision, config: ConfigSnapshot) -> dict[str, Any]:
    annotations = child_annotations(revision)
    annotations.setdefault(AUTOSCALING_CLASS_ANNOTATION, config.autoscaler.pod_autoscaler_class)
    spec: dict[str, Any] = {
        "containerConcurrency": revision.spec.container_concurrency or 0,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name(revision.name)},
        "protocolType": protocol_type(revision),
    }
    reachability = _REACHABILITY.get(revision.metadata.label(ROUTING_STATE_LABEL) or "", REACHABILITY_UNKNOWN)
    if reachability:
        spec["reachability"] = reachability
    pod_autoscaler: dict[str, Any] = {
        "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
        "kind": "PodAutoscaler",
        "metadata": {
            "name": pod_autoscaler_name(revision.name),
            "namespace": revision.namespace,
            "labels": child_labels(revision),
            "annotations": annotations,
            "ownerReferences": [owner_reference_dict(revision)],
        },
        "spec": spec,
    }
    return with_desired_hash(pod_autoscaler, "spec")
