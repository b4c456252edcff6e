"""One revision's request metrics: per-second responses, latencies and concurrency for 15 minutes.

``RequestWindow`` is fed the same stats as the KPA windows (scrapes of the queue-proxies,
extrapolated when sampled, and the activator's pushes) and keeps, for each whole second,
the responses by status class, their latency histogram (Knative's buckets, see
``knserve.stats_wire``) and the average concurrency. A stat describes the second before
the one it arrives in (a queue-proxy reports its last whole second; the activator pushes
once a second), so it is kept under that second. ``summary`` and ``series`` read any range
of the last :data:`RETENTION_SECONDS` as ``knserve.request_metrics`` types.

Pure: ``now`` comes in as an argument; nothing here reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from knserve.request_metrics import RequestSummary, SecondSample, quantile_ms
from knserve.stats_wire import LATENCY_COUNTS_LENGTH, Stat

RETENTION_SECONDS: Final = 15 * 60


@dataclass(slots=True)
class _Second:
    concurrency: float = 0.0
    responses: dict[str, float] = field(default_factory=dict)
    latency_counts: list[float] | None = None  # None until a stat with a histogram arrives

    @property
    def requests(self) -> float:
        return sum(self.responses.values())


class RequestWindow:
    """Per-second request metrics of one revision over the last 15 minutes."""

    def __init__(self, *, namespace: str, revision: str, retention: int = RETENTION_SECONDS) -> None:
        self.namespace = namespace
        self.revision = revision
        self._retention = retention
        self._seconds: dict[int, _Second] = {}  # insertion order is time order but for late stats

    def record(self, now: float, stat: Stat, *, concurrency: float | None = None) -> None:
        """Add a stat that arrived at ``now``; ``concurrency`` overrides the stat's own average.

        (The queue-proxies count the requests the activator forwarded as proxied; the
        activator counts those itself, so a scrape contributes only its unproxied share.)
        """
        second = math.floor(now) - 1
        self._forget_before(second - self._retention + 1)
        bucket = self._seconds.get(second)
        if bucket is None:
            bucket = self._seconds[second] = _Second()
        bucket.concurrency += stat.average_concurrent_requests if concurrency is None else concurrency
        for name, count in stat.responses.items():
            bucket.responses[name] = bucket.responses.get(name, 0.0) + count
        if stat.latency_counts and len(stat.latency_counts) == LATENCY_COUNTS_LENGTH:
            if bucket.latency_counts is None:
                bucket.latency_counts = [0.0] * LATENCY_COUNTS_LENGTH
            counts = bucket.latency_counts
            for index, count in enumerate(stat.latency_counts):
                counts[index] += count

    def _forget_before(self, oldest: int) -> None:
        seconds = self._seconds
        while seconds:
            first = next(iter(seconds))
            if first >= oldest:
                return  # (a late stat's older second further on goes once it comes first)
            del seconds[first]

    def __len__(self) -> int:
        """Seconds kept."""
        return len(self._seconds)

    def _range(self, since: float, until: float, *, now: float) -> range:
        """The whole seconds starting in ``[since, until)`` that are still kept."""
        first = max(math.ceil(since), math.floor(now) - self._retention)
        return range(first, math.ceil(until))

    def summary(self, *, since: float, until: float, now: float) -> RequestSummary:
        """Responses, their quantiles and the seconds covered by stats in ``[since, until)``."""
        responses: dict[str, float] = {}
        latency = [0.0] * LATENCY_COUNTS_LENGTH
        covered = 0
        for second in self._range(since, until, now=now):
            bucket = self._seconds.get(second)
            if bucket is None:
                continue
            covered += 1
            for name, count in bucket.responses.items():
                responses[name] = responses.get(name, 0.0) + count
            if bucket.latency_counts is not None:
                for index, count in enumerate(bucket.latency_counts):
                    latency[index] += count
        return RequestSummary.from_counts(
            namespace=self.namespace,
            revision=self.revision,
            since=since,
            until=until,
            responses=responses,
            latency_counts=latency,
            covered_seconds=covered,
        )

    def series(self, *, since: float, until: float, now: float) -> list[SecondSample]:
        """One sample per whole second in ``[since, until)``, zeros where no stat came."""
        samples = []
        for second in self._range(since, until, now=now):
            bucket = self._seconds.get(second)
            if bucket is None:
                samples.append(SecondSample(float(second), 0.0, 0.0, None, None, 0.0))
                continue
            counts = bucket.latency_counts or ()
            has_latency = bool(counts) and sum(counts) > 0
            samples.append(
                SecondSample(
                    t=float(second),
                    requests=bucket.requests,
                    errors=bucket.responses.get("5xx", 0.0),
                    p50_ms=quantile_ms(0.5, counts) if has_latency else None,
                    p99_ms=quantile_ms(0.99, counts) if has_latency else None,
                    concurrency=bucket.concurrency,
                )
            )
        return samples
