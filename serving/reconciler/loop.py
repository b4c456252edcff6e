"""The one generic reconcile loop: what every kind's reconciler gets for free.

``ReconcileLoop.reconcile(key)`` reads the object from the informer cache (a missing or
deleting object ends the pass: owner references let Kubernetes' garbage collector remove
what it made), parses a deep copy into the kind's pydantic model, applies the kind's
defaults in memory, initializes its conditions, runs the kind's phases, sets
``status.observedGeneration``, stamps condition transition times from the injected clock,
and writes the status once through ``/status`` if it changed — re-reading and retrying on a
409 conflict. The kind reconciler only decides; it never writes its own status.

``Controller`` runs N workers over a ``WorkQueue`` with rate-limited retries: an error
re-queues the key with per-key back-off; a returned delay re-queues it later (rollout
steps, retention timers).

Side effects: API writes through the ``KubeClient``; logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from knserve.clock import Clock
from kube.cache import Store
from kube.client import KubeClient
from kube.errors import ApiError, Conflict, NotFound
from kube.events import EventSink
from kube.objects import JSON, split_key
from kube.resources import Resource
from kube.workqueue import ShutDown, WorkQueue
from serving.apis.conditions import stamp_transition_times
from serving.apis.meta import ApiObject
from serving.config.snapshot import ConfigSnapshot

log = logging.getLogger(__name__)

T = TypeVar("T", bound=ApiObject)

STATUS_WRITE_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True)
class ReconcileContext:
    """What one reconcile pass may read besides its object: config, time, an event sink."""

    config: ConfigSnapshot
    now: datetime.datetime
    events: EventSink


class KindReconciler(Protocol[T]):  # type: ignore[misc]
    """A kind's phases. ``reconcile`` mutates ``obj.status`` and may return a delay in seconds
    after which the object should be looked at again (None: only on change)."""

    async def reconcile(self, obj: T, context: ReconcileContext) -> float | None: ...


class ReconcileLoop(Generic[T]):
    def __init__(
        self,
        *,
        client: KubeClient,
        resource: Resource,
        model: type[T],
        store: Store,
        reconciler: KindReconciler[T],
        config: Callable[[], ConfigSnapshot],
        clock: Clock,
        events: EventSink,
        defaults: Callable[[T, ConfigSnapshot], T] | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.model = model
        self.store = store
        self.reconciler = reconciler
        self.config = config
        self.clock = clock
        self.events = events
        self.defaults = defaults

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        original = self.store.get(namespace, name)
        if original is None:
            return None  # deleted: owner references cascade, nothing to finalize
        if original.get("metadata", {}).get("deletionTimestamp"):
            return None
        config = self.config()
        obj = self.model.model_validate(original)  # validation builds new objects; the cache stays as it was
        if self.defaults is not None:
            obj = self.defaults(obj, config)
        status: Any = obj.status  # type: ignore[attr-defined]
        now = self.clock.now().replace(microsecond=0)  # the API server keeps whole seconds
        status.initialize_conditions()
        context = ReconcileContext(config=config, now=now, events=self.events)
        error: BaseException | None = None
        delay: float | None = None
        try:
            delay = await self.reconciler.reconcile(obj, context)
        except asyncio.CancelledError:
            raise
        except Exception as caught:  # the status still records what was learned before the error
            error = caught
        status.observed_generation = obj.metadata.generation
        keep_unchanged_transition_times(status, original.get("status") or {})
        stamp_transition_times(status, now)
        await self.write_status(original, status.to_dict())
        if error is not None:
            raise error
        return delay

    async def write_status(self, original: JSON, new_status: JSON) -> None:
        """PUT ``new_status`` through /status unless it is already what the server has."""
        current = original
        for _ in range(STATUS_WRITE_ATTEMPTS):
            if (current.get("status") or {}) == new_status:
                return
            body = {**current, "status": new_status}
            try:
                written = await self.client.update_status(self.resource, body)
            except Conflict:
                try:
                    current = await self.client.get(self.resource, current["metadata"].get("namespace"),
                                                    current["metadata"]["name"])
                except NotFound:
                    return
                if current["metadata"].get("uid") != original["metadata"].get("uid"):
                    return  # deleted and re-created meanwhile: the next pass handles the new one
                continue
            except NotFound:
                return
            # keep the cache ahead of the watch, so the next pass does not see a stale status
            self.store.remember_write(written)
            return
        raise Conflict(409, "Conflict", f"status of {self.resource} {original['metadata']['name']} kept conflicting")


def keep_unchanged_transition_times(status: Any, original_status: JSON) -> None:
    """A condition that ends the pass as it started (a phase may flip it and the next flip it back)
    keeps its original ``lastTransitionTime``, so an unchanged status is not rewritten."""
    before = {c.get("type"): c for c in original_status.get("conditions") or []}
    for condition in status.conditions or []:
        old = before.get(condition.type)
        if old is None:
            continue
        if (old.get("status"), old.get("reason") or "", old.get("message") or "", old.get("severity") or "") == (
                condition.status, condition.reason or "", condition.message or "", condition.severity or ""):
            condition.last_transition_time = old.get("lastTransitionTime")


class Reconcile(Protocol):
    async def reconcile(self, key: str) -> float | None: ...


class Controller:
    """Workers that take keys from ``queue`` and run ``loop.reconcile`` on them."""

    def __init__(
        self, name: str, loop: Reconcile, *, workers: int = 4, queue: WorkQueue | None = None,
        primary: Store | None = None,
    ) -> None:
        self.name = name
        self.loop = loop
        self.queue = queue or WorkQueue()
        self.workers = workers
        self.primary = primary

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def resync(self) -> None:
        """Enqueue every object of the primary kind (after a configuration change)."""
        if self.primary is not None:
            for key in self.primary.keys():
                self.queue.add(key)

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                delay = await self.loop.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures = self.queue.failures(key)
                expected = isinstance(error, ApiError)  # the server said no: retried, no traceback
                level = logging.INFO if isinstance(error, Conflict) or failures < 3 else logging.WARNING
                log.log(level, "%s: reconcile %s failed (attempt %d): %s", self.name, key, failures + 1, error,
                        exc_info=not expected)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if delay is not None:
                    self.queue.add_after(key, delay)
            finally:
                self.queue.done(key)

    async def run(self) -> None:
        """Run the workers until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                for index in range(self.workers):
                    group.create_task(self._work(), name=f"{self.name}-worker-{index}")
        finally:
            self.queue.shut_down()
