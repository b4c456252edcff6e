"""Prometheus metrics of the call queue, per Service (labels ``namespace``, ``service``).

Counters are this replica's; the depth and oldest-age gauges are read from the durable store
(the same for every replica). Side effects: registers collectors in its own registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

LABELS = ("namespace", "service")


class QueueMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter("knserve_calls_accepted", "Calls accepted (stored, answered 202)", LABELS,
                                registry=self.registry)
        self.dispatched = Counter("knserve_calls_dispatched", "Attempts sent to the function", LABELS,
                                  registry=self.registry)
        self.retried = Counter("knserve_calls_retried", "Attempts that will be tried again", LABELS,
                               registry=self.registry)
        self.succeeded = Counter("knserve_calls_succeeded", "Calls that ended succeeded", LABELS,
                                 registry=self.registry)
        self.failed = Counter("knserve_calls_failed", "Calls that ended failed (a final error response)", LABELS,
                              registry=self.registry)
        self.dead = Counter("knserve_calls_dead", "Calls that ended dead (retries or age ran out)", LABELS,
                            registry=self.registry)
        self.depth = Gauge("knserve_queue_depth", "Calls accepted and not yet finished", LABELS,
                           registry=self.registry)
        self.oldest_age = Gauge("knserve_queue_oldest_age_seconds", "Age of the oldest unfinished call", LABELS,
                                registry=self.registry)
