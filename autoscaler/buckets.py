"""Time windows of one-second buckets: the stable/panic averages and the scale-down-delay max.

``WindowAverage`` follows Knative's ``TimedFloat64Buckets``: values recorded in the same
second add up in one bucket; the average is over the buckets written since the first write
(a partial window right after start), gaps inside the window count as zero, and a window
without writes reads zero. ``MaxWindow`` is Knative's ``max.TimeWindow``: the largest value
recorded over the last ``duration`` seconds, in ticks of ``granularity``.

Pure: every call takes ``now`` in seconds; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque

_PRECISION = 6


def _second(now: float) -> int:
    return math.floor(now)


class WindowAverage:
    """The average of per-second sums over a sliding window of whole seconds."""

    def __init__(self, window_seconds: float) -> None:
        self._size = max(1, math.ceil(window_seconds))
        self._buckets = [0.0] * self._size
        self._total = 0.0
        self._first_write: int | None = None
        self._last_write: int | None = None

    @property
    def window(self) -> int:
        return self._size

    def record(self, now: float, value: float) -> None:
        second = _second(now)
        if self._last_write != second:
            if self._last_write is not None and second + self._size <= self._last_write:
                return  # older than a whole window: ignore
            if self._first_write is None or self._first_write > second:
                self._first_write = second
            if self._last_write is None or second > self._last_write:
                if self._last_write is None or second - self._last_write >= self._size:
                    self._first_write = second
                    self._buckets = [0.0] * self._size
                    self._total = 0.0
                else:
                    for index in range(self._last_write + 1, second + 1):
                        slot = index % self._size
                        self._total -= self._buckets[slot]
                        self._buckets[slot] = 0.0
                self._last_write = second
        self._buckets[second % self._size] += value
        self._total += value

    def is_empty(self, now: float) -> bool:
        return self._last_write is None or _second(now) - self._last_write > self._size

    def average(self, now: float) -> float:
        if self._last_write is None or self._first_write is None:
            return 0.0
        second = _second(now)
        gap = second - self._last_write
        written = self._last_write - self._first_write + 1
        if gap <= 0:
            return round(self._total / min(written, self._size), _PRECISION)
        if gap < self._size:
            total = self._total
            for index in range(self._last_write + 1, second + 1):
                total -= self._buckets[index % self._size]
            return round(total / min(written, self._size - gap), _PRECISION)
        return 0.0

    def resize(self, window_seconds: float, now: float) -> None:
        """Change the window, keeping the most recent buckets that still fit."""
        size = max(1, math.ceil(window_seconds))
        if size == self._size:
            return
        buckets = [0.0] * size
        total = 0.0
        if self._last_write is not None and _second(now) - self._last_write <= self._size:
            index = self._last_write
            for _ in range(min(size, self._size)):
                buckets[index % size] = self._buckets[index % self._size]
                total += buckets[index % size]
                index -= 1
            self._first_write = max(
                self._first_write or self._last_write, self._last_write - min(size, self._size) + 1
            )
        else:
            self._first_write = None
            self._last_write = None
        self._size = size
        self._buckets = buckets
        self._total = total


class MaxWindow:
    """The maximum value recorded in the last ``duration`` seconds (monotonic deque)."""

    def __init__(self, duration: float, granularity: float) -> None:
        self._granularity = granularity
        self._slots = max(1, math.ceil(duration / granularity))
        self._entries: deque[tuple[int, int]] = deque()  # (index, value), values descending

    def record(self, now: float, value: int) -> None:
        index = math.floor(now / self._granularity)
        while self._entries and self._entries[-1][1] <= value:
            self._entries.pop()
        while self._entries and index - self._entries[0][0] >= self._slots:
            self._entries.popleft()
        self._entries.append((index, value))

    def current(self) -> int:
        return self._entries[0][1] if self._entries else 0
