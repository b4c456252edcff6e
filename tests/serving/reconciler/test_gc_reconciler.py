"""The garbage collector against the fake API server."""

from __future__ import annotations

from kube.resources import CONFIGMAPS, CONFIGURATIONS, REVISIONS
from tests.serving.reconciler.harness import reconcile_once
from tests.support.factories import (
    configuration,
    deleting,
    ready,
    revision,
    revision_of,
    with_annotations,
    with_labels,
    with_status,
)

CONFIG = configuration("hello", ready, with_status(latestReadyRevisionName="hello-00003"))
GC_NOW_ZERO = {"metadata": {"name": "config-gc", "namespace": "knative-serving"},
               "data": {"min-non-active-revisions": "0", "retain-since-create-time": "1h",
                        "retain-since-last-active-time": "1h"}}


def reserve(name: str, generation: int) -> dict:
    return revision(name, revision_of("hello", generation), with_labels({"serving.knative.dev/routingState": "reserve"}),
                    with_annotations({"serving.knative.dev/routingStateModified": "2025-12-01T00:00:00Z"}))


async def test_guard_rows() -> None:
    for objects, key in (([], "default/missing"), ([(CONFIGURATIONS, configuration("hello", deleting))], "default/hello")):
        outcome = await reconcile_once(objects, "gc", key)
        assert outcome.fake.actions == []


async def test_stale_reserve_revisions_are_deleted_per_config_gc() -> None:
    outcome = await reconcile_once(
        [(CONFIGMAPS, GC_NOW_ZERO), (CONFIGURATIONS, CONFIG), (REVISIONS, reserve("hello-00001", 1)),
         (REVISIONS, reserve("hello-00002", 2)), (REVISIONS, revision("hello-00003", revision_of("hello", 3), ready))],
        "gc", "default/hello")
    assert outcome.writes("delete") == ["revisions default/hello-00001", "revisions default/hello-00002"]
    assert outcome.events == ['Normal Deleted Deleted stale Revision "hello-00001"',
                              'Normal Deleted Deleted stale Revision "hello-00002"']


async def test_default_config_gc_keeps_twenty() -> None:
    outcome = await reconcile_once(
        [(CONFIGURATIONS, CONFIG), (REVISIONS, reserve("hello-00001", 1)), (REVISIONS, reserve("hello-00002", 2))],
        "gc", "default/hello")
    assert outcome.writes("delete") == []
