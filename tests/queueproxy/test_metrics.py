"""Prometheus text of the queue-proxy metrics."""

from __future__ import annotations

from knserve.stats_wire import LATENCY_BUCKETS_MS, Stat
from queueproxy.metrics import Metrics, render_stat


def test_counts_and_histograms_by_code() -> None:
    metrics = Metrics(base_labels={"namespace_name": "ns", "revision_name": "r"})
    metrics.record(200, 0.003, 200, 0.002)
    metrics.record(200, 0.050, 200, 0.045)
    metrics.record(503, 0.0001, 0, 0.0)
    text = metrics.render(queue_depth=4, in_flight=2)
    lines = text.splitlines()
    assert 'revision_request_count{namespace_name="ns",revision_name="r",response_code="200",response_code_class="2xx"} 2' in lines
    assert 'revision_request_count{namespace_name="ns",revision_name="r",response_code="503",response_code_class="5xx"} 1' in lines
    assert 'revision_app_request_count{namespace_name="ns",revision_name="r",response_code="200",response_code_class="2xx"} 2' in lines
    assert not any(line.startswith("revision_app_request_count") and "503" in line for line in lines)
    assert 'revision_request_latencies_bucket{namespace_name="ns",revision_name="r",response_code="200",response_code_class="2xx",le="5"} 1' in lines
    assert 'revision_request_latencies_bucket{namespace_name="ns",revision_name="r",response_code="200",response_code_class="2xx",le="60"} 2' in lines
    assert 'revision_request_latencies_bucket{namespace_name="ns",revision_name="r",response_code="200",response_code_class="2xx",le="+Inf"} 2' in lines
    assert 'revision_queue_depth{namespace_name="ns",revision_name="r"} 4' in lines
    assert 'revision_in_flight_requests{namespace_name="ns",revision_name="r"} 2' in lines
    assert "# TYPE revision_request_latencies histogram" in lines
    assert metrics.request_count() == 3 and metrics.request_count(503) == 1


def test_queue_depth_left_out_without_a_limit() -> None:
    assert "revision_queue_depth" not in Metrics(base_labels={}).render(queue_depth=None, in_flight=0)


def test_label_values_are_escaped() -> None:
    text = Metrics(base_labels={"pod_name": 'a"b\\c'}).render(queue_depth=None, in_flight=0)
    assert 'pod_name="a\\"b\\\\c"' in text


def test_autoscaler_gauges() -> None:
    stat = Stat(pod_name="p", average_concurrent_requests=1.5, average_proxied_concurrent_requests=0.5,
                request_count=10, proxied_request_count=2, process_uptime=12.25, timestamp=1000.0)
    text = render_stat(stat, base_labels={"pod_name": "p"})
    assert 'queue_average_concurrent_requests{pod_name="p"} 1.5' in text
    assert 'queue_requests_per_second{pod_name="p"} 10' in text
    assert 'process_uptime{pod_name="p"} 12.25' in text


def test_record_returns_the_latency_bucket_of_the_total_time() -> None:
    metrics = Metrics(base_labels={})
    assert metrics.record(200, 0.003, 200, 0.002) == 0  # 3 ms: le="5"
    assert metrics.record(200, 0.003, 200, 0.002) == 0  # the inlined path for a code seen before
    assert metrics.record(500, 0.070, 500, 0.060) == 5  # 70 ms: le="80"
    assert metrics.record(200, 200.0, 0, 0.0) == len(LATENCY_BUCKETS_MS)  # past the last bound: +Inf
