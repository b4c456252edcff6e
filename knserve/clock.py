"""Time, injected: every process reads the clock through ``Clock`` so tests control it.

``now()`` is wall time as an aware UTC datetime (what the API server stores),
``time()`` the same instant in unix seconds (stats buckets are whole wall-clock seconds),
``monotonic()`` is for durations. ``FakeClock`` moves all three together, and only when told.

No side effects beyond reading the system clock in ``SystemClock``.
"""

from __future__ import annotations

import datetime
import time as _time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime.datetime: ...

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The process's clocks."""

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc)

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime.datetime | float | None = None) -> None:
        if start is None:
            start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
        self._time = start.timestamp() if isinstance(start, datetime.datetime) else float(start)

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self._time, datetime.timezone.utc)

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._time

    def advance(self, seconds: float) -> datetime.datetime:
        self._time += seconds
        return self.now()


def parse_time(value: str | None) -> datetime.datetime | None:
    """An RFC 3339 timestamp as the API server writes it, or None."""
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
