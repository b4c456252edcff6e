"""Service: a Configuration plus a Route of the same name (serving.knative.dev/v1).

Pure models; the condition verbs live in ``service_lifecycle.py``.
"""

from __future__ import annotations

from pydantic import Field

from serving.apis.conditions import Status
from serving.apis.meta import ApiObject, FrozenModel
from serving.apis.v1.configuration_types import ConfigurationSpec, ConfigurationStatusFields
from serving.apis.v1.revision_types import API_VERSION, RevisionTemplateSpec
from serving.apis.v1.route_types import RouteStatusFields, TrafficTarget
from serving.apis.v1.service_lifecycle import ServiceStatusLifecycle


class ServiceSpec(FrozenModel):
    """ConfigurationSpec (``template``) and RouteSpec (``traffic``) inline."""

    template: RevisionTemplateSpec = Field(default_factory=RevisionTemplateSpec)
    traffic: list[TrafficTarget] | None = None

    def configuration_spec(self) -> ConfigurationSpec:
        return ConfigurationSpec(template=self.template)

class ServiceStatus(ServiceStatusLifecycle, ConfigurationStatusFields, RouteStatusFields, Status):
    pass


class Service(ApiObject):
    api_version: str | None = API_VERSION
    kind: str | None = "Service"
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus = Field(default_factory=ServiceStatus)

    def is_ready(self) -> bool:
        return self.status.observed_generation == self.metadata.generation and self.status.is_ready()

    def is_failed(self) -> bool:
        return self.status.is_failed()
