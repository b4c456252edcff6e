"""The breaker: at most ``concurrency`` requests at the app and ``queue_depth`` waiting.

Pure capacity logic, no I/O and no asyncio: the proxy hands in an opaque waiter (a
callback, a future, anything hashable) when a request arrives and gets back whether it
holds a slot, waits, or is refused; ``release()`` returns the waiter that now holds the
freed slot so the caller can wake it. ``concurrency == 0`` means no limit (Knative's
containerConcurrency 0): every request gets a slot at once and only counts.
"""

from __future__ import annotations

import enum
from typing import Generic, Hashable, TypeVar

Waiter = TypeVar("Waiter", bound=Hashable)


class Admission(enum.Enum):
    ADMITTED = "admitted"  # holds a slot now
    QUEUED = "queued"  # will be handed a slot by a later release()
    REJECTED = "rejected"  # queue full: answer 503 at once


class Breaker(Generic[Waiter]):
    __slots__ = ("concurrency", "queue_depth", "in_flight", "_waiting")

    def __init__(self, *, concurrency: int, queue_depth: int) -> None:
        if concurrency < 0 or queue_depth < 0:
            raise ValueError("concurrency and queue_depth must be zero or more")
        self.concurrency = concurrency
        self.queue_depth = queue_depth
        self.in_flight = 0
        # insertion-ordered: the oldest waiter is first; removal on cancel is O(1)
        self._waiting: dict[Waiter, None] = {}

    @property
    def unlimited(self) -> bool:
        return self.concurrency == 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def depth(self) -> int:
        """Requests at the app plus those waiting (Knative's revision_queue_depth)."""
        return self.in_flight + len(self._waiting)

    def admit(self, waiter: Waiter) -> Admission:
        if self.concurrency == 0 or self.in_flight < self.concurrency:
            self.in_flight += 1
            return Admission.ADMITTED
        if len(self._waiting) < self.queue_depth:
            self._waiting[waiter] = None
            return Admission.QUEUED
        return Admission.REJECTED

    def cancel(self, waiter: Waiter) -> bool:
        """Forget a waiter that gave up (client gone, timed out). True if it was waiting."""
        return self._waiting.pop(waiter, False) is None

    def release(self) -> Waiter | None:
        """Free a slot. If someone was waiting, the slot passes to them and they are returned."""
        if self._waiting:
            waiter = next(iter(self._waiting))
            del self._waiting[waiter]
            return waiter  # in_flight unchanged: the slot moved to the waiter
        if self.in_flight <= 0:
            raise RuntimeError("breaker released more slots than it handed out")
        self.in_flight -= 1
        return None
