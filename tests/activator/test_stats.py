"""The activator's time-weighted concurrency and the first-request stat."""

from __future__ import annotations

import pytest

from activator.revisions import RevisionInfo
from activator.stats import ConcurrencyReporter, RequestStats
from knserve.stats_wire import LATENCY_BUCKETS_MS


def test_average_concurrency_is_time_weighted() -> None:
    stats = RequestStats(0.0)
    stats.request_in(0.0)
    stats.request_in(0.5)
    stats.request_out(0.75)
    # 1 request for 0.5 s, 2 for 0.25 s, 1 for 0.25 s -> 1.25 request-seconds over 1 s
    average, requests = stats.report(1.0)
    assert average == pytest.approx(1.25) and requests == 2
    # one request still open for the whole next second
    average, requests = stats.report(2.0)
    assert average == pytest.approx(1.0) and requests == 0


def test_the_first_request_is_reported_at_once_and_not_twice() -> None:
    reporter = ConcurrencyReporter("activator-0")
    first = reporter.request_in("default", "hello-00001", now=0.0)
    assert first is not None
    assert (first.namespace, first.revision) == ("default", "hello-00001")
    assert (first.stat.average_concurrent_requests, first.stat.request_count) == (1.0, 1.0)
    assert reporter.request_in("default", "hello-00001", now=0.1) is None
    reporter.request_out("default", "hello-00001", now=0.5)
    reporter.request_out("default", "hello-00001", now=1.0)
    [message] = reporter.report(now=1.0)
    # 1 request for 0.1 s, 2 for 0.4 s, 1 for 0.5 s = 1.4, less the first request already sent
    assert message.stat.average_concurrent_requests == pytest.approx(0.4)
    assert message.stat.request_count == 1.0


def test_idle_revisions_are_dropped_after_a_silent_report() -> None:
    reporter = ConcurrencyReporter("activator-0")
    reporter.request_in("ns", "r", now=0.0)
    reporter.request_out("ns", "r", now=0.2)
    assert len(reporter.report(now=1.0)) == 1
    [silent] = reporter.report(now=2.0)
    assert silent.stat.average_concurrent_requests == 0.0
    assert reporter.report(now=3.0) == []
    assert reporter.request_in("ns", "r", now=3.5) is not None  # seen first again


def test_a_queued_request_keeps_its_revision_reported() -> None:
    reporter = ConcurrencyReporter("activator-0")
    reporter.request_in("ns", "r", now=0.0)
    for second in range(1, 4):
        [message] = reporter.report(now=float(second))
        assert message.stat.average_concurrent_requests == pytest.approx(0.0 if second == 1 else 1.0)
    assert reporter.concurrency("ns", "r") == 1


def test_answers_the_activator_gave_itself_go_out_with_the_next_report_once() -> None:
    reporter = ConcurrencyReporter("activator-0")
    reporter.request_in("default", "hello-00002", now=0.0)
    reporter.request_in("default", "hello-00002", now=0.0)
    reporter.request_in("default", "hello-00002", now=0.0)
    reporter.request_out("default", "hello-00002", now=0.3, code=504, seconds=0.3)  # 300 ms: le="300"
    reporter.request_out("default", "hello-00002", now=0.3, code=503, seconds=0.002)  # 2 ms: le="5"
    reporter.request_out("default", "hello-00002", now=0.4)  # forwarded: the pod's queue-proxy counts it
    [message] = reporter.report(now=1.0)
    assert message.stat.responses == {"5xx": 2.0}
    counts = list(message.stat.latency_counts)
    assert counts[LATENCY_BUCKETS_MS.index(300.0)] == 1 and counts[0] == 1 and sum(counts) == 2
    reporter.request_in("default", "hello-00002", now=1.5)
    [later] = reporter.report(now=2.0)
    assert later.stat.responses == {} and later.stat.latency_counts == ()


def test_revision_info_reads_the_service_and_configuration_labels() -> None:
    info = RevisionInfo.from_object({
        "metadata": {"name": "hello-00001", "namespace": "default", "labels": {
            "serving.knative.dev/service": "hello", "serving.knative.dev/configuration": "hello"}},
        "spec": {"containers": [{"image": "x"}]},
    })
    assert (info.service, info.configuration) == ("hello", "hello")
