"""Pure builder of a Route's placeholder Services: the names ``status.address`` promises.

Every Route is reachable inside the cluster at ``http://<route>.<ns>.svc.cluster.local`` (its
``status.address``), and each tag at ``<tag>-<route>.<ns>.svc.cluster.local``. Cluster DNS
only answers names of Kubernetes Services, so, as Knative does, the Route owns a Service per
host name in its namespace: type ``ExternalName`` aliasing the ingress's internal Service
(``knserve-internal`` in ``knative-serving``), whose listener routes by Host header like the
public one. Labelled ``serving.knative.dev/route`` and owned by the Route, so they go with it.
Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from knserve.networking import ROUTE_LABEL, SYSTEM_NAMESPACE
from serving.apis.v1 import Route
from serving.config.domain import CLUSTER_LOCAL_DOMAIN
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.meta import owner_reference_dict, with_desired_hash

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
            "labels": {ROUTE_LABEL: route.name},
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
