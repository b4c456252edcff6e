"""Which non-active Revisions the garbage collector deletes (config-gc)."""

from __future__ import annotations

import datetime

import pytest

from serving.apis.v1 import Revision
from serving.config.gc import GCConfig
from serving.reconciler.gc.resources.policy import decide
from tests.support.factories import revision, with_annotations, with_labels

NOW = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
HOUR = 3600.0


def rev(name: str, state: str = "reserve", *, created_hours_ago: float, active_hours_ago: float | None = None,
        no_gc: bool = False) -> Revision:
    obj = revision(name, with_labels({"serving.knative.dev/routingState": state}))
    obj["metadata"]["creationTimestamp"] = (NOW - datetime.timedelta(hours=created_hours_ago)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    if active_hours_ago is not None:
        with_annotations({"serving.knative.dev/routingStateModified": (
            NOW - datetime.timedelta(hours=active_hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")})(obj)
    if no_gc:
        with_annotations({"serving.knative.dev/no-gc": "true"})(obj)
    return Revision.model_validate(obj)


OLD = dict(created_hours_ago=100, active_hours_ago=50)


@pytest.mark.parametrize(
    ("revisions", "latest_ready", "config", "want_delete"),
    [
        pytest.param([rev("r1", **OLD), rev("r2", **OLD)], "r2", GCConfig(min_non_active_revisions=0), ("r1",),
                     id="stale reserve revision goes, latest ready stays"),
        pytest.param([rev("r1", **OLD), rev("r2", **OLD)], "r2", GCConfig(), (),
                     id="at or below min in all: nothing"),
        pytest.param([rev("r1", "active", **OLD), rev("r2", "pending", **OLD), rev("r3", **OLD)], "r3",
                     GCConfig(min_non_active_revisions=0), (), id="active and pending are kept"),
        pytest.param([rev("r1", created_hours_ago=100, active_hours_ago=1), rev("r2", **OLD)], "r2",
                     GCConfig(min_non_active_revisions=0), (), id="recently active is kept"),
        pytest.param([rev("r1", created_hours_ago=10), rev("r2", **OLD)], "r2",
                     GCConfig(min_non_active_revisions=0), (), id="recently created is kept"),
        pytest.param([rev("r1", **OLD, no_gc=True), rev("r2", **OLD)], "r2",
                     GCConfig(min_non_active_revisions=0), (), id="no-gc annotation"),
        pytest.param([rev(f"r{i}", created_hours_ago=1, active_hours_ago=i) for i in range(1, 6)], "r0",
                     GCConfig(min_non_active_revisions=0, max_non_active_revisions=2), ("r3", "r4", "r5"),
                     id="past max, the least recently active go"),
        pytest.param([rev(f"r{i}", created_hours_ago=100, active_hours_ago=40 + i) for i in range(1, 5)], "r0",
                     GCConfig(min_non_active_revisions=2), ("r4", "r3"), id="min keeps the most recently active"),
        pytest.param([rev("r1", **OLD), rev("r2", **OLD)], "r2",
                     GCConfig(None, None, 0, None), (), id="everything disabled"),
    ],
)
def test_decide(revisions: list[Revision], latest_ready: str, config: GCConfig, want_delete: tuple[str, ...]) -> None:
    assert decide(revisions, latest_ready=latest_ready, config=config, now=NOW).delete == want_delete


def test_recheck_when_the_next_revision_turns_stale() -> None:
    revisions = [rev("r1", created_hours_ago=100, active_hours_ago=14), rev("r2", **OLD)]
    decision = decide(revisions, latest_ready="r2", config=GCConfig(min_non_active_revisions=0), now=NOW)
    assert decision.delete == ()
    assert decision.recheck_after == pytest.approx(HOUR)


