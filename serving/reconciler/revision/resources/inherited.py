"""Labels, annotations and protocol facts every object a Revision owns shares. Pure; no I/O."""

from __future__ import annotations

from typing import Final

from knserve.networking import (
    QUEUE_H2C_PORT_NAME,
    QUEUE_HTTP_PORT_NAME,
    REVISION_LABEL,
    REVISION_UID_LABEL,
    ROUTE_LABEL,
    ROUTES_ANNOTATION,
    ROUTING_STATE_LABEL,
    ROUTING_STATE_MODIFIED_ANNOTATION,
)
from serving.apis.autoscaling import annotations as autoscaling_annotations
from serving.apis.v1 import Revision
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.kmeta import LAST_APPLIED_ANNOTATION, union, without

APP_LABEL: Final = "app"
PROTOCOL_HTTP1: Final = "http1"
PROTOCOL_H2C: Final = "h2c"

# Set by the Route as traffic moves; copying them into the pod template would roll pods
# (Knative leaves the same two labels out).
_ROUTING_LABELS: Final = (ROUTE_LABEL, ROUTING_STATE_LABEL)
_ROUTING_ANNOTATIONS: Final = (ROUTES_ANNOTATION, ROUTING_STATE_MODIFIED_ANNOTATION, LAST_APPLIED_ANNOTATION)


def child_labels(revision: Revision) -> dict[str, str]:
    labels = without(revision.metadata.labels, _ROUTING_LABELS)
    defaults = {APP_LABEL: revision.name} if APP_LABEL not in labels else {}
    return union(defaults, labels, {REVISION_LABEL: revision.name, REVISION_UID_LABEL: revision.metadata.uid or ""})


def child_annotations(revision: Revision) -> dict[str, str]:
    return without(revision.metadata.annotations, _ROUTING_ANNOTATIONS)


def user_port_name(revision: Revision) -> str:
    for port in revision.spec.get_container().ports or []:
        return port.name or ""
    return ""


def protocol_type(revision: Revision) -> str:
    """``h2c`` when the user port is named h2c, else ``http1`` (Knative's NetworkProtocolType)."""
    return PROTOCOL_H2C if user_port_name(revision) == "h2c" else PROTOCOL_HTTP1


def queue_port_name(revision: Revision) -> str:
    return QUEUE_H2C_PORT_NAME if protocol_type(revision) == PROTOCOL_H2C else QUEUE_HTTP_PORT_NAME


def initial_scale(revision: Revision, config: ConfigSnapshot) -> int:
    """Replicas to create the Deployment with: the initial-scale annotation, else config-autoscaler's."""
    found = autoscaling_annotations.get(revision.metadata.annotations or {}, autoscaling_annotations.INITIAL_SCALE)
    scale = config.autoscaler.initial_scale
    if found is not None:
        try:
            scale = int(found[1])
        except ValueError:
            pass
    if scale == 0 and not config.autoscaler.allow_zero_initial_scale:
        scale = 1
    return max(0, scale)
