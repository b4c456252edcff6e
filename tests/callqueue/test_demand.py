"""The backlog as the autoscaler's demand (pure part)."""

import pytest

from callqueue.demand import revision_demand


@pytest.mark.parametrize(("traffic", "waiting", "replicas", "want"), [
    pytest.param((("fn-00001", 100),), 20, 1, {"fn-00001": 20.0}, id="one revision, one replica"),
    pytest.param((("fn-00001", 100),), 20, 2, {"fn-00001": 10.0}, id="replicas share the report"),
    pytest.param((("fn-00001", 90), ("fn-00002", 10)), 10, 1, {"fn-00001": 9.0, "fn-00002": 1.0}, id="by percent"),
    pytest.param((("fn-00001", 100),), 0, 1, {}, id="nothing waiting: nothing pushed"),
    pytest.param((), 5, 1, {}, id="no traffic yet"),
])
def test_revision_demand(traffic: tuple[tuple[str, int], ...], waiting: int, replicas: int,
                         want: dict[str, float]) -> None:
    stats = revision_demand("ns", traffic, waiting, replicas, "knserve-queue-abc", now=100.0)
    assert {stat.revision: stat.stat.average_concurrent_requests for stat in stats} == want
    assert all(stat.namespace == "ns" and stat.stat.pod_name == "knserve-queue-abc" for stat in stats)
