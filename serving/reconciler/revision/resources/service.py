"""Pure builder of the Kubernetes Service ``<rev>`` in front of a revision's pods.

It selects the pods by ``serving.knative.dev/revision`` and exposes the queue-proxy: port 80
-> 8012 (named ``http`` or ``h2c``), plus the admin, autoscaler-stats and user-metrics
ports. kube-controller-manager derives EndpointSlices from it (labelled
``kubernetes.io/service-name=<rev>`` and carrying the Service's labels); the Route reads
their ready addresses. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

from knserve.networking import (
    AUTOSCALING_STATS_PORT,
    QUEUE_ADMIN_PORT,
    QUEUE_HTTP_PORT,
    REVISION_LABEL,
    USER_METRICS_PORT,
)
from serving.apis.v1 import Revision
from serving.reconciler.kmeta import owner_reference_dict, with_desired_hash
from serving.reconciler.revision.resources.deployment import (
    AUTOSCALING_STATS_PORT_NAME,
    QUEUE_ADMIN_PORT_NAME,
    USER_METRICS_PORT_NAME,
)
from serving.reconciler.revision.resources.inherited import child_annotations, child_labels, queue_port_name
from serving.reconciler.revision.resources.names import service_name

SERVICE_HTTP_PORT = 80


def _port(name: str, port: int, target: int) -> dict[str, Any]:
    return {"name": name, "port": port, "targetPort": target, "protocol": "TCP"}


def make_kubernetes_service(revision: Revision) -> dict[str, Any]:
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(revision.name),
            "namespace": revision.namespace,
            "labels": child_labels(revision),
            "annotations": child_annotations(revision),
            "ownerReferences": [owner_reference_dict(revision)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {REVISION_LABEL: revision.name},
            "ports": [
                _port(queue_port_name(revision), SERVICE_HTTP_PORT, QUEUE_HTTP_PORT),
                _port(QUEUE_ADMIN_PORT_NAME, QUEUE_ADMIN_PORT, QUEUE_ADMIN_PORT),
                _port(AUTOSCALING_STATS_PORT_NAME, AUTOSCALING_STATS_PORT, AUTOSCALING_STATS_PORT),
                _port(USER_METRICS_PORT_NAME, USER_METRICS_PORT, USER_METRICS_PORT),
            ],
        },
    }
    return with_desired_hash(service, "spec")
