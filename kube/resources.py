"""The API resources knserve's processes read and write, and the path to each.

Pure descriptions (group, version, plural, kind); no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Final


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    """One kind of API object, addressed the way the REST API addresses it."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    has_status: bool = True  # written through the /status subresource
    has_generation: bool = True  # the server bumps metadata.generation on spec changes

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def collection_path(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"

    def object_path(self, namespace: str | None, name: str, subresource: str | None = None) -> str:
        path = f"{self.collection_path(namespace)}/{name}"
        return f"{path}/{subresource}" if subresource else path

    def __str__(self) -> str:
        return self.group_resource


SERVING_GROUP: Final = "serving.knative.dev"
AUTOSCALING_GROUP: Final = "autoscaling.internal.knative.dev"

SERVICES: Final = Resource(SERVING_GROUP, "v1", "services", "Service")
CONFIGURATIONS: Final = Resource(SERVING_GROUP, "v1", "configurations", "Configuration")
REVISIONS: Final = Resource(SERVING_GROUP, "v1", "revisions", "Revision")
ROUTES: Final = Resource(SERVING_GROUP, "v1", "routes", "Route")
PODAUTOSCALERS: Final = Resource(AUTOSCALING_GROUP, "v1alpha1", "podautoscalers", "PodAutoscaler")

DEPLOYMENTS: Final = Resource("apps", "v1", "deployments", "Deployment")
KUBE_SERVICES: Final = Resource("", "v1", "services", "Service", has_generation=False)
PODS: Final = Resource("", "v1", "pods", "Pod", has_generation=False)
CONFIGMAPS: Final = Resource("", "v1", "configmaps", "ConfigMap", has_status=False, has_generation=False)
EVENTS: Final = Resource("", "v1", "events", "Event", has_status=False, has_generation=False)
NAMESPACES: Final = Resource("", "v1", "namespaces", "Namespace", namespaced=False, has_generation=False)
NODES: Final = Resource("", "v1", "nodes", "Node", namespaced=False, has_generation=False)
SECRETS: Final = Resource("", "v1", "secrets", "Secret", has_status=False, has_generation=False)
SERVICE_ACCOUNTS: Final = Resource("", "v1", "serviceaccounts", "ServiceAccount", has_status=False, has_generation=False)
LEASES: Final = Resource("coordination.k8s.io", "v1", "leases", "Lease", has_status=False, has_generation=False)
ENDPOINT_SLICES: Final = Resource(
    "discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", has_status=False, has_generation=False
)
