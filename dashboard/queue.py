"""Queued calls per Service, as the call queue publishes them on its metrics port.

Every ``knserve queue`` replica sets the gauges ``knserve_queue_depth`` (calls accepted and not
yet finished) and ``knserve_queue_oldest_age_seconds`` for each Service with calls, from the
shared NATS stream, so any one replica's ``/metrics`` tells the whole backlog.
``parse_backlogs`` reads them from Prometheus' text format (pure); ``HttpQueue`` fetches them
from a replica a ``Locator`` gives (the ``knserve-queue`` Service's metrics port), keeping an
answer ``ttl`` seconds; ``FakeQueue`` is for tests.

Side effects: HTTP requests (``HttpQueue``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from dashboard.metrics import Locator
from knserve.clock import Clock

DEPTH = "knserve_queue_depth"
OLDEST_AGE = "knserve_queue_oldest_age_seconds"


@dataclass(frozen=True, slots=True)
class Backlog:
    depth: int
    oldest_age_seconds: float


Backlogs = dict[tuple[str, str], Backlog]  # by (namespace, service)


def parse_backlogs(text: str) -> Backlogs:
    """The backlog of every Service the text's gauges name; raises ValueError on text that is
    not Prometheus' format."""
    depth: dict[tuple[str, str], float] = {}
    age: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (DEPTH, OLDEST_AGE):
            continue
        for sample in family.samples:
            key = (sample.labels.get("namespace", ""), sample.labels.get("service", ""))
            (depth if family.name == DEPTH else age)[key] = float(sample.value)
    return {key: Backlog(depth=int(value), oldest_age_seconds=age.get(key, 0.0)) for key, value in depth.items()}


class QueueSource(Protocol):
    async def backlogs(self) -> Backlogs | None: ...


class HttpQueue:
    def __init__(self, locator: Locator, session: aiohttp.ClientSession, clock: Clock, *, ttl: float = 2.0) -> None:
        self.locator = locator
        self.session = session
        self.clock = clock
        self.ttl = ttl
        self._kept: tuple[float, Backlogs | None] | None = None
        self._lock = asyncio.Lock()

    async def backlogs(self) -> Backlogs | None:
        async with self._lock:
            if self._kept is not None and self.clock.monotonic() - self._kept[0] < self.ttl:
                return self._kept[1]
            answer = await self._fetch()
            self._kept = (self.clock.monotonic(), answer)
            return answer

    async def _fetch(self) -> Backlogs | None:
        base = await self.locator.base_url()
        if base is None:
            return None
        try:
            async with self.session.get(base + "/metrics", timeout=aiohttp.ClientTimeout(total=3)) as response:
                if response.status != 200:
                    return None
                text = await response.text()
            return parse_backlogs(text)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None


class FakeQueue:
    def __init__(self, answer: Backlogs | None = None) -> None:
        self.answer = answer

    async def backlogs(self) -> Backlogs | None:
        return self.answer
