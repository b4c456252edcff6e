"""Revision: an immutable snapshot of code and configuration (serving.knative.dev/v1).

Pure models; the condition verbs live in ``revision_lifecycle.py``.
"""

from __future__ import annotations

from pydantic import Field

from serving.apis.conditions import Status
from serving.apis.meta import ApiObject, FrozenModel, KubeModel, ObjectMeta
from serving.apis.v1.podspec_types import Container, PodSpec
from serving.apis.v1.revision_lifecycle import RevisionStatusLifecycle

API_VERSION = "serving.knative.dev/v1"


class RevisionSpec(PodSpec):
    """A PodSpec plus Knative's per-revision settings."""

    container_concurrency: int | None = None
    timeout_seconds: int | None = None
    response_start_timeout_seconds: int | None = None
    idle_timeout_seconds: int | None = None

    def get_container(self) -> Container:
        """The serving container: the one with a port, else the only one (empty when none)."""
        containers = self.containers or []
        for container in containers:
            if container.ports:
                return container
        return containers[0] if len(containers) == 1 else Container()

    def get_container_concurrency(self) -> int:
        return self.container_concurrency or 0


class RevisionTemplateSpec(FrozenModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RevisionSpec = Field(default_factory=RevisionSpec)


class ContainerStatus(KubeModel):
    name: str | None = None
    image_digest: str | None = None


class RevisionStatus(RevisionStatusLifecycle, Status):
    log_url: str | None = None
    container_statuses: list[ContainerStatus] | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    actual_replicas: int | None = None
    desired_replicas: int | None = None


class Revision(ApiObject):
    api_version: str | None = API_VERSION
    kind: str | None = "Revision"
    spec: RevisionSpec = Field(default_factory=RevisionSpec)
    status: RevisionStatus = Field(default_factory=RevisionStatus)

    def is_ready(self) -> bool:
        return self.status.observed_generation == self.metadata.generation and self.status.is_ready()

    def is_failed(self) -> bool:
        return self.status.is_failed()
