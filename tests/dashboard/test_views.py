from __future__ import annotations

import datetime

import pytest

from dashboard import views
from knserve.request_metrics import SecondSample
from tests.dashboard.factories import entry, revision, service

NOW = datetime.datetime(2026, 1, 1, 0, 10, tzinfo=datetime.UTC)


def test_a_row_sums_the_revisions_requests_and_errors():
    row = views.service_row(
        service(latest="hello-2"), [revision("hello-1", actual=2), revision("hello-2", actual=1)],
        {"hello-1": entry("hello-1", requests=60, errors=6, p50=5, p99=50),
         "hello-2": entry("hello-2", requests=120, p50=2, p99=9), "other-1": entry("other-1", requests=600)})
    assert row.url == "http://hello.default.example.com"
    assert row.latest_revision == "hello-2"
    assert row.traffic == views.Traffic(requests_per_second=3.0, error_rate=6 / 180, p50_ms=2, p99_ms=9,
                                        latency_of="hello-2")
    assert row.pods == 3


def test_a_row_without_metrics_has_no_data_rather_than_zeros():
    row = views.service_row(service(ready="False", reason="RevisionMissing"), [revision("hello-1", actual=None)], None)
    assert row.traffic == views.Traffic()
    assert (row.ready, row.reason, row.pods) == ("False", "RevisionMissing", None)


def test_a_revision_without_requests_has_no_latency_or_error_rate():
    row = views.service_row(service(), [revision("hello-1")], {"hello-1": entry("hello-1", requests=0)})
    assert row.traffic == views.Traffic(requests_per_second=0.0)


@pytest.mark.parametrize("search, number, want_names, want_page", [
    pytest.param("", 1, ["svc-000", "svc-001"], (1, 3, 5), id="first page"),
    pytest.param("", 3, ["svc-004"], (3, 3, 5), id="last page"),
    pytest.param("", 9, ["svc-004"], (3, 3, 5), id="past the end is the last page"),
    pytest.param("SVC-00", 0, ["svc-000", "svc-001"], (1, 3, 5), id="case-insensitive, before the start"),
    pytest.param("003", 1, ["svc-003"], (1, 1, 1), id="search"),
    pytest.param("nothing", 1, [], (1, 1, 0), id="no match"),
])
def test_page_of_services(search, number, want_names, want_page):
    services = [service(f"svc-{index:03}") for index in reversed(range(5))]
    page = views.page_of_services(services, search=search, number=number, size=2)
    assert [item["metadata"]["name"] for item in page.items] == want_names
    assert (page.number, page.pages, page.total) == want_page


def test_revision_views_show_shares_tags_and_who_can_be_rolled_back_to():
    current = service(latest="hello-2", status_traffic=[
        {"revisionName": "hello-1", "percent": 80, "tag": "stable"},
        {"latestRevision": True, "revisionName": "hello-2", "percent": 20},
        {"revisionName": "hello-2", "percent": 0, "tag": "canary"}])
    revisions = [revision("hello-1", created="2026-01-01T00:00:00Z"),
                 revision("hello-2", created="2026-01-01T00:05:00Z"),
                 revision("hello-3", created="2026-01-01T00:09:30Z", ready="False")]
    shown = views.revision_views(current, revisions, {"hello-2": entry("hello-2", requests=30)}, NOW)
    assert [(view.name, view.percent, view.tags, view.latest_ready, view.can_roll_back, view.created)
            for view in shown] == [
        ("hello-3", 0, (), False, False, "30s"),
        ("hello-2", 20, ("canary",), True, True, "5m"),
        ("hello-1", 80, ("stable",), False, True, "10m"),
    ]
    assert shown[1].traffic.requests_per_second == 0.5 and shown[2].traffic == views.Traffic()


def test_the_only_revision_taking_traffic_offers_no_rollback_to_itself():
    current = service(latest="hello-1", status_traffic=[{"revisionName": "hello-1", "percent": 100}])
    assert not views.revision_views(current, [revision("hello-1")], None, NOW)[0].can_roll_back


def test_canary_view_reads_status_canary_and_the_condition():
    current = service(conditions=[{"type": "CanaryReady", "status": "Unknown", "reason": "Progressing"}], canary={
        "revisionName": "hello-2", "previousRevisionName": "hello-1", "phase": "Progressing", "percent": 25,
        "steps": [5, 25, 50], "stepStartedAt": "2026-01-01T00:09:00Z", "message": "step 2 of 3",
        "lastAnalysis": {"requests": 120, "errorRate": 0.01, "p99Ms": 42.5, "at": "2026-01-01T00:09:50Z",
                         "previousRequests": 2000, "previousErrorRate": 0.0, "previousP99Ms": 12}})
    assert views.canary_view(current) == views.CanaryView(
        state="Unknown", reason="Progressing", message="step 2 of 3", revision="hello-2", previous_revision="hello-1",
        phase="Progressing", percent=25, steps=(5, 25, 50), step_started_at="2026-01-01T00:09:00Z",
        last_requests=120.0, last_error_rate=0.01, last_p99_ms=42.5, last_at="2026-01-01T00:09:50Z",
        previous_requests=2000.0, previous_error_rate=0.0, previous_p99_ms=12.0)


def test_no_canary_analysis_is_none():
    assert views.canary_view(service()) is None


def test_event_views_keep_the_services_own_newest_first():
    events = [
        {"type": "Normal", "reason": "Created", "message": "made", "lastTimestamp": "2026-01-01T00:01:00Z",
         "involvedObject": {"kind": "Revision", "name": "hello-1"}},
        {"type": "Warning", "reason": "Failed", "message": "broke", "count": 3, "lastTimestamp": "2026-01-01T00:09:00Z",
         "involvedObject": {"kind": "Service", "name": "hello"}},
        {"type": "Normal", "reason": "Other", "message": "not ours", "lastTimestamp": "2026-01-01T00:09:59Z",
         "involvedObject": {"kind": "Service", "name": "other"}},
    ]
    shown = views.event_views(events, {"hello", "hello-1"}, NOW)
    assert [(view.reason, view.object, view.count, view.last_seen) for view in shown] == [
        ("Failed", "Service/hello", 3, "1m"), ("Created", "Revision/hello-1", 1, "9m")]


def test_chart_frame_aligns_each_revisions_seconds_on_one_axis():
    series = (SecondSample(t=97.0, requests=4, errors=1, p50_ms=3, p99_ms=30, concurrency=1),
              SecondSample(t=99.0, requests=6, errors=0, p50_ms=2, p99_ms=20, concurrency=1))
    history = views.ReplicaHistory()
    frame = views.chart_frame(["hello-1", "hello-2"], {"hello-2": entry("hello-2", series=series, ready_pods=2)},
                              now=100.4, seconds=4, replicas=history, actual_replicas={"hello-1": 1, "hello-2": 0})
    assert frame["t"] == [96.0, 97.0, 98.0, 99.0]
    assert frame["charts"]["requests"] == {"hello-1": [None] * 4, "hello-2": [None, 4, None, 6]}
    assert frame["charts"]["errors"]["hello-2"] == [None, 1, None, 0]
    assert frame["charts"]["p99"]["hello-2"] == [None, 30, None, 20]
    assert frame["pods"] == {"hello-1": 1, "hello-2": 2}  # the autoscaler's count first, else the Revision's
    assert frame["noData"] is None
    later = views.chart_frame(["hello-1", "hello-2"], None, now=103.0, seconds=4, replicas=history,
                              actual_replicas={"hello-1": 1, "hello-2": 3})
    assert later["charts"]["replicas"]["hello-2"] == [2.0, 2.0, 2.0, 3.0] and later["t"][0] == 99.0
    assert later["noData"] == "no data: the autoscaler's request metrics API did not answer"
