"""Kubernetes object metadata and the shared base classes of every API model.

Every model uses camelCase aliases (``populate_by_name=True``) so that
``model_dump(by_alias=True, exclude_none=True)`` gives back the JSON a user or the API server
wrote. Unset optional fields are ``None`` so they disappear from that dump; unknown keys are
kept (``extra="allow"``) so nothing a user wrote is lost in a read-modify-write.

Specs are frozen (replace them with ``model_copy(update=...)``); metadata and status are
mutable because the controller edits them in place. Pure; no side effects.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer
from pydantic.alias_generators import to_camel


class KubeModel(BaseModel):
    """A mutable part of an API object (metadata, status).

    A sub-object that was never set (it came from its default) and dumps empty is left out,
    so a user's YAML round-trips without gaining ``metadata: {}`` or ``status: {}``.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, extra="allow")

    @model_serializer(mode="wrap")
    def _drop_unset_empty(self, handler: Any) -> Any:
        dumped = handler(self)
        if isinstance(dumped, dict):
            for name, field in type(self).model_fields.items():
                if name in self.model_fields_set:
                    continue
                key = field.alias or name
                if dumped.get(key) == {}:
                    del dumped[key]
        return dumped

    def to_dict(self) -> dict[str, Any]:
        """The object as Kubernetes JSON: aliases, no ``None`` fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class FrozenModel(KubeModel):
    """An immutable part of an API object (specs). Change it with ``model_copy(update=...)``."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, extra="allow", frozen=True
    )


class OwnerReference(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    uid: str | None = None
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(KubeModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None

    def label(self, key: str) -> str | None:
        return (self.labels or {}).get(key)

    def annotation(self, key: str) -> str | None:
        return (self.annotations or {}).get(key)


class ObjectReference(FrozenModel):
    """corev1.ObjectReference (as used by ``scaleTargetRef``)."""

    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class ApiObject(KubeModel):
    """A top-level object: ``apiVersion``, ``kind``, ``metadata``, ``spec`` and ``status``.

    An unset, empty ``status`` is left out of the dump, so a user's YAML round-trips unchanged.
    """

    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""

    @property
    def key(self) -> str:
        """``namespace/name``, the key work queues and logs use."""
        return f"{self.namespace}/{self.name}"
