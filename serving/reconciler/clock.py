"""The reconcilers' clock: wall time as an aware datetime, injected so tests control it.

No side effects beyond reading the system clock in ``SystemClock``.
"""

from __future__ import annotations

import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime.datetime: ...


class SystemClock:
    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime.datetime | None = None) -> None:
        self._now = start or datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

    def now(self) -> datetime.datetime:
        return self._now

    def advance(self, seconds: float) -> datetime.datetime:
        self._now += datetime.timedelta(seconds=seconds)
        return self._now


def parse_time(value: str | None) -> datetime.datetime | None:
    """An RFC 3339 timestamp as the API server writes it, or None."""
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
