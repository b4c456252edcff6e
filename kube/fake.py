"""An in-memory API server for tests: ``FakeKubeClient`` implements ``KubeClient``.

It keeps objects per resource, assigns uids, resourceVersions and generations the way the
real server does (spec changes bump ``generation``; ``/status`` writes touch only status;
a stale resourceVersion on update is a ``Conflict``, so is a uid precondition that does not
hold), serves list and watch with label and field selectors (each event is matched against
the object as it is then; with a compactable event log so a test can force ``410 Gone``),
answers the subresources a kubelet posts to (``pods/binding`` sets ``spec.nodeName``;
``serviceaccounts/token`` issues a made-up token), records every write as an ``Action``
and lets a test induce failures per verb and resource. Deletes take effect at once whatever
the grace period; a strategic merge patch is applied as a JSON merge patch (lists are
replaced whole, not merged by key). No I/O.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import itertools
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from kube.client import APPLY_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, ListResult, WatchEvent
from kube.errors import AlreadyExists, ApiError, Conflict, Gone, Invalid, NotFound
from kube.fields import parse_field_selector
from kube.labels import parse_selector
from kube.objects import JSON, copy_json, deep_copy
from kube.resources import PODS, SERVICE_ACCOUNTS, Resource


@dataclasses.dataclass(frozen=True, slots=True)
class Action:
    """One write the code under test made: verb is create, update, update_status, patch, delete or
    create_subresource (then ``subresource`` says which: ``binding``, ``token``)."""

    verb: str
    resource: Resource
    namespace: str
    name: str
    object: JSON | None = None
    subresource: str | None = None

    def __str__(self) -> str:
        suffix = f"/{self.subresource}" if self.subresource else ""
        return f"{self.verb} {self.resource.plural} {self.namespace}/{self.name}{suffix}"


@dataclasses.dataclass(slots=True)
class _Failure:
    verb: str
    resource: Resource | None
    error: Exception
    times: int


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _now(later_seconds: float = 0.0) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=later_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_of(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class FakeKubeClient:
    """``KubeClient`` in memory. Seed with ``objects``; inspect ``actions``; ``fail_on`` to inject errors."""

    def __init__(self, objects: Iterable[tuple[Resource, JSON]] = ()) -> None:
        self._objects: dict[Resource, dict[tuple[str, str], JSON]] = {}
        self._versions = itertools.count(1)
        self._log: list[tuple[int, Resource, WatchEvent]] = []
        self._compacted_below = 0
        self._waiters: list[asyncio.Event] = []
        self._failures: list[_Failure] = []
        self.actions: list[Action] = []
        for resource, obj in objects:
            self.seed(resource, obj)

    # --- test helpers ------------------------------------------------------------------
    def seed(self, resource: Resource, obj: JSON) -> JSON:
        """Put an object in place as if it had always been there (status included, no action)."""
        stored = copy_json(obj)
        stored.setdefault("apiVersion", resource.api_version)
        stored.setdefault("kind", resource.kind)
        metadata = stored.setdefault("metadata", {})
        metadata.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_OID, f"{resource}/{metadata.get('namespace')}/{metadata['name']}")))
        metadata.setdefault("creationTimestamp", _now())
        if resource.has_generation:
            metadata.setdefault("generation", 1)
        metadata["resourceVersion"] = str(next(self._versions))
        self._store(resource)[(metadata.get("namespace") or "", metadata["name"])] = stored
        self._record_event(resource, "ADDED", stored)
        return deep_copy(stored)

    def fail_on(self, verb: str, resource: Resource | None, error: Exception, *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``verb`` (get, list, watch, create, update, update_status,
        patch, delete, create_subresource) on ``resource`` (None: any) raise ``error``."""
        self._failures.append(_Failure(verb, resource, error, times))

    def compact(self) -> None:
        """Forget the watch history: watches from an older resourceVersion now get ``Gone``."""
        self._compacted_below = next(self._versions)
        self._log.clear()

    def objects(self, resource: Resource, namespace: str | None = None) -> list[JSON]:
        return [copy_json(obj) for (ns, _), obj in sorted(self._store(resource).items())
                if namespace is None or ns == namespace]

    def peek(self, resource: Resource, namespace: str | None, name: str) -> JSON | None:
        obj = self._store(resource).get((namespace or "", name))
        return deep_copy(obj) if obj is not None else None

    def writes(self, verb: str | None = None, resource: Resource | None = None) -> list[Action]:
        return [a for a in self.actions
                if (verb is None or a.verb == verb) and (resource is None or a.resource == resource)]

    async def changed(self, timeout: float = 5.0) -> bool:
        """Wait for the next write (or ``timeout``); True if one happened."""
        return await self._wait_for_change(timeout)

    # --- internals -------------------------------------------------------------------------
    def _store(self, resource: Resource) -> dict[tuple[str, str], JSON]:
        return self._objects.setdefault(resource, {})

    def _maybe_fail(self, verb: str, resource: Resource) -> None:
        for failure in self._failures:
            if failure.verb == verb and failure.resource in (None, resource) and failure.times > 0:
                failure.times -= 1
                raise failure.error

    def _record_event(self, resource: Resource, event_type: str, obj: JSON) -> None:
        version = int(obj["metadata"]["resourceVersion"])
        self._log.append((version, resource, WatchEvent(event_type, copy_json(obj))))
        self._notify()

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set()

    async def _wait_for_change(self, timeout: float) -> bool:
        waiter = asyncio.Event()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter.wait()
            return True
        except TimeoutError:
            return False
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _lookup(self, resource: Resource, namespace: str | None, name: str) -> JSON:
        obj = self._store(resource).get((namespace or "", name))
        if obj is None:
            raise NotFound(404, "NotFound", f'{resource.group_resource} "{name}" not found')
        return obj

    # --- KubeClient ------------------------------------------------------------------------
    async def get(self, resource: Resource, namespace: str | None, name: str) -> JSON:
        self._maybe_fail("get", resource)
        return deep_copy(self._lookup(resource, namespace, name))

    async def list(
        self, resource: Resource, *, namespace: str | None = None, label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ListResult:
        self._maybe_fail("list", resource)
        selector = parse_selector(label_selector)
        fields = parse_field_selector(field_selector)
        items = [copy_json(obj) for (ns, _), obj in sorted(self._store(resource).items())
                 if (not namespace or ns == namespace) and selector.matches(obj["metadata"].get("labels"))
                 and fields.matches(obj)]
        return ListResult(items, str(next(self._versions)))

    async def watch(
        self, resource: Resource, *, namespace: str | None = None, resource_version: str,
        label_selector: str | None = None, field_selector: str | None = None, timeout_seconds: int = 300,
    ) -> AsyncIterator[WatchEvent]:
        self._maybe_fail("watch", resource)
        since = int(resource_version or 0)
        if since < self._compacted_below - 1:
            raise Gone(410, "Expired", f"too old resource version: {since} ({self._compacted_below})")
        selector = parse_selector(label_selector)
        fields = parse_field_selector(field_selector)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while True:
            for version, event_resource, event in list(self._log):
                if version <= since or event_resource != resource:
                    continue
                since = version
                metadata = event.object["metadata"]
                if namespace and metadata.get("namespace") != namespace:
                    continue
                if not selector.matches(metadata.get("labels")) or not fields.matches(event.object):
                    continue
                yield WatchEvent(event.type, copy_json(event.object))
            if self._compacted_below - 1 > since:
                raise Gone(410, "Expired", "too old resource version")
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            if not await self._wait_for_change(remaining):
                return

    async def create(self, resource: Resource, obj: JSON, *, dry_run: bool = False) -> JSON:
        self._maybe_fail("create", resource)
        stored = copy_json(obj)
        metadata = stored.setdefault("metadata", {})
        if not metadata.get("name"):
            prefix = metadata.get("generateName")
            if not prefix:
                raise Invalid(422, "Invalid", "metadata.name: Required value: name or generateName is required")
            metadata["name"] = prefix + uuid.uuid4().hex[:5]
        key = (metadata.get("namespace") or "", metadata["name"])
        if key in self._store(resource):
            raise AlreadyExists(409, "AlreadyExists", f'{resource.group_resource} "{metadata["name"]}" already exists')
        stored["apiVersion"] = resource.api_version
        stored["kind"] = resource.kind
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = _now()
        metadata["resourceVersion"] = str(next(self._versions))
        if resource.has_generation:
            metadata["generation"] = 1
        if resource.has_status and resource.group:  # the real server drops status on create
            stored.pop("status", None)
        if dry_run:
            return deep_copy(stored)
        self._store(resource)[key] = stored
        self.actions.append(Action("create", resource, key[0], key[1], copy_json(stored)))
        self._record_event(resource, "ADDED", stored)
        return deep_copy(stored)

    def _check_version(self, resource: Resource, current: JSON, incoming: JSON) -> None:
        wanted = (incoming.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict",
                           f'Operation cannot be fulfilled on {resource.group_resource} "{current["metadata"]["name"]}": '
                           "the object has been modified; please apply your changes to the latest version and try again")

    def _replace(self, resource: Resource, current: JSON, new: JSON, *, status_only: bool) -> JSON:
        metadata = current["metadata"]
        if status_only:
            stored = copy_json(current)
            if "status" in new:
                stored["status"] = copy_json(new["status"])
        else:
            stored = copy_json(new)
            if resource.has_status:
                if "status" in current:
                    stored["status"] = copy_json(current["status"])
                else:
                    stored.pop("status", None)
            new_metadata = stored.setdefault("metadata", {})
            for field in ("uid", "creationTimestamp", "namespace", "name", "generation"):
                if field in metadata:
                    new_metadata[field] = metadata[field]
            if resource.has_generation and _spec_of(stored) != _spec_of(current):
                new_metadata["generation"] = int(metadata.get("generation") or 0) + 1
        stored["apiVersion"] = resource.api_version
        stored["kind"] = resource.kind
        stored["metadata"]["resourceVersion"] = metadata["resourceVersion"]
        if stored == current:
            return deep_copy(current)  # a no-op write does not bump resourceVersion
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        self._store(resource)[(metadata.get("namespace") or "", metadata["name"])] = stored
        self._record_event(resource, "MODIFIED", stored)
        return deep_copy(stored)

    async def update(self, resource: Resource, obj: JSON) -> JSON:
        self._maybe_fail("update", resource)
        metadata = obj.get("metadata") or {}
        current = self._lookup(resource, metadata.get("namespace"), metadata.get("name", ""))
        self._check_version(resource, current, obj)
        self.actions.append(Action("update", resource, metadata.get("namespace") or "", metadata["name"],
                                   copy_json(obj)))
        return self._replace(resource, current, obj, status_only=False)

    async def update_status(self, resource: Resource, obj: JSON) -> JSON:
        self._maybe_fail("update_status", resource)
        metadata = obj.get("metadata") or {}
        current = self._lookup(resource, metadata.get("namespace"), metadata.get("name", ""))
        self._check_version(resource, current, obj)
        self.actions.append(Action("update_status", resource, metadata.get("namespace") or "", metadata["name"],
                                   copy_json(obj)))
        return self._replace(resource, current, obj, status_only=True)

    async def patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Any, *,
        content_type: str = MERGE_PATCH, subresource: str | None = None, field_manager: str | None = None,
    ) -> JSON:
        self._maybe_fail("patch", resource)
        if content_type not in (MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH):
            raise ApiError(415, "UnsupportedMediaType", f"the fake client does not support {content_type}")
        current = self._lookup(resource, namespace, name)
        wanted_uid = ((patch.get("metadata") or {}).get("uid") if isinstance(patch, dict) else None)
        if wanted_uid:
            self._check_uid(current, str(wanted_uid))
        self.actions.append(Action("patch", resource, namespace or "", name, copy_json(patch)))
        merged = merge_patch(current, patch)
        if subresource == "scale":
            replicas = (patch.get("spec") or {}).get("replicas")
            merged = copy_json(current)
            merged.setdefault("spec", {})["replicas"] = replicas
            return self._replace(resource, current, merged, status_only=False)
        return self._replace(resource, current, merged, status_only=subresource == "status")

    def _check_uid(self, current: JSON, uid: str) -> None:
        if current["metadata"].get("uid") != uid:
            raise Conflict(409, "Conflict", f"Precondition failed: UID in precondition: {uid}, "
                           f"UID in object meta: {current['metadata'].get('uid')}")

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, *, propagation_policy: str | None = None,
        uid: str | None = None, grace_period_seconds: int | None = None,
    ) -> None:
        self._maybe_fail("delete", resource)
        current = self._lookup(resource, namespace, name)
        if uid:
            self._check_uid(current, uid)
        del self._store(resource)[(namespace or "", name)]
        self.actions.append(Action("delete", resource, namespace or "", name))
        gone = copy_json(current)
        gone["metadata"]["resourceVersion"] = str(next(self._versions))
        self._record_event(resource, "DELETED", gone)

    async def create_subresource(
        self, resource: Resource, namespace: str | None, name: str, subresource: str, body: JSON
    ) -> JSON:
        self._maybe_fail("create_subresource", resource)
        current = self._lookup(resource, namespace, name)
        if resource == PODS and subresource == "binding":
            return self._bind(current, body)
        if resource == SERVICE_ACCOUNTS and subresource == "token":
            return self._issue_token(current, body)
        raise NotFound(404, "NotFound", f"the fake client does not serve {resource.plural}/{subresource}")

    def _bind(self, pod: JSON, binding: JSON) -> JSON:
        """What the server does for ``pods/binding``: set ``spec.nodeName`` once; a Status back."""
        metadata = pod["metadata"]
        wanted_uid = (binding.get("metadata") or {}).get("uid")
        if wanted_uid:
            self._check_uid(pod, str(wanted_uid))
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            raise Conflict(409, "Conflict", f'pod {metadata["name"]} is already assigned to node "{node}"')
        self.actions.append(Action("create_subresource", PODS, metadata.get("namespace") or "", metadata["name"],
                                   copy_json(binding), subresource="binding"))
        bound = copy_json(pod)
        bound.setdefault("spec", {})["nodeName"] = str((binding.get("target") or {}).get("name") or "")
        self._replace(PODS, pod, bound, status_only=False)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _issue_token(self, account: JSON, request: JSON) -> JSON:
        """What the server does for ``serviceaccounts/token``: a token, bound to a pod if asked."""
        metadata = account["metadata"]
        spec = request.get("spec") or {}
        bound = spec.get("boundObjectRef") or {}
        if bound.get("kind") == "Pod":
            pod = self._lookup(PODS, metadata.get("namespace"), str(bound.get("name") or ""))
            if bound.get("uid"):
                self._check_uid(pod, str(bound["uid"]))
        self.actions.append(Action("create_subresource", SERVICE_ACCOUNTS, metadata.get("namespace") or "",
                                   metadata["name"], copy_json(request), subresource="token"))
        seconds = int(spec.get("expirationSeconds") or 3600)
        answer: JSON = copy_json(request)
        answer["status"] = {
            "token": f"fake-token:{metadata.get('namespace')}:{metadata['name']}:{uuid.uuid4().hex[:8]}",
            "expirationTimestamp": _now(seconds),
        }
        return answer
