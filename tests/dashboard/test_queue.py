from __future__ import annotations

import pytest

from dashboard.queue import Backlog, parse_backlogs

TEXT = """\
# HELP knserve_queue_depth Calls accepted and not yet finished
# TYPE knserve_queue_depth gauge
knserve_queue_depth{namespace="default",service="hello"} 12.0
knserve_queue_depth{namespace="team",service="tax"} 0.0
# HELP knserve_queue_oldest_age_seconds Age of the oldest unfinished call
# TYPE knserve_queue_oldest_age_seconds gauge
knserve_queue_oldest_age_seconds{namespace="default",service="hello"} 3.5
# HELP knserve_calls_dead_total Calls that ended dead
# TYPE knserve_calls_dead_total counter
knserve_calls_dead_total{namespace="default",service="hello"} 2.0
"""


def test_parse_backlogs_reads_depth_and_age_per_service():
    assert parse_backlogs(TEXT) == {("default", "hello"): Backlog(depth=12, oldest_age_seconds=3.5),
                                    ("team", "tax"): Backlog(depth=0, oldest_age_seconds=0.0)}


def test_parse_backlogs_refuses_what_is_not_prometheus_text():
    with pytest.raises(ValueError):
        parse_backlogs("knserve_queue_depth{namespace=\"a\" 1 2 3 garbage")
