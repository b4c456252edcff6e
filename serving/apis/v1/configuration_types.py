"""Configuration: the desired state of the latest Revision (serving.knative.dev/v1).

Pure models; the condition verbs live in ``configuration_lifecycle.py``.
"""

from __future__ import annotations

from pydantic import Field

from serving.apis.conditions import Status
from serving.apis.meta import ApiObject, FrozenModel, KubeModel
from serving.apis.v1.configuration_lifecycle import ConfigurationStatusLifecycle
from serving.apis.v1.revision_types import API_VERSION, RevisionTemplateSpec


class ConfigurationSpec(FrozenModel):
    template: RevisionTemplateSpec = Field(default_factory=RevisionTemplateSpec)


class ConfigurationStatusFields(KubeModel):
    latest_ready_revision_name: str | None = None
    latest_created_revision_name: str | None = None


class ConfigurationStatus(ConfigurationStatusLifecycle, ConfigurationStatusFields, Status):
    pass


class Configuration(ApiObject):
    api_version: str | None = API_VERSION
    kind: str | None = "Configuration"
    spec: ConfigurationSpec = Field(default_factory=ConfigurationSpec)
    status: ConfigurationStatus = Field(default_factory=ConfigurationStatus)

    def is_ready(self) -> bool:
        return self.status.observed_generation == self.metadata.generation and self.status.is_ready()

    def is_failed(self) -> bool:
        return self.status.is_failed()
