"""Per-revision capacity accounting: which pod a request goes to, and who waits.

``RevisionThrottler`` is the sans-I/O core of Knative's activator throttler
(``pkg/activator/net/throttler.go`` and ``lb_policy.go``). It tracks the in-flight requests
of each healthy pod and a bounded FIFO of waiters (opaque tokens: the async shell uses
futures). A request gets a pod at once when one has free capacity, otherwise it queues;
each release or new pod hands the freed slots to the oldest waiters.

Pod choice by ``containerConcurrency`` (CC):
- CC 0 (unlimited): power of two choices: two random pods, the less loaded one wins;
- CC 1..3: the first pod (in address order) with a free slot;
- CC > 3: round-robin over the pods with a free slot.

Pure; randomness comes from the ``random.Random`` passed in.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

W = TypeVar("W", bound=Hashable)

SMALL_CONTAINER_CONCURRENCY = 3


class QueueFull(Exception):
    """The revision's queue holds as many waiting requests as it may."""


@dataclass(slots=True)
class PodTracker:
    dest: str
    in_flight: int = 0


class RevisionThrottler(Generic[W]):
    def __init__(self, *, container_concurrency: int, queue_depth: int, rng: random.Random | None = None) -> None:
        self._cc = max(0, container_concurrency)
        self._queue_depth = queue_depth
        self._rng = rng or random.Random()
        self._pods: dict[str, PodTracker] = {}
        self._order: list[PodTracker] = []  # sorted by address
        self._waiters: dict[W, None] = {}  # insertion-ordered FIFO
        self._next = 0  # round-robin position

    # --- views --------------------------------------------------------------------------------
    @property
    def container_concurrency(self) -> int:
        return self._cc

    @property
    def pods(self) -> list[str]:
        return [tracker.dest for tracker in self._order]

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        return sum(tracker.in_flight for tracker in self._order)

    def in_flight_to(self, dest: str) -> int:
        tracker = self._pods.get(dest)
        return tracker.in_flight if tracker else 0

    @property
    def capacity(self) -> int | None:
        """Free slots right now; None when unlimited (CC 0 with at least one pod)."""
        if self._cc == 0:
            return None if self._order else 0
        return sum(max(0, self._cc - tracker.in_flight) for tracker in self._order)

    # --- events -------------------------------------------------------------------------------
    def acquire(self, waiter: W) -> str | None:
        """A pod for this request now, or None when it was queued. Raises ``QueueFull``."""
        if not self._waiters:
            dest = self._pick()
            if dest is not None:
                return dest
        if len(self._waiters) >= self._queue_depth:
            raise QueueFull(f"queue of {self._queue_depth} requests is full")
        self._waiters[waiter] = None
        return None

    def cancel(self, waiter: W) -> bool:
        """Forget a waiter that gave up; False when it was not waiting (already dispatched)."""
        if waiter not in self._waiters:
            return False
        del self._waiters[waiter]
        return True

    def drain(self) -> list[W]:
        """Remove and return every waiter (the revision is going away)."""
        waiters = list(self._waiters)
        self._waiters.clear()
        return waiters

    def release(self, dest: str) -> list[tuple[W, str]]:
        tracker = self._pods.get(dest)
        if tracker is not None and tracker.in_flight > 0:
            tracker.in_flight -= 1
        return self._dispatch()

    def update_pods(self, dests: Iterable[str]) -> list[tuple[W, str]]:
        wanted = set(dests)
        self._pods = {dest: self._pods.get(dest) or PodTracker(dest) for dest in wanted}
        self._order = [self._pods[dest] for dest in sorted(wanted)]
        return self._dispatch()

    def update_concurrency(self, container_concurrency: int) -> list[tuple[W, str]]:
        self._cc = max(0, container_concurrency)
        return self._dispatch()

    # --- policy ----------------------------------------------------------------------------
    def _dispatch(self) -> list[tuple[W, str]]:
        handed: list[tuple[W, str]] = []
        while self._waiters:
            dest = self._pick()
            if dest is None:
                break
            waiter = next(iter(self._waiters))
            del self._waiters[waiter]
            handed.append((waiter, dest))
        return handed

    def _pick(self) -> str | None:
        pods = self._order
        if not pods:
            return None
        chosen: PodTracker | None
        if self._cc == 0:
            chosen = self._two_choices(pods)
        elif self._cc <= SMALL_CONTAINER_CONCURRENCY:
            chosen = next((t for t in pods if t.in_flight < self._cc), None)
        else:
            chosen = self._round_robin(pods)
        if chosen is None:
            return None
        chosen.in_flight += 1
        return chosen.dest

    def _two_choices(self, pods: list[PodTracker]) -> PodTracker:
        if len(pods) == 1:
            return pods[0]
        first, second = self._rng.sample(range(len(pods)), 2)
        pick, other = pods[first], pods[second]
        if other.in_flight < pick.in_flight or (other.in_flight == pick.in_flight and self._rng.random() < 0.5):
            pick = other
        return pick

    def _round_robin(self, pods: list[PodTracker]) -> PodTracker | None:
        if self._next >= len(pods):
            self._next = 0
        for offset in range(len(pods)):
            index = (self._next + offset) % len(pods)
            if pods[index].in_flight < self._cc:
                self._next = index + 1
                return pods[index]
        return None
