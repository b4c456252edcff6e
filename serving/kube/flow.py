"""Client-side flow control for API writes: a bounded number in flight, the rest in priority order.

When many objects change at once the API server is the bottleneck; sending every write at
once only makes each one slower. ``PriorityGate`` keeps at most ``limit`` writes in flight and
lets the waiting ones go lowest priority number first (FIFO within a priority), so the
writes on the path to a running revision (creating Configurations, Revisions, Deployments)
overtake status writes and events. ``WriteStats`` keeps per-verb counts and latencies.

Side effects: none beyond futures on the running event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
from collections.abc import AsyncIterator
from typing import Final

from serving.kube.resources import CONFIGURATIONS, DEPLOYMENTS, EVENTS, REVISIONS, Resource

CRITICAL_CREATES: Final = frozenset({CONFIGURATIONS, REVISIONS, DEPLOYMENTS})


def write_priority(verb: str, resource: Resource) -> int:
    """0: creates on the way to a Deployment; 1: other creates; 2: updates, patches, deletes;
    3: status writes; 4: events."""
    if resource == EVENTS:
        return 4
    if verb == "create":
        return 0 if resource in CRITICAL_CREATES else 1
    if verb == "update_status":
        return 3
    return 2


class PriorityGate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        if self._in_flight < self.limit and not self._waiting:
            self._in_flight += 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._order), future))
            try:
                await future  # the releasing request handed its slot over
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()  # the slot was handed over just before the cancel
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)  # the slot passes on; in-flight count unchanged
                return
        self._in_flight -= 1


@dataclasses.dataclass
class WriteStats:
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    def record(self, verb: str, elapsed: float) -> None:
        self.counts[verb] = self.counts.get(verb, 0) + 1
        self.seconds[verb] = self.seconds.get(verb, 0.0) + elapsed

    def summary(self) -> str:
        return ", ".join(f"{verb}: {count} ({self.seconds[verb] / count * 1000:.0f} ms avg)"
                         for verb, count in sorted(self.counts.items()))
