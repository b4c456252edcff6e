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
    """``limit`` requests in flight at most; a quarter of them only for priority 0, so slow
    writes of lower priorities (a Service waiting for its cluster IP) cannot hold every slot."""

    def __init__(self, limit: int, *, reserved_for_critical: int | None = None) -> None:
        self.limit = max(1, limit)
        self.reserved = min(self.limit - 1, limit // 4 if reserved_for_critical is None else reserved_for_critical)
        self._in_flight = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def _cap(self, priority: int) -> int:
        return self.limit if priority == 0 else self.limit - self.reserved

    @contextlib.asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        ahead = bool(self._waiting) and self._waiting[0][0] <= priority
        if self._in_flight < self._cap(priority) and not ahead:
            self._in_flight += 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._order), future))
            try:
                await future  # admitted by a releasing request (which counted us in)
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()  # admitted just before the cancel
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self._in_flight -= 1
        self._admit()

    def _admit(self) -> None:
        while self._waiting:
            priority, _, future = self._waiting[0]
            if future.done():
                heapq.heappop(self._waiting)
                continue
            if self._in_flight >= self._cap(priority):
                return  # caps only shrink as priority numbers grow: nobody behind fits either
            heapq.heappop(self._waiting)
            self._in_flight += 1
            future.set_result(None)


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
