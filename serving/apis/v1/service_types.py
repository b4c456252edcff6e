"""Service: a Configuration plus a Route of the same name (serving.knative.dev/v1).

Pure models; the condition verbs live in ``service_lifecycle.py``.
"""

from __future__ import annotations

from pydantic import Field

from serving.apis.conditions import Status
from serving.apis.meta import ApiObject, FrozenModel, KubeModel
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

class CanaryAnalysis(KubeModel):
    """What the last analysed interval of a canary step saw (the candidate's and, beside it,
    the previous Revision's figures over the same interval)."""

    at: str | None = None  # RFC 3339
    requests: float | None = None
    error_rate: float | None = None  # a fraction
    p99_ms: float | None = None
    previous_requests: float | None = None
    previous_error_rate: float | None = None
    previous_p99_ms: float | None = None


class CanaryStatus(KubeModel):
    """Where progressive delivery stands (knserve's extension of the Service status).

    ``revisionName`` is the Revision analysed last (the one promoted, once ``Promoted``);
    ``previousRevisionName`` the one it is measured against and traffic goes back to.
    """

    revision_name: str | None = None
    previous_revision_name: str | None = None
    phase: str | None = None  # Progressing | Promoted | RolledBack | Stopped
    percent: int | None = None  # the candidate's share of the latest Revision's traffic now
    steps: list[int] | None = None
    step: int | None = None  # index into steps
    step_started_at: str | None = None  # RFC 3339: the analysed interval starts here
    traffic_digest: str | None = None  # of spec.traffic when the analysis began: an edit stops it
    last_analysis: CanaryAnalysis | None = None
    message: str | None = None


class ServiceStatus(ServiceStatusLifecycle, ConfigurationStatusFields, RouteStatusFields, Status):
    canary: CanaryStatus | None = None


class Service(ApiObject):
    api_version: str | None = API_VERSION
    kind: str | None = "Service"
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus = Field(default_factory=ServiceStatus)

    def is_ready(self) -> bool:
        return self.status.observed_generation == self.metadata.generation and self.status.is_ready()

    def is_failed(self) -> bool:
        return self.status.is_failed()
