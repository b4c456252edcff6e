"""Pure builder of a Route's placeholder Services: the names ``status.address`` promises.

Every Route is reachable inside the cluster at ``http://<route>.<ns>.svc.cluster.local`` (its
``status.address``), and each tag at ``<tag>-<route>.<ns>.svc.cluster.local``. Cluster DNS
only answers names of Kubernetes Services, so, as Knative does, the Route owns a Service per
host name in its namespace: type ``ExternalName`` aliasing the ingress's internal Service
(``knserve-internal`` in ``knative-serving``), whose listener routes by Host header like the
public one. Owned by the Route, so they go with it. As in Knative, each carries the Route's
labels (but the visibility label, which a user sets on one tag's Service to make just that tag
cluster-local) plus ``serving.knative.dev/route``, and all of the Route's annotations (the
Service name, ``creator``, ``lastModifier``, the user's own). ``keep_visibility`` carries the
visibility label a user put on an existing Service over an update. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from knserve.networking import ROUTE_LABEL, SYSTEM_NAMESPACE, VISIBILITY_LABEL
from serving.apis.v1 import Route
from serving.config.domain import CLUSTER_LOCAL_DOMAIN
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.kmeta import owner_reference_dict, union, with_desired_hash, without

INTERNAL_INGRESS_SERVICE = "knserve-internal"
INTERNAL_INGRESS_HOST = f"{INTERNAL_INGRESS_SERVICE}.{SYSTEM_NAMESPACE}.{CLUSTER_LOCAL_DOMAIN}"
HTTP_PORT = 80


def placeholder_names(route: Route, config: ConfigSnapshot, tags: Iterable[str]) -> list[str]:
    """The Route's name and, for each tag, the tag's host name (``tag-template``)."""
    names = {route.name, *(config.network.tag_name(name=route.name, tag=tag) for tag in tags)}
    return sorted(names)


def make_placeholder_service(route: Route, name: str) -> dict[str, Any]:
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": route.namespace,
            "labels": union(without(route.metadata.labels, [VISIBILITY_LABEL]), {ROUTE_LABEL: route.name}),
            "annotations": dict(route.metadata.annotations or {}),
            "ownerReferences": [owner_reference_dict(route)],
        },
        "spec": {
            "type": "ExternalName",
            "externalName": INTERNAL_INGRESS_HOST,
            "sessionAffinity": "None",
            "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": HTTP_PORT, "protocol": "TCP"}],
        },
    }
    return with_desired_hash(service, "spec")


def keep_visibility(existing: dict[str, Any], body: dict[str, Any]) -> None:
    """An update of a placeholder Service keeps the visibility label its user set on it."""
    visibility = ((existing.get("metadata") or {}).get("labels") or {}).get(VISIBILITY_LABEL)
    if visibility is not None:
        body.setdefault("metadata", {}).setdefault("labels", {})[VISIBILITY_LABEL] = visibility
