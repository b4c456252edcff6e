"""The activator's live view of each revision: healthy pods, capacity and waiting requests.

``Backends`` is the ``RevisionSink`` the cluster watcher feeds. For every revision it keeps a
``RevisionThrottler`` (the pure capacity core) and the set of healthy pods: the ones
Kubernetes calls ready, plus not-ready ones that passed the activator's own probe
(``GET /healthz`` with ``K-Network-Probe: queue`` answered ``200 queue``). Probing lets a
request go to a new pod as soon as its queue-proxy answers, before the kubelet's readiness
probe and the EndpointSlice controller catch up. A pod that turns from ready to not ready
is dropped and probed again (it may be draining).

``acquire`` waits for a pod with free capacity (or raises ``QueueFull`` at once);
``release`` gives the slot back. Long-lived tasks: one probe loop per revision while it has
unprobed pods (a round every 200 ms, and at once when a new pod appears), owned here and
cancelled by ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from activator.revisions import Endpoints, RevisionInfo
from activator.throttler import QueueFull, RevisionThrottler
from knserve.networking import PROBE_HEADER, PROBE_HEADER_QUEUE_VALUE

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 0.3  # Knative's activator probe timeout and frequency
PROBE_INTERVAL = 0.2
# A new pod is probed more often for its first seconds: its queue-proxy and app are coming up
# right now, and each round missed is time a cold request waits (at 0.2 s, 0.1 s on average).
NEW_POD_PROBE_INTERVAL = 0.025
NEW_POD_PROBE_SECONDS = 2.0
HEALTH_PATH = "/healthz"

__all__ = ["Backends", "HttpProber", "Prober", "QueueFull", "RevisionGone"]


class RevisionGone(LookupError):
    """The revision was deleted while the request waited for it."""


class Prober(Protocol):
    async def probe(self, dest: str) -> bool:
        """True when the queue-proxy at ``dest`` (``ip:port``) is ready for requests."""
        ...


class HttpProber:
    def __init__(self, session: aiohttp.ClientSession, *, timeout: float = PROBE_TIMEOUT) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def probe(self, dest: str) -> bool:
        try:
            async with self._session.get(
                f"http://{dest}{HEALTH_PATH}",
                headers={PROBE_HEADER: PROBE_HEADER_QUEUE_VALUE},
                timeout=self._timeout,
            ) as response:
                return response.status == 200 and (await response.text()).strip() == PROBE_HEADER_QUEUE_VALUE
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False


Waiter = asyncio.Future[str]


@dataclass(eq=False)
class _Revision:
    info: RevisionInfo
    throttler: RevisionThrottler[Waiter]
    endpoints: Endpoints = field(default_factory=Endpoints)
    probed: set[str] = field(default_factory=set)  # not-ready pods whose probe passed
    probe_task: asyncio.Task[None] | None = None
    new_pods: asyncio.Event = field(default_factory=asyncio.Event)  # cuts the probe loop's pause short

    @property
    def healthy(self) -> set[str]:
        return set(self.endpoints.ready) | (self.probed & self.endpoints.not_ready)

    @property
    def unprobed(self) -> set[str]:
        return set(self.endpoints.not_ready) - self.probed


class Backends:
    def __init__(
        self,
        *,
        prober: Prober,
        queue_depth: int,
        probe_interval: float = PROBE_INTERVAL,
        new_pod_probe_interval: float = NEW_POD_PROBE_INTERVAL,
        rng: random.Random | None = None,
    ) -> None:
        self._prober = prober
        self._queue_depth = queue_depth
        self._probe_interval = probe_interval
        self._new_pod_probe_interval = new_pod_probe_interval
        self._rng = rng or random.Random()
        self._revisions: dict[tuple[str, str], _Revision] = {}
        self._pending_endpoints: dict[tuple[str, str], Endpoints] = {}

    # --- lookups ------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> RevisionInfo | None:
        revision = self._revisions.get((namespace, name))
        return revision.info if revision else None

    def throttler(self, namespace: str, name: str) -> RevisionThrottler[Waiter] | None:
        revision = self._revisions.get((namespace, name))
        return revision.throttler if revision else None

    def healthy(self, namespace: str, name: str) -> set[str]:
        revision = self._revisions.get((namespace, name))
        return revision.healthy if revision else set()

    def summary(self) -> Iterator[tuple[RevisionInfo, int, int]]:
        """(revision, requests waiting, healthy pods) for every known revision."""
        for revision in self._revisions.values():
            yield revision.info, revision.throttler.queued, len(revision.throttler.pods)

    # --- RevisionSink -------------------------------------------------------------------------
    def upsert_revision(self, revision: RevisionInfo) -> None:
        existing = self._revisions.get(revision.key)
        if existing is None:
            existing = _Revision(
                revision,
                RevisionThrottler(
                    container_concurrency=revision.container_concurrency,
                    queue_depth=self._queue_depth,
                    rng=self._rng,
                ),
            )
            self._revisions[revision.key] = existing
            pending = self._pending_endpoints.pop(revision.key, None)
            if pending is not None:
                self._apply_endpoints(existing, pending)
        else:
            existing.info = revision
            if revision.container_concurrency != existing.throttler.container_concurrency:
                self._hand_out(existing, existing.throttler.update_concurrency(revision.container_concurrency))

    def delete_revision(self, namespace: str, name: str) -> None:
        revision = self._revisions.pop((namespace, name), None)
        self._pending_endpoints.pop((namespace, name), None)
        if revision is None:
            return
        if revision.probe_task is not None:
            revision.probe_task.cancel()
        # Requests still waiting have nowhere to go; the handler turns this into a 503.
        for waiter in revision.throttler.drain():
            if not waiter.done():
                waiter.set_exception(RevisionGone(f"revision {namespace}/{name} was deleted"))

    def set_endpoints(self, namespace: str, name: str, endpoints: Endpoints) -> None:
        revision = self._revisions.get((namespace, name))
        if revision is None:
            # The Revision may come later; endpoints of a revision that is gone are not kept.
            if endpoints.ready or endpoints.not_ready:
                self._pending_endpoints[(namespace, name)] = endpoints
            else:
                self._pending_endpoints.pop((namespace, name), None)
            return
        self._apply_endpoints(revision, endpoints)

    def _apply_endpoints(self, revision: _Revision, endpoints: Endpoints) -> None:
        turned_not_ready = revision.endpoints.ready & endpoints.not_ready
        new_pods = endpoints.not_ready - revision.endpoints.not_ready - revision.endpoints.ready
        if new_pods:
            log.info("new pods for %s: probing %s", revision.info.name, sorted(new_pods))
            revision.new_pods.set()
        revision.probed -= turned_not_ready
        revision.probed &= endpoints.not_ready
        revision.endpoints = endpoints
        self._update_pods(revision)
        if revision.unprobed and (revision.probe_task is None or revision.probe_task.done()):
            revision.probe_task = asyncio.get_running_loop().create_task(
                self._probe_loop(revision), name=f"activator-probe-{revision.info.namespace}/{revision.info.name}"
            )

    def _update_pods(self, revision: _Revision) -> None:
        self._hand_out(revision, revision.throttler.update_pods(revision.healthy))

    async def _probe_loop(self, revision: _Revision) -> None:
        loop = asyncio.get_running_loop()
        fast_until = loop.time() + NEW_POD_PROBE_SECONDS
        while self._revisions.get(revision.info.key) is revision and revision.unprobed:
            if revision.new_pods.is_set():
                fast_until = loop.time() + NEW_POD_PROBE_SECONDS
            revision.new_pods.clear()
            candidates = sorted(revision.unprobed)
            results = await asyncio.gather(*(self._prober.probe(dest) for dest in candidates))
            passed = {dest for dest, ok in zip(candidates, results) if ok} & revision.endpoints.not_ready
            if passed:
                log.info("probe passed for %s on %s", revision.info.name, sorted(passed))
                revision.probed |= passed
                self._update_pods(revision)
            if revision.unprobed:
                # The next round after the interval, or at once when a new pod shows up.
                interval = self._new_pod_probe_interval if loop.time() < fast_until else self._probe_interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(revision.new_pods.wait(), interval)

    # --- the request path -------------------------------------------------------------------
    async def acquire(self, namespace: str, name: str) -> str:
        """A pod address with a slot reserved for this request; raises ``QueueFull``."""
        revision = self._revisions[(namespace, name)]
        waiter: Waiter = asyncio.get_running_loop().create_future()
        dest = revision.throttler.acquire(waiter)
        if dest is not None:
            return dest
        try:
            return await waiter
        except asyncio.CancelledError:
            if not revision.throttler.cancel(waiter) and waiter.done() and not waiter.cancelled():
                self._release(revision, waiter.result())  # a slot came just as we gave up
            raise

    def release(self, namespace: str, name: str, dest: str) -> None:
        revision = self._revisions.get((namespace, name))
        if revision is not None:
            self._release(revision, dest)

    def _release(self, revision: _Revision, dest: str) -> None:
        self._hand_out(revision, revision.throttler.release(dest))

    def _hand_out(self, revision: _Revision, handed: list[tuple[Waiter, str]]) -> None:
        queue = deque(handed)
        while queue:
            waiter, dest = queue.popleft()
            if waiter.done():  # gave up in the meantime: pass the slot on
                queue.extend(revision.throttler.release(dest))
            else:
                waiter.set_result(dest)

    async def close(self) -> None:
        tasks = [r.probe_task for r in self._revisions.values() if r.probe_task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
