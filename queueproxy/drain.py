"""Draining on SIGTERM, as Knative's drainer does it.

Pure: ``Drainer`` is told when draining starts and when requests arrive, and says when
the quiet period has passed with no new request. While draining, probes answer 503 so
the pod leaves the endpoints, but requests that still arrive are served and push the
end of the quiet period back. The async shell (server.py) schedules a timer at
``deadline()`` and asks ``drained(now)``.

An idle pod waits the whole quiet period too (30 s by default, as Knative's queue-proxy
sleeps ``drainSleepDuration`` from SIGTERM and restarts it on each request): the period is
not for requests in flight but for everyone who may still route here (Envoy through the
EndpointSlices, the activator through its pod list) to hear that the pod is going. Ending
early because nothing arrived lately would drop a request that was already on its way.
"""

from __future__ import annotations


class Drainer:
    __slots__ = ("quiet_period", "draining", "_started", "_last_request")

    def __init__(self, *, quiet_period: float) -> None:
        self.quiet_period = quiet_period
        self.draining = False
        self._started = 0.0
        self._last_request = float("-inf")

    def start(self, now: float) -> None:
        """Begin draining (idempotent: a second SIGTERM or preStop call changes nothing)."""
        if not self.draining:
            self.draining = True
            self._started = now

    def request_seen(self, now: float) -> None:
        if now > self._last_request:
            self._last_request = now

    def deadline(self) -> float | None:
        """When the quiet period ends if no request arrives before then; None when not draining."""
        if not self.draining:
            return None
        return max(self._started, self._last_request) + self.quiet_period

    def drained(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline
