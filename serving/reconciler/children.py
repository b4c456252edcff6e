"""Get-or-create-or-update of an owned child object, shared by every kind's reconciler.

``ensure_child`` looks the child up in the informer cache (falling back to the API when a
create says it already exists), creates it when missing, reports when it is controlled by
someone else, and otherwise updates only the parts the caller owns when they differ:

* ``compare="fields"``: the listed top-level parts (e.g. ``spec``) plus labels and annotations
  are compared as JSON; used for Knative kinds, whose specs the server does not default;
* ``keep_annotations``: annotations another reconciler owns on the child (the Route's
  ``serving.knative.dev/routes`` on a Configuration) are neither compared nor overwritten;
* ``compare="hash"``: the desired-hash annotation is compared (see ``meta.with_desired_hash``);
  used for Deployments and Services, which the server fills with defaults.

The update keeps everything else the server has (status, ``spec.replicas`` of a Deployment
when asked to, clusterIP, ...). Events: ``Created`` on the owner (unless ``announce=False``:
the Revision's plumbing is not announced, as in Knative, which halves the writes of a burst),
and ``CreationFailed`` / ``UpdateFailed`` warnings always.

Side effects: API writes through the ``KubeClient``; events.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from kube.cache import Store
from kube.client import KubeClient
from kube.errors import AlreadyExists, ApiError, Conflict
from kube.events import NORMAL, WARNING, EventSink
from kube.objects import JSON, deep_copy, is_controlled_by
from kube.resources import Resource
from serving.reconciler.kmeta import desired_hash_of


@dataclasses.dataclass(frozen=True)
class ChildResult:
    """The child as the server has it now, or ``not_owned`` when someone else controls it."""

    object: JSON | None
    not_owned: bool = False
    created: bool = False
    updated: bool = False


def _metadata_parts(obj: JSON, ignore: tuple[str, ...]) -> tuple[Any, Any]:
    metadata = obj.get("metadata") or {}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k not in ignore}
    return metadata.get("labels") or {}, annotations


def needs_update(
    existing: JSON, desired: JSON, *, compare: Literal["fields", "hash"], parts: tuple[str, ...],
    keep_annotations: tuple[str, ...] = (),
) -> bool:
    if compare == "hash":
        return desired_hash_of(existing) != desired_hash_of(desired)
    if _metadata_parts(existing, keep_annotations) != _metadata_parts(desired, keep_annotations):
        return True
    return any(existing.get(part) != desired.get(part) for part in parts)


async def ensure_together(*calls: Awaitable[ChildResult]) -> list[ChildResult]:
    """Run independent ``ensure_child`` calls concurrently; wait for all, then raise the first error."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if isinstance(result, ChildResult)]


async def ensure_child(
    client: KubeClient,
    resource: Resource,
    store: Store,
    desired: JSON,
    *,
    owner: JSON,
    owner_uid: str,
    events: EventSink,
    compare: Literal["fields", "hash"] = "fields",
    parts: tuple[str, ...] = ("spec",),
    preserve: Callable[[JSON, JSON], None] | None = None,
    keep_annotations: tuple[str, ...] = (),
    announce: bool = True,
) -> ChildResult:
    """Make the child look like ``desired`` (see the module docstring)."""
    metadata = desired["metadata"]
    namespace, name = metadata.get("namespace"), metadata["name"]
    kind = resource.kind
    existing = store.get(namespace, name)
    if existing is None:
        try:
            created = await client.create(resource, desired)
        except AlreadyExists:
            existing = await client.get(resource, namespace, name)  # the cache is behind
        except ApiError as error:
            events.event(owner, WARNING, "CreationFailed", f'Failed to create {kind} "{name}": {error}')
            raise
        else:
            store.remember_write(created)
            if announce:
                events.event(owner, NORMAL, "Created", f'Created {kind} "{name}"')
            return ChildResult(created, created=True)
    if not is_controlled_by(existing, owner_uid):
        return ChildResult(existing, not_owned=True)
    if not needs_update(existing, desired, compare=compare, parts=parts, keep_annotations=keep_annotations):
        return ChildResult(existing)
    body = deep_copy(existing)
    body_metadata = body.setdefault("metadata", {})
    kept = {k: v for k, v in (body_metadata.get("annotations") or {}).items() if k in keep_annotations}
    body_metadata["labels"] = metadata.get("labels") or {}
    body_metadata["annotations"] = {**(metadata.get("annotations") or {}), **kept}
    if metadata.get("ownerReferences"):
        body_metadata["ownerReferences"] = metadata["ownerReferences"]
    for part in parts:
        if part in desired:
            body[part] = deep_copy(desired[part])
        else:
            body.pop(part, None)
    if preserve is not None:
        preserve(existing, body)
    try:
        updated = await client.update(resource, body)
    except Conflict:
        raise  # the informer brings the newer version; the key is retried
    except ApiError as error:
        events.event(owner, WARNING, "UpdateFailed", f'Failed to update {kind} "{name}": {error}')
        raise
    store.remember_write(updated)
    return ChildResult(updated, updated=True)
