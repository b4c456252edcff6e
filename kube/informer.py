"""Informers: keep a ``Store`` current with list + watch and tell handlers what changed.

``Informer.run`` lists, replaces the store (firing add/update/delete for the difference),
then watches from the list's resourceVersion. A watch that ends normally (the server's
``timeoutSeconds``) is resumed from the last seen version; ``410 Gone`` or any other
error causes a fresh list after a short back-off, so the cache always converges. Bookmark
events only advance the version. An object this process creates reaches the handlers as
soon as the create returns (``Store.remember_write``), not a watch round trip later: a
reconciler that creates a child gets the child's reconciler going at once. Handlers are
plain callables run inline; they must be quick (usually: enqueue a key).

Side effects: API reads through the injected ``KubeClient``; logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from kube.cache import IndexFunc, Store
from kube.client import KubeClient
from kube.errors import ApiError, Gone
from kube.objects import JSON, key_of
from kube.resources import Resource

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """What an informer saw: ``kind`` is "add", "update" or "delete"; ``old`` is set on update."""

    kind: str
    object: JSON
    old: JSON | None = None


Handler = Callable[[Change], None]


def _version(obj: JSON) -> str | None:
    version = obj.get("metadata", {}).get("resourceVersion")
    return str(version) if version is not None else None


class Informer:
    """A list+watch loop over one resource (optionally one namespace, a label selector and a
    field selector)."""

    def __init__(
        self, client: KubeClient, resource: Resource, *, namespace: str | None = None,
        label_selector: str | None = None, field_selector: str | None = None,
        indexers: dict[str, IndexFunc] | None = None, watch_timeout_seconds: int = 290,
        retry_delay: float = 1.0,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.store = Store(indexers)
        self.store.on_created_here(lambda obj: self._fire(Change("add", obj)))
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self._watch_timeout_seconds = watch_timeout_seconds
        self._retry_delay = retry_delay
        self.lists = 0  # how many times it (re-)listed; tests look at it

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def _fire(self, change: Change) -> None:
        for handler in self._handlers:
            try:
                handler(change)
            except Exception:  # a broken handler must not stop the informer
                log.exception("informer %s: handler failed on %s of %s", self.resource, change.kind,
                              key_of(change.object))

    async def _list(self) -> str:
        result = await self.client.list(
            self.resource, namespace=self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        self.lists += 1
        previous = {key: self.store.take_announced(key) or self.store.get_by_key(key) for key in self.store.keys()}
        unannounced = {key for key in previous if self.store.take_unannounced(key)}
        self.store.replace(result.items)
        for obj in result.items:
            key = key_of(obj)
            old = previous.pop(key, None)
            if old is None or key in unannounced:
                self._fire(Change("add", obj))
            elif old.get("metadata", {}).get("resourceVersion") != obj.get("metadata", {}).get("resourceVersion"):
                self._fire(Change("update", obj, old))
        for old in previous.values():
            if old is not None:
                self._fire(Change("delete", old))
        self._synced.set()
        return result.resource_version

    def _apply(self, event_type: str, obj: JSON) -> None:
        if event_type == "ADDED" or event_type == "MODIFIED":
            key = key_of(obj)
            announced_before = not self.store.take_unannounced(key)
            last_announced = self.store.take_announced(key)
            old = self.store.upsert(obj)
            if old is None or not announced_before:
                self._fire(Change("add", obj))
            elif last_announced is None and _version(old) == _version(obj):
                pass  # created by this process and announced then: the watch brings nothing new
            else:
                self._fire(Change("update", obj, last_announced or old))
        elif event_type == "DELETED":
            self.store.remove(obj)
            self._fire(Change("delete", obj))

    async def run(self) -> None:
        """List and watch forever; cancel the task to stop."""
        resource_version: str | None = None
        while True:
            try:
                if resource_version is None:
                    resource_version = await self._list()
                async for event in self.client.watch(
                    self.resource, namespace=self.namespace, resource_version=resource_version,
                    label_selector=self.label_selector, field_selector=self.field_selector,
                    timeout_seconds=self._watch_timeout_seconds,
                ):
                    version = event.object.get("metadata", {}).get("resourceVersion")
                    if event.type != "BOOKMARK":
                        self._apply(event.type, event.object)
                    if version:
                        resource_version = str(version)
                await asyncio.sleep(0)  # a watch the server ended at once must not starve the loop
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("informer %s: watch expired (410 Gone); listing again", self.resource)
                resource_version = None
            except (ApiError, OSError, ValueError, asyncio.TimeoutError) as error:
                log.warning("informer %s: %s; listing again in %.1fs", self.resource, error, self._retry_delay)
                resource_version = None
                await asyncio.sleep(self._retry_delay)
            except Exception as error:  # aiohttp errors and the like: same recovery
                log.warning("informer %s: %r; listing again in %.1fs", self.resource, error, self._retry_delay)
                resource_version = None
                await asyncio.sleep(self._retry_delay)


class InformerFactory:
    """One shared informer per (resource, namespace, label selector, field selector); runs them all."""

    def __init__(self, client: KubeClient, *, namespace: str | None = None, watch_timeout_seconds: int = 290) -> None:
        self.client = client
        self.namespace = namespace
        self._informers: dict[tuple[Resource, str | None, str | None, str | None], Informer] = {}
        self._watch_timeout_seconds = watch_timeout_seconds

    def informer(
        self, resource: Resource, *, namespace: str | None = "", label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Informer:
        """``namespace=""`` means the factory's scope (all namespaces when it has none)."""
        scope = self.namespace if namespace == "" else namespace
        key = (resource, scope, label_selector, field_selector)
        if key not in self._informers:
            self._informers[key] = Informer(
                self.client, resource, namespace=scope, label_selector=label_selector,
                field_selector=field_selector, watch_timeout_seconds=self._watch_timeout_seconds,
            )
        return self._informers[key]

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for (resource, namespace, labels, fields), informer in self._informers.items():
                selectors = ":".join(selector for selector in (labels, fields) if selector)
                group.create_task(informer.run(), name=f"informer:{resource}:{namespace or '*'}:{selectors}")

    async def wait_synced(self) -> None:
        for informer in list(self._informers.values()):
            await informer.wait_synced()
