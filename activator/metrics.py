"""The activator's Prometheus metrics, in a registry of its own (no process globals).

- ``activator_request_count_total{namespace_name, revision_name, response_code}``
- ``activator_request_latencies`` (milliseconds, histogram) with the same labels
- ``activator_request_concurrency{namespace_name, revision_name}``: requests in the activator
- ``activator_queue_depth{namespace_name, revision_name}``: requests waiting for a pod
- ``activator_healthy_pods{namespace_name, revision_name}``: pods the activator sends to
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000)
REVISION_LABELS = ("namespace_name", "revision_name")


class RevisionGauges(NamedTuple):
    namespace: str
    revision: str
    concurrency: int
    queued: int
    healthy_pods: int


class _GaugeCollector(Collector):
    """Reads the gauges at scrape time, so the request path pays nothing for them."""

    def __init__(self, snapshot: Callable[[], Iterable[RevisionGauges]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            "concurrency": GaugeMetricFamily(
                "activator_request_concurrency", "Requests in the activator, queued or in flight.", labels=REVISION_LABELS
            ),
            "queued": GaugeMetricFamily("activator_queue_depth", "Requests waiting for a pod.", labels=REVISION_LABELS),
            "healthy_pods": GaugeMetricFamily(
                "activator_healthy_pods", "Pods the activator sends requests to.", labels=REVISION_LABELS
            ),
        }
        for row in self._snapshot():
            for field, family in families.items():
                family.add_metric([row.namespace, row.revision], float(getattr(row, field)))
        yield from families.values()


class ActivatorMetrics:
    def __init__(self, snapshot: Callable[[], Iterable[RevisionGauges]] = tuple) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "activator_request_count",
            "Requests the activator answered, by response code.",
            (*REVISION_LABELS, "response_code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "activator_request_latencies",
            "Time from a request's arrival at the activator to its response, in milliseconds.",
            (*REVISION_LABELS, "response_code"),
            buckets=LATENCY_BUCKETS_MS,
            registry=self.registry,
        )
        self.registry.register(_GaugeCollector(snapshot))

    def observe(self, namespace: str, revision: str, code: int, seconds: float) -> None:
        self.requests.labels(namespace, revision, str(code)).inc()
        self.latency.labels(namespace, revision, str(code)).observe(seconds * 1000.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
