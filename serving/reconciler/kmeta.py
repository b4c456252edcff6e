"""Metadata helpers shared by the builders (knative.dev/pkg's ``kmeta``): owner references,
label and annotation merging, and the spec hash the reconcilers use to tell whether a child
needs an update.

Pure; no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from serving.apis.meta import ApiObject, OwnerReference

LAST_APPLIED_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"
DESIRED_HASH_ANNOTATION: Final = "serving.knserve.dev/desired-hash"
"""On objects the controller builds from a spec (Deployment, Service, PodAutoscaler): a hash of
what it asked for, so an update is sent only when that changes (the API server fills in
defaults, so comparing the stored object with the wanted one would always differ)."""


def owner_reference(owner: ApiObject) -> OwnerReference:
    """A controller ownerReference to ``owner`` (deleting it deletes the child)."""
    return OwnerReference(
        api_version=owner.api_version,
        kind=owner.kind,
        name=owner.metadata.name,
        uid=owner.metadata.uid,
        controller=True,
        block_owner_deletion=True,
    )


def owner_reference_dict(owner: ApiObject) -> dict[str, Any]:
    return owner_reference(owner).to_dict()


def event_target(obj: ApiObject) -> dict[str, Any]:
    """The little of an object an Event's ``involvedObject`` needs (cheaper than a full dump)."""
    return {
        "apiVersion": obj.api_version,
        "kind": obj.kind,
        "metadata": {"name": obj.metadata.name, "namespace": obj.metadata.namespace, "uid": obj.metadata.uid,
                     "resourceVersion": obj.metadata.resource_version},
    }


def union(*maps: Mapping[str, str] | None) -> dict[str, str]:
    """Later maps win."""
    result: dict[str, str] = {}
    for mapping in maps:
        result.update(mapping or {})
    return result


def without(mapping: Mapping[str, str] | None, keys: Iterable[str]) -> dict[str, str]:
    drop = set(keys)
    return {k: v for k, v in (mapping or {}).items() if k not in drop}


def spec_hash(value: Any) -> str:
    """A short stable hash of a JSON value."""
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def with_desired_hash(obj: dict[str, Any], *parts: str, ignore_replicas: bool = False) -> dict[str, Any]:
    """Stamp ``obj`` with the hash of its own ``parts`` (top-level keys) plus labels/annotations.

    ``ignore_replicas`` leaves ``spec.replicas`` out: the autoscaler owns it after creation."""
    metadata = obj.setdefault("metadata", {})
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != DESIRED_HASH_ANNOTATION}
    hashed = {
        "labels": metadata.get("labels") or {},
        "annotations": annotations,
        **{part: obj.get(part) for part in parts},
    }
    spec = hashed.get("spec")
    if ignore_replicas and isinstance(spec, dict):
        hashed["spec"] = {k: v for k, v in spec.items() if k != "replicas"}
    metadata["annotations"] = {**annotations, DESIRED_HASH_ANNOTATION: spec_hash(hashed)}
    return obj


def desired_hash_of(obj: Mapping[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(DESIRED_HASH_ANNOTATION)
