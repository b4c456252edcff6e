"""Who depends on what: informer handlers that turn a change into keys to reconcile.

``Tracker`` remembers, per reconciled object, the objects it read last time (a Route reads
its Configurations, Revisions and their endpoints); a change to any of those enqueues it.
The ``enqueue_*`` helpers build informer handlers for the common cases: the object itself,
its controlling owner of a given kind, or the object named by one of its labels.

No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kube.informer import Change, Handler
from kube.objects import key_of, namespace_of

Reference = tuple[str, str, str]  # (kind, namespace, name)


class Tracker:
    def __init__(self, enqueue: Callable[[str], None]) -> None:
        self._enqueue = enqueue
        self._watchers: dict[Reference, set[str]] = {}
        self._watched: dict[str, set[Reference]] = {}

    def track(self, watcher_key: str, references: Iterable[Reference]) -> None:
        """Replace what ``watcher_key`` depends on."""
        new = set(references)
        for old in self._watched.get(watcher_key, set()) - new:
            keys = self._watchers.get(old)
            if keys is not None:
                keys.discard(watcher_key)
                if not keys:
                    del self._watchers[old]
        for reference in new:
            self._watchers.setdefault(reference, set()).add(watcher_key)
        self._watched[watcher_key] = new

    def forget(self, watcher_key: str) -> None:
        self.track(watcher_key, ())

    def changed(self, reference: Reference) -> None:
        for key in sorted(self._watchers.get(reference, ())):
            self._enqueue(key)

    def handler(self, kind: str, name_of: Callable[[Change], str | None] | None = None) -> Handler:
        """An informer handler: a change to a ``kind`` object enqueues whoever tracks it."""

        def handle(change: Change) -> None:
            name = name_of(change) if name_of else change.object.get("metadata", {}).get("name")
            if name:
                self.changed((kind, namespace_of(change.object), name))

        return handle


_VOLATILE_METADATA = ("resourceVersion", "managedFields")


def status_only(change: Change) -> bool:
    """An update that changed nothing but the status (and bookkeeping metadata)."""
    old, new = change.old, change.object
    if change.kind != "update" or old is None:
        return False
    if any(old.get(k) != new.get(k) for k in set(old) | set(new) if k not in ("metadata", "status")):
        return False
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return all(old_meta.get(k) == new_meta.get(k) for k in set(old_meta) | set(new_meta)
               if k not in _VOLATILE_METADATA)


def enqueue_self(enqueue: Callable[[str], None], *, skip_status_only: bool = True) -> Handler:
    """Enqueue the changed object. Status-only updates are skipped by default: for the kinds the
    controller reconciles, it is the only status writer, so such an update is its own write."""

    def handle(change: Change) -> None:
        if skip_status_only and status_only(change):
            return
        enqueue(key_of(change.object))

    return handle


def enqueue_controller(enqueue: Callable[[str], None], kind: str) -> Handler:
    """Enqueue the controlling owner (of ``kind``) of the changed object."""

    def handle(change: Change) -> None:
        for reference in change.object.get("metadata", {}).get("ownerReferences") or []:
            if reference.get("controller") and reference.get("kind") == kind:
                enqueue(f"{namespace_of(change.object)}/{reference.get('name')}")

    return handle


def enqueue_label(enqueue: Callable[[str], None], label: str) -> Handler:
    """Enqueue ``namespace/<value of label>`` of the changed object."""

    def handle(change: Change) -> None:
        value = (change.object.get("metadata", {}).get("labels") or {}).get(label)
        if value:
            enqueue(f"{namespace_of(change.object)}/{value}")

    return handle
