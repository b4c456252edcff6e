"""Per-second request statistics for the autoscaler: time-weighted concurrency and counts.

Pure: ``RequestStats`` is fed events with the wall-clock time ``now`` and keeps one
bucket per whole second. A bucket's average concurrency is the integral of the number of
requests in flight over that second; its request count is the requests that arrived in
it. Requests the activator forwarded (``K-Proxy-Request: activator``) are counted in the
totals and again apart, as Knative's Stat does. A bucket also counts the responses that
ended in it, by status class, and their total time in Knative's latency buckets (the index
``Metrics.record`` computed, so the hot path bisects once). ``report(now)`` returns the last whole
second, so a scrape every second sees each bucket once, as a ``knserve.stats_wire.Stat`` (which
also writes the bytes ``GET /stats`` answers).
"""

from __future__ import annotations

import math

from knserve.stats_wire import LATENCY_COUNTS_LENGTH, Stat

_NO_RESPONSES: tuple[list[int], list[int]] = ([], [])


def _class_counts(by_class: list[int]) -> dict[str, float]:
    return {f"{index}xx": float(count) for index, count in enumerate(by_class) if count}


class RequestStats:
    __slots__ = (
        "_pod_name", "_started", "_bucket_start", "_last_change", "concurrency", "proxied_concurrency",
        "_area", "_proxied_area", "_count", "_proxied_count", "_completed", "_by_class", "_latency",
        "_responded",
    )

    def __init__(self, *, pod_name: str, now: float) -> None:
        self._pod_name = pod_name
        self._started = now
        self._bucket_start = math.floor(now)
        self._last_change = now
        self.concurrency = 0
        self.proxied_concurrency = 0
        self._area = 0.0
        self._proxied_area = 0.0
        self._count = 0
        self._proxied_count = 0
        self._by_class = [0] * 10  # responses by code // 100
        self._latency = [0] * LATENCY_COUNTS_LENGTH  # responses by latency bucket
        self._responded = False
        # (start, average, proxied average, count, proxied count, (by class, latency)) of the last whole second
        self._completed: tuple[int, float, float, int, int, tuple[list[int], list[int]]] | None = None

    def request_in(self, now: float, proxied: int) -> None:
        if now >= self._bucket_start + 1:
            self._roll(now)
        elapsed = now - self._last_change
        self._area += self.concurrency * elapsed
        self._proxied_area += self.proxied_concurrency * elapsed
        self._last_change = now
        self.concurrency += 1
        self._count += 1
        if proxied:
            self.proxied_concurrency += 1
            self._proxied_count += 1

    def request_out(self, now: float, proxied: int, code: int = 0, latency_bucket: int = 0) -> None:
        """A request ended; with its response ``code`` (0: none to count) and latency bucket index."""
        if now >= self._bucket_start + 1:
            self._roll(now)
        elapsed = now - self._last_change
        self._area += self.concurrency * elapsed
        self._proxied_area += self.proxied_concurrency * elapsed
        self._last_change = now
        self.concurrency -= 1
        if proxied:
            self.proxied_concurrency -= 1
        if 100 <= code < 1000:
            self._by_class[code // 100] += 1
            self._latency[latency_bucket] += 1
            self._responded = True

    def report(self, now: float) -> Stat:
        """The last whole second before ``now`` (zeros before the first one has passed)."""
        if now >= self._bucket_start + 1:
            self._roll(now)
        second = math.floor(now)
        completed = self._completed
        if completed is None or completed[0] != second - 1:
            average, proxied_average, count, proxied_count = 0.0, 0.0, 0, 0
            by_class, latency = _NO_RESPONSES
        else:
            _, average, proxied_average, count, proxied_count, (by_class, latency) = completed
        return Stat(
            pod_name=self._pod_name,
            average_concurrent_requests=average,
            average_proxied_concurrent_requests=proxied_average,
            request_count=float(count),
            proxied_request_count=float(proxied_count),
            process_uptime=max(0.0, now - self._started),
            timestamp=float(second),
            responses=_class_counts(by_class),
            latency_counts=tuple(float(count) for count in latency),
        )

    def _roll(self, now: float) -> None:
        """Close the current bucket (and any empty seconds after it) up to the second holding ``now``."""
        end = self._bucket_start + 1
        elapsed = end - self._last_change
        area = self._area + self.concurrency * elapsed
        proxied_area = self._proxied_area + self.proxied_concurrency * elapsed
        # buckets that began before the process started cover only the part after it
        span = end - max(self._bucket_start, min(self._started, end))
        span = span if span > 0 else 1.0
        second = math.floor(now)
        responses = _NO_RESPONSES
        if self._responded:
            responses = (self._by_class, self._latency)
            self._by_class = [0] * 10
            self._latency = [0] * LATENCY_COUNTS_LENGTH
            self._responded = False
        if second == end:
            self._completed = (
                self._bucket_start, area / span, proxied_area / span, self._count, self._proxied_count, responses,
            )
        else:  # whole idle seconds passed: the last of them saw a constant concurrency and no arrivals
            self._completed = (second - 1, float(self.concurrency), float(self.proxied_concurrency), 0, 0, _NO_RESPONSES)
        self._bucket_start = second
        self._last_change = float(second)
        self._area = 0.0
        self._proxied_area = 0.0
        self._count = 0
        self._proxied_count = 0
