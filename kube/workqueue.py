"""A work queue of object keys, like client-go's: dedup, one worker per key, rate-limited retries.

A key added while queued is not queued twice; a key added while a worker holds it is
queued again once the worker calls ``done``, so two workers never reconcile the same
object at once and no change is lost. ``add_rate_limited`` waits per key with exponential
back-off (``base_delay * 2**failures`` up to ``max_delay``); ``forget`` resets it.
``add_after`` schedules a key for later (rollout steps, retention timers).

Side effects: timers on the running event loop.
"""

from __future__ import annotations

import asyncio
import collections


class ShutDown(Exception):
    """The queue was shut down; workers exit."""


class WorkQueue:
    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 300.0) -> None:
        self._queue: collections.deque[str] = collections.deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._timer_deadlines: dict[str, float] = {}
        self._ready = asyncio.Event()
        self._shut_down = False
        self._base_delay = base_delay
        self._max_delay = max_delay

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if self._shut_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._ready.set()

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; an earlier pending timer for it wins."""
        if self._shut_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        existing = self._timer_deadlines.get(key)
        if existing is not None and existing <= deadline:
            return
        if key in self._timers:
            self._timers[key].cancel()
        self._timer_deadlines[key] = deadline
        self._timers[key] = loop.call_at(deadline, self._fire_timer, key)

    def _fire_timer(self, key: str) -> None:
        self._timers.pop(key, None)
        self._timer_deadlines.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self.add_after(key, min(self._max_delay, self._base_delay * (2**failures)))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> str:
        """The next key to work on; the caller must call ``done(key)`` afterwards."""
        while not self._queue:
            if self._shut_down:
                raise ShutDown()
            self._ready.clear()
            await self._ready.wait()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._ready.set()

    def shut_down(self) -> None:
        self._shut_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._timer_deadlines.clear()
        self._ready.set()

    @property
    def is_drained(self) -> bool:
        """Nothing queued and nothing in progress (keys waiting on a timer do not count)."""
        return not self._queue and not self._processing

    @property
    def is_idle(self) -> bool:
        """Nothing queued, nothing in progress and no timers pending."""
        return not self._queue and not self._processing and not self._timers
