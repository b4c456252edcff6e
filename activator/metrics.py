"""The activator's Prometheus metrics, in a registry of its own (no process globals).

The request families carry Knative's activator names and labels (``namespace_name``,
``service_name``, ``configuration_name``, ``revision_name``, ``pod_name``, ``container_name``,
``response_code``, ``response_code_class``) and, like Knative's OpenCensus exporter, no
``_total`` suffix, so dashboards and Flagger's Knative provider read them unchanged:

- ``activator_request_count``: requests the activator answered, by response code
- ``activator_request_latencies`` (milliseconds, Knative's buckets): arrival to response
- ``activator_request_concurrency{namespace_name, revision_name}``: requests in the activator
- ``activator_queue_depth{namespace_name, revision_name}``: requests waiting for a pod
- ``activator_healthy_pods{namespace_name, revision_name}``: pods the activator sends to
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from knserve.stats_wire import LATENCY_BUCKETS_MS, response_class

REVISION_LABELS = ("namespace_name", "revision_name")
CONTAINER_NAME = "activator"
_RequestKey = tuple[str, str, str, str, int]  # namespace, service, configuration, revision, code


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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(float(value))


class ActivatorMetrics:
    def __init__(self, snapshot: Callable[[], Iterable[RevisionGauges]] = tuple, *, pod_name: str = "") -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_GaugeCollector(snapshot))
        self._pod_name = pod_name
        # [count, sum ms, one count per bucket and +Inf] per (revision, code)
        self._requests: dict[_RequestKey, list[float]] = {}

    def observe(
        self, namespace: str, revision: str, code: int, seconds: float, *, service: str = "", configuration: str = ""
    ) -> None:
        milliseconds = seconds * 1000.0
        key = (namespace, service, configuration, revision, code)
        entry = self._requests.get(key)
        if entry is None:
            entry = self._requests[key] = [0.0, 0.0] + [0.0] * (len(LATENCY_BUCKETS_MS) + 1)
        entry[0] += 1
        entry[1] += milliseconds
        entry[2 + bisect_left(LATENCY_BUCKETS_MS, milliseconds)] += 1

    def request_count(self, namespace: str, revision: str, code: int | None = None) -> int:
        """Requests for a revision answered with ``code`` (all codes when None); for tests and logs."""
        return int(
            sum(
                entry[0]
                for (ns, _, _, name, entry_code), entry in self._requests.items()
                if (ns, name) == (namespace, revision) and code in (None, entry_code)
            )
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry) + self._render_requests().encode()

    def _render_requests(self) -> str:
        lines = [
            "# HELP activator_request_count The number of requests that are routed to Activator",
            "# TYPE activator_request_count counter",
        ]
        rows = sorted(self._requests.items())
        labelled = [(self._labels(key), entry) for key, entry in rows]
        lines += [f"activator_request_count{{{labels}}} {_number(entry[0])}" for labels, entry in labelled]
        lines += [
            "# HELP activator_request_latencies The response time in millisecond",
            "# TYPE activator_request_latencies histogram",
        ]
        for labels, entry in labelled:
            cumulative = 0.0
            for bound, in_bucket in zip(LATENCY_BUCKETS_MS, entry[2:]):
                cumulative += in_bucket
                lines.append(f'activator_request_latencies_bucket{{{labels},le="{_number(bound)}"}} {_number(cumulative)}')
            lines.append(f'activator_request_latencies_bucket{{{labels},le="+Inf"}} {_number(entry[0])}')
            lines.append(f"activator_request_latencies_sum{{{labels}}} {_number(entry[1])}")
            lines.append(f"activator_request_latencies_count{{{labels}}} {_number(entry[0])}")
        return "\n".join(lines) + "\n"

    def _labels(self, key: _RequestKey) -> str:
        namespace, service, configuration, revision, code = key
        values = (
            ("namespace_name", namespace),
            ("service_name", service),
            ("configuration_name", configuration),
            ("revision_name", revision),
            ("pod_name", self._pod_name),
            ("container_name", CONTAINER_NAME),
            ("response_code", str(code)),
            ("response_code_class", response_class(code)),
        )
        return ",".join(f'{name}="{_escape(value)}"' for name, value in values)
