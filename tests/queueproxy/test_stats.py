"""Per-second time-weighted concurrency, fed explicit times."""

from __future__ import annotations

import json

import pytest

from knserve.stats_wire import LATENCY_COUNTS_LENGTH, encode_stat
from queueproxy.stats import RequestStats

START = 1_000.0  # whole second, so buckets line up with the arithmetic below


def test_constant_concurrency_averages_to_itself() -> None:
    stats = RequestStats(pod_name="p", now=START)
    for _ in range(3):
        stats.request_in(START, False)
    stat = stats.report(START + 1.0)
    assert stat.average_concurrent_requests == pytest.approx(3.0)
    assert stat.request_count == 3
    assert stat.timestamp == START + 1.0


def test_time_weighting_within_a_second() -> None:
    stats = RequestStats(pod_name="p", now=START)
    stats.request_in(START + 0.0, False)
    stats.request_in(START + 0.5, True)  # 2 in flight for the second half
    stats.request_out(START + 0.75, False)  # back to 1 for the last quarter
    stat = stats.report(START + 1.2)
    # 1*0.5 + 2*0.25 + 1*0.25 = 1.25
    assert stat.average_concurrent_requests == pytest.approx(1.25)
    assert stat.average_proxied_concurrent_requests == pytest.approx(0.5)  # proxied one from 0.5 to 1.0
    assert (stat.request_count, stat.proxied_request_count) == (2, 1)


def test_each_report_covers_the_last_whole_second_only() -> None:
    stats = RequestStats(pod_name="p", now=START)
    stats.request_in(START + 0.1, False)
    stats.request_out(START + 0.6, False)
    first = stats.report(START + 1.01)
    assert first.average_concurrent_requests == pytest.approx(0.5)
    assert first.request_count == 1
    second = stats.report(START + 2.01)
    assert second.average_concurrent_requests == 0 and second.request_count == 0


def test_idle_seconds_report_the_steady_concurrency() -> None:
    stats = RequestStats(pod_name="p", now=START)
    stats.request_in(START + 0.5, False)  # a long request that never ends
    stat = stats.report(START + 5.5)
    assert stat.average_concurrent_requests == pytest.approx(1.0)
    assert stat.request_count == 0
    assert stat.timestamp == START + 5.0


def test_wire_format_keys_and_uptime() -> None:
    stats = RequestStats(pod_name="pod-a", now=START)
    wire = json.loads(encode_stat(stats.report(START + 3.0)))
    assert wire == {
        "podName": "pod-a", "averageConcurrentRequests": 0.0, "averageProxiedConcurrentRequests": 0.0,
        "requestCount": 0.0, "proxiedRequestCount": 0.0, "processUptime": 3.0, "timestamp": START + 3.0,
    }


def test_first_partial_second_is_averaged_over_the_time_alive() -> None:
    stats = RequestStats(pod_name="p", now=START + 0.5)
    stats.request_in(START + 0.5, False)
    assert stats.report(START + 1.0).average_concurrent_requests == pytest.approx(1.0)


def test_responses_by_class_and_latency_bucket_of_the_last_second() -> None:
    stats = RequestStats(pod_name="p", now=START)
    for _ in range(3):
        stats.request_in(START + 0.1, False)
    stats.request_out(START + 0.2, False, 200, 0)
    stats.request_out(START + 0.3, False, 200, 6)
    stats.request_out(START + 0.4, True, 503, LATENCY_COUNTS_LENGTH - 1)
    stat = stats.report(START + 1.5)
    assert stat.responses == {"2xx": 2.0, "5xx": 1.0}
    want = [0.0] * LATENCY_COUNTS_LENGTH
    want[0], want[6], want[-1] = 1.0, 1.0, 1.0
    assert stat.latency_counts == tuple(want)
    wire = json.loads(encode_stat(stat))
    assert wire["responses"] == {"2xx": 2.0, "5xx": 1.0}
    assert wire["latencyCounts"] == want
    later = stats.report(START + 2.5)  # the next second saw no responses
    assert later.responses == {} and later.latency_counts == ()


def test_responses_are_counted_in_the_second_they_end() -> None:
    stats = RequestStats(pod_name="p", now=START)
    stats.request_in(START + 0.9, False)
    stats.request_out(START + 1.2, False, 404, 3)
    assert stats.report(START + 1.5).responses == {}
    assert stats.report(START + 2.5).responses == {"4xx": 1.0}


def test_a_request_ended_without_a_code_is_not_a_response() -> None:
    stats = RequestStats(pod_name="p", now=START)
    stats.request_in(START + 0.1, False)
    stats.request_out(START + 0.2, False)
    assert stats.report(START + 1.5).responses == {}
