"""Route: named endpoints and traffic split over Revisions (serving.knative.dev/v1).

Pure models; the condition verbs live in ``route_lifecycle.py``.
"""

from __future__ import annotations

from pydantic import Field

from serving.apis.conditions import Status
from serving.apis.meta import ApiObject, FrozenModel, KubeModel
from serving.apis.v1.revision_types import API_VERSION
from serving.apis.v1.route_lifecycle import RouteStatusLifecycle


class TrafficTarget(FrozenModel):
    tag: str | None = None
    revision_name: str | None = None
    configuration_name: str | None = None
    latest_revision: bool | None = None
    percent: int | None = None
    url: str | None = None


class RouteSpec(FrozenModel):
    traffic: list[TrafficTarget] | None = None


class Addressable(KubeModel):
    """duckv1.Addressable."""

    name: str | None = None
    url: str | None = None
    ca_certs: str | None = Field(default=None, alias="CACerts")
    audience: str | None = None


class RouteStatusFields(KubeModel):
    url: str | None = None
    address: Addressable | None = None
    traffic: list[TrafficTarget] | None = None


class RouteStatus(RouteStatusLifecycle, RouteStatusFields, Status):
    pass


class Route(ApiObject):
    api_version: str | None = API_VERSION
    kind: str | None = "Route"
    spec: RouteSpec = Field(default_factory=RouteSpec)
    status: RouteStatus = Field(default_factory=RouteStatus)

    def is_ready(self) -> bool:
        return self.status.observed_generation == self.metadata.generation and self.status.is_ready()

    def is_failed(self) -> bool:
        return self.status.is_failed()
