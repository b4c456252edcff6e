"""What the activator tells the autoscaler: per-revision concurrency and request counts.

``RequestStats`` integrates the number of requests in the activator over time, so a report
gives the time-weighted average concurrency since the previous report and how many requests
arrived. A request counts from the moment it arrives, queued or not: queued requests are
exactly the load that must scale a revision up.

``ConcurrencyReporter`` keeps one ``RequestStats`` per revision (Knative's
``ConcurrencyReporter``). The first request for a revision it has no stats for produces an
immediate stat (concurrency 1, one request) so a revision at zero is decided on at once; the
next report subtracts that request so it is not counted twice. A revision without any
request during a whole report interval is dropped after that report.

The answers the activator gives itself (a request that never reached a pod: its 502, 503,
504) are counted per revision by status class and latency bucket and go out with the next
report as the stat's ``responses`` and ``latencyCounts``; answers from pods are left to
their queue-proxies, so no response is counted twice.

Pure; ``now`` is an argument (monotonic seconds).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from knserve.stats_wire import LATENCY_BUCKETS_MS, LATENCY_COUNTS_LENGTH, RevisionStat, Stat, response_class


class RequestStats:
    def __init__(self, now: float) -> None:
        self._window_start = now
        self._last_change = now
        self._concurrency = 0
        self._area = 0.0  # request-seconds since the window start
        self._requests = 0

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def _advance(self, now: float) -> None:
        if now > self._last_change:
            self._area += self._concurrency * (now - self._last_change)
            self._last_change = now

    def request_in(self, now: float) -> None:
        self._advance(now)
        self._concurrency += 1
        self._requests += 1

    def request_out(self, now: float) -> None:
        self._advance(now)
        self._concurrency = max(0, self._concurrency - 1)

    def report(self, now: float) -> tuple[float, int]:
        """(average concurrency, requests) since the last report; starts a new window."""
        self._advance(now)
        elapsed = now - self._window_start
        average = self._area / elapsed if elapsed > 0 else float(self._concurrency)
        requests = self._requests
        self._window_start = now
        self._area = 0.0
        self._requests = 0
        return average, requests


@dataclass(slots=True)
class _Revision:
    stats: RequestStats
    first_request: float  # 1 until the report that follows the immediate first stat
    responses: dict[str, float] = field(default_factory=dict)  # own answers since the last report
    latency_counts: list[float] | None = None


class ConcurrencyReporter:
    def __init__(self, pod_name: str) -> None:
        self._pod_name = pod_name
        self._revisions: dict[tuple[str, str], _Revision] = {}

    def concurrency(self, namespace: str, revision: str) -> int:
        entry = self._revisions.get((namespace, revision))
        return entry.stats.concurrency if entry else 0

    def request_in(self, namespace: str, revision: str, *, now: float) -> RevisionStat | None:
        """Count a request in; returns the stat to send at once for a revision seen first."""
        entry = self._revisions.get((namespace, revision))
        first: RevisionStat | None = None
        if entry is None:
            entry = _Revision(RequestStats(now), first_request=1.0)
            self._revisions[(namespace, revision)] = entry
            first = RevisionStat(
                namespace,
                revision,
                Stat(pod_name=self._pod_name, average_concurrent_requests=1.0, request_count=1.0),
            )
        entry.stats.request_in(now)
        return first

    def request_out(self, namespace: str, revision: str, *, now: float, code: int = 0, seconds: float = 0.0) -> None:
        """Count a request out; ``code`` (and ``seconds``) when the activator answered it itself."""
        entry = self._revisions.get((namespace, revision))
        if entry is None:
            return
        entry.stats.request_out(now)
        if code:
            name = response_class(code)
            entry.responses[name] = entry.responses.get(name, 0.0) + 1
            if entry.latency_counts is None:
                entry.latency_counts = [0.0] * LATENCY_COUNTS_LENGTH
            entry.latency_counts[bisect_left(LATENCY_BUCKETS_MS, seconds * 1000.0)] += 1

    def report(self, *, now: float, timestamp: float = 0.0) -> list[RevisionStat]:
        messages = []
        for key, entry in list(self._revisions.items()):
            average, requests = entry.stats.report(now)
            adjust, entry.first_request = entry.first_request, 0.0
            responses, entry.responses = entry.responses, {}
            latency_counts, entry.latency_counts = entry.latency_counts, None
            if average == 0 and entry.stats.concurrency == 0:
                del self._revisions[key]
            messages.append(
                RevisionStat(
                    key[0],
                    key[1],
                    Stat(
                        pod_name=self._pod_name,
                        average_concurrent_requests=max(0.0, average - adjust),
                        request_count=max(0.0, requests - adjust),
                        timestamp=timestamp,
                        responses=responses,
                        latency_counts=tuple(latency_counts or ()),
                    ),
                )
            )
        return messages
