"""The informer's local copy of a resource: a keyed store with secondary indexes.

``Store`` holds the latest JSON of every object an informer has seen, keyed by
``namespace/name``, plus named indexes (by namespace always; callers add e.g. "by owner
uid" or "by label value"). Readers must treat returned objects as read-only and deep-copy
before changing them (the reconcile loop does). No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kube.labels import Selector, parse_selector
from kube.objects import JSON, key_of, namespace_of

IndexFunc = Callable[[JSON], Iterable[str]]


def by_namespace(obj: JSON) -> list[str]:
    return [namespace_of(obj)]


def by_controller_uid(obj: JSON) -> list[str]:
    """Index objects by the uid of their controlling owner."""
    for reference in obj.get("metadata", {}).get("ownerReferences") or []:
        if reference.get("controller"):
            return [str(reference.get("uid"))]
    return []


def by_annotation_list(annotation: str) -> IndexFunc:
    """Index objects by ``namespace/<item>`` for each item of a comma-separated annotation."""

    def index(obj: JSON) -> list[str]:
        raw = (obj.get("metadata", {}).get("annotations") or {}).get(annotation) or ""
        return [f"{namespace_of(obj)}/{item}" for item in raw.split(",") if item]

    return index


def by_label(label: str) -> IndexFunc:
    """Index objects by ``namespace/<value of label>``."""

    def index(obj: JSON) -> list[str]:
        value = (obj.get("metadata", {}).get("labels") or {}).get(label)
        return [f"{namespace_of(obj)}/{value}"] if value is not None else []

    return index


class Store:
    """A dict of objects by key, with indexes kept current on every change."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, JSON] = {}
        self._indexers: dict[str, IndexFunc] = {"namespace": by_namespace, **(indexers or {})}
        self._indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        self._unannounced: set[str] = set()  # keys known from our own writes, not yet from the informer
        self._created_listeners: list[Callable[[JSON], None]] = []
        # For objects this process updated: the version the informer's handlers last heard of.
        self._announced: dict[str, JSON] = {}

    def ensure_indexer(self, name: str, index: IndexFunc) -> None:
        """Add the index unless one of that name exists (wirings share stores)."""
        if name not in self._indexers:
            self.add_indexer(name, index)

    def add_indexer(self, name: str, index: IndexFunc) -> None:
        self._indexers[name] = index
        self._indexes[name] = {}
        for key, obj in self._items.items():
            for value in index(obj):
                self._indexes[name].setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: JSON) -> None:
        for name, index in self._indexers.items():
            for value in index(obj):
                keys = self._indexes[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indexes[name][value]

    def _index(self, key: str, obj: JSON) -> None:
        for name, index in self._indexers.items():
            for value in index(obj):
                self._indexes[name].setdefault(value, set()).add(key)

    def upsert(self, obj: JSON) -> JSON | None:
        """Store ``obj``; return the object it replaced, if any."""
        key = key_of(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        self._index(key, obj)
        return old

    def on_created_here(self, listener: Callable[[JSON], None]) -> None:
        """Call ``listener`` with each new object this process writes (``remember_write``), at once."""
        self._created_listeners.append(listener)

    def remember_write(self, obj: JSON) -> None:
        """Record an object this process just wrote, unless the cache already holds a newer one
        (the watch may have delivered later changes while the write was in flight)."""
        old = self._items.get(key_of(obj))
        if old is not None:
            try:
                if int(old["metadata"]["resourceVersion"]) >= int(obj["metadata"]["resourceVersion"]):
                    return
            except (KeyError, TypeError, ValueError):
                return
        self.upsert(obj)
        key = key_of(obj)
        if old is None:  # a new object: its informer's handlers have not heard of it yet
            if self._created_listeners:
                for listener in self._created_listeners:
                    listener(obj)  # they hear of it now, not once the watch brings it back
            else:
                self._unannounced.add(key)
        elif key not in self._unannounced:
            # The handlers know ``old``; when the watch brings this version they must hear of the
            # change from ``old`` (else a spec written here, e.g. a Service's Configuration,
            # would look unchanged and never be reconciled).
            self._announced.setdefault(key, old)

    def take_unannounced(self, key: str) -> bool:
        """True (once) if ``key`` is in the cache only because this process wrote it."""
        if key in self._unannounced:
            self._unannounced.discard(key)
            return True
        return False

    def take_announced(self, key: str) -> JSON | None:
        """(Once) the version the handlers last heard of, if this process updated ``key`` since."""
        return self._announced.pop(key, None)

    def remove(self, obj: JSON) -> JSON | None:
        key = key_of(obj)
        self._announced.pop(key, None)
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def replace(self, objects: Iterable[JSON]) -> None:
        self._unannounced.clear()
        self._announced.clear()
        self._items = {}
        self._indexes = {name: {} for name in self._indexers}
        for obj in objects:
            self.upsert(obj)

    def get_by_key(self, key: str) -> JSON | None:
        return self._items.get(key)

    def get(self, namespace: str | None, name: str) -> JSON | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def keys(self) -> list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def by_index(self, index_name: str, value: str) -> list[JSON]:
        return [self._items[key] for key in sorted(self._indexes[index_name].get(value, ()))]

    def list(self, namespace: str | None = None, selector: Selector | str | None = None) -> list[JSON]:
        """Objects in ``namespace`` (all when None) whose labels match ``selector``."""
        if isinstance(selector, str):
            selector = parse_selector(selector)
        if namespace:
            candidates = self.by_index("namespace", namespace)
        else:
            candidates = [self._items[key] for key in sorted(self._items)]
        if selector is None:
            return candidates
        return [obj for obj in candidates if selector.matches(obj.get("metadata", {}).get("labels"))]
