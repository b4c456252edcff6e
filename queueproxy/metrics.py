"""Prometheus metrics of the queue-proxy, named as Knative's queue-proxy names them.

Pure and cheap on the request path: recording is a dict lookup and a few integer
adds; ``render`` writes the Prometheus text format (0.0.4). Names (Knative's, exported
without a ``_total`` suffix as Knative's OpenCensus exporter does):

- ``revision_request_count`` / ``revision_request_latencies`` (ms): every request
  queue-proxy answered, by response code and class;
- ``revision_app_request_count`` / ``revision_app_request_latencies`` (ms): requests that
  reached the app, timed from dispatch to the end of its response;
- ``revision_queue_depth``: requests at the app plus those waiting (only with a limit);
- ``revision_in_flight_requests`` (knserve's own): requests being handled now;
- ``queue_*`` and ``process_uptime``: the autoscaler's view, from the last stats bucket.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from typing import Final

from knserve.stats_wire import LATENCY_BUCKETS_MS, Stat

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(labels: Mapping[str, str]) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items())


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _CodeHistogram:
    """A counter and a latency histogram per response code: [count, sum_ms, bucket...]."""

    __slots__ = ("by_code",)

    def __init__(self) -> None:
        self.by_code: dict[int, list[float]] = {}

    def observe(self, code: int, milliseconds: float) -> int:
        """Count one response; returns its latency bucket's index."""
        entry = self.by_code.get(code)
        if entry is None:
            entry = self.by_code[code] = [0, 0.0] + [0] * (len(LATENCY_BUCKETS_MS) + 1)
        entry[0] += 1
        entry[1] += milliseconds
        bucket = bisect_left(LATENCY_BUCKETS_MS, milliseconds)
        entry[2 + bucket] += 1
        return bucket


class Metrics:
    def __init__(self, *, base_labels: Mapping[str, str]) -> None:
        self._base = _format_labels(base_labels)
        self._requests = _CodeHistogram()
        self._app_requests = _CodeHistogram()
        self.probes = 0

    def record(self, code: int, seconds: float, app_code: int, app_seconds: float) -> int:
        """One answered request; ``app_code`` 0 when it never reached the app. (Inlined: hot path.)

        Returns the index of the request's latency bucket, for the per-second stats.
        """
        milliseconds = seconds * 1000.0
        entry = self._requests.by_code.get(code)
        if entry is None:
            bucket = self._requests.observe(code, milliseconds)
        else:
            entry[0] += 1
            entry[1] += milliseconds
            bucket = bisect_left(LATENCY_BUCKETS_MS, milliseconds)
            entry[2 + bucket] += 1
        if app_code:
            milliseconds = app_seconds * 1000.0
            entry = self._app_requests.by_code.get(app_code)
            if entry is None:
                self._app_requests.observe(app_code, milliseconds)
            else:
                entry[0] += 1
                entry[1] += milliseconds
                entry[2 + bisect_left(LATENCY_BUCKETS_MS, milliseconds)] += 1
        return bucket

    def record_request(self, code: int, seconds: float) -> None:
        self._requests.observe(code, seconds * 1000.0)

    def record_app_request(self, code: int, seconds: float) -> None:
        self._app_requests.observe(code, seconds * 1000.0)

    def request_count(self, code: int | None = None) -> int:
        """Requests answered with ``code`` (all codes when None); for tests and logs."""
        entries = self._requests.by_code
        if code is None:
            return int(sum(entry[0] for entry in entries.values()))
        return int(entries[code][0]) if code in entries else 0

    def render(self, *, queue_depth: int | None, in_flight: int) -> str:
        lines: list[str] = []
        self._render_family(
            lines, "revision_request_count", "revision_request_latencies", self._requests,
            "The number of requests that are routed to queue-proxy",
            "The response time in millisecond",
        )
        self._render_family(
            lines, "revision_app_request_count", "revision_app_request_latencies", self._app_requests,
            "The number of requests that are routed to user-container",
            "The response time in millisecond",
        )
        if queue_depth is not None:
            lines.append("# HELP revision_queue_depth The current number of items in the serving and waiting queue")
            lines.append("# TYPE revision_queue_depth gauge")
            lines.append(f"revision_queue_depth{{{self._base}}} {queue_depth}")
        lines.append("# HELP revision_in_flight_requests The number of requests queue-proxy is handling now")
        lines.append("# TYPE revision_in_flight_requests gauge")
        lines.append(f"revision_in_flight_requests{{{self._base}}} {in_flight}")
        return "\n".join(lines) + "\n"

    def _render_family(
        self, lines: list[str], count_name: str, latency_name: str, histogram: _CodeHistogram,
        count_help: str, latency_help: str,
    ) -> None:
        codes = sorted(histogram.by_code)
        lines.append(f"# HELP {count_name} {count_help}")
        lines.append(f"# TYPE {count_name} counter")
        for code in codes:
            lines.append(f"{count_name}{{{self._code_labels(code)}}} {int(histogram.by_code[code][0])}")
        lines.append(f"# HELP {latency_name} {latency_help}")
        lines.append(f"# TYPE {latency_name} histogram")
        for code in codes:
            entry = histogram.by_code[code]
            labels = self._code_labels(code)
            cumulative = 0
            for bound, in_bucket in zip(LATENCY_BUCKETS_MS, entry[2:]):
                cumulative += int(in_bucket)
                lines.append(f'{latency_name}_bucket{{{labels},le="{_number(bound)}"}} {cumulative}')
            lines.append(f'{latency_name}_bucket{{{labels},le="+Inf"}} {int(entry[0])}')
            lines.append(f"{latency_name}_sum{{{labels}}} {_number(entry[1])}")
            lines.append(f"{latency_name}_count{{{labels}}} {int(entry[0])}")

    def _code_labels(self, code: int) -> str:
        code_labels = f'response_code="{code}",response_code_class="{code // 100}xx"'
        return f"{self._base},{code_labels}" if self._base else code_labels


def render_stat(stat: Stat, *, base_labels: Mapping[str, str]) -> str:
    """The autoscaler's gauges in Prometheus text, as Knative's queue-proxy serves them on 9090."""
    labels = _format_labels(base_labels)
    values = (
        ("queue_requests_per_second", "Number of requests received since last Stat", stat.request_count),
        ("queue_proxied_operations_per_second", "Number of proxied requests received since last Stat",
         stat.proxied_request_count),
        ("queue_average_concurrent_requests", "Number of requests currently being handled by this pod",
         stat.average_concurrent_requests),
        ("queue_average_proxied_concurrent_requests",
         "Number of proxied requests currently being handled by this pod", stat.average_proxied_concurrent_requests),
        ("process_uptime", "The number of seconds that the process has been up", stat.process_uptime),
    )
    lines: list[str] = []
    for name, help_text, value in values:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{{{labels}}} {_number(value)}"]
    return "\n".join(lines) + "\n"
