"""Route reconciler table: traffic, status, rollout, routing state and the ingress model."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import pytest

from kube.resources import CONFIGURATIONS, ENDPOINT_SLICES, KUBE_SERVICES, REVISIONS, ROUTES, Resource
from serving.reconciler.route.ingress_state import LatestModelSink
from serving.reconciler.route.resources.rollout import ConfigurationRollout, Rollout
from serving.xds.model import Endpoint, RevisionBackend, Split
from tests.serving.reconciler.harness import NOW, assert_status, reconcile_once
from tests.support.factories import (
    configuration,
    deleting,
    ready,
    revision,
    revision_of,
    route,
    with_annotations,
    with_labels,
    with_status,
    with_traffic,
)

LATEST = {"configurationName": "hello", "latestRevision": True, "percent": 100}
CONFIG = configuration("hello", ready, with_status(latestReadyRevisionName="hello-00002",
                                                   latestCreatedRevisionName="hello-00002"))
R1 = revision("hello-00001", revision_of("hello", 1), ready)
R2 = revision("hello-00002", revision_of("hello", 2), ready)
SLICE = {"metadata": {"name": "hello-00002-x", "namespace": "default",
                      "labels": {"kubernetes.io/service-name": "hello-00002",
                                 "serving.knative.dev/revision": "hello-00002"}},
         "endpoints": [{"addresses": ["10.1.0.7"], "conditions": {"ready": True}}]}
OLD_TRAFFIC = [{"revisionName": "hello-00001", "latestRevision": False, "percent": 100}]


def previous_rollout(target: str, percent: int = 100) -> str:
    return Rollout((ConfigurationRollout("hello", percent, target),)).to_json()


@dataclasses.dataclass
class Row:
    objects: list[tuple[Resource, dict[str, Any]]]
    key: str = "default/hello"
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    patches: list[str] = dataclasses.field(default_factory=list)
    requeue: float | None = None


ROWS = [
    pytest.param(Row([], key="default/missing"), id="missing key"),
    pytest.param(Row([(ROUTES, route("hello", deleting, with_traffic(LATEST)))]), id="deleted object"),
    pytest.param(Row(
        [(ROUTES, route("hello", with_traffic(LATEST))), (CONFIGURATIONS, CONFIG), (REVISIONS, R1),
         (REVISIONS, R2), (ENDPOINT_SLICES, SLICE)],
        status={"Ready": ("True",), "AllTrafficAssigned": ("True",), "IngressReady": ("True",),
                "url": "http://hello.default.example.com",
                "address": {"url": "http://hello.default.svc.cluster.local"},
                "traffic": [{"revisionName": "hello-00002", "latestRevision": True, "percent": 100}]},
        patches=["revisions default/hello-00002", "configurations default/hello"],
    ), id="latest ready revision gets all traffic"),
    pytest.param(Row(
        [(ROUTES, route("hello", with_traffic(
            {"revisionName": "hello-00001", "percent": 50, "tag": "current"},
            {"configurationName": "hello", "latestRevision": True, "percent": 50, "tag": "candidate"}))),
         (CONFIGURATIONS, CONFIG), (REVISIONS, R1), (REVISIONS, R2)],
        status={"Ready": ("True",), "traffic": [
            {"tag": "current", "revisionName": "hello-00001", "latestRevision": False, "percent": 50,
             "url": "http://current-hello.default.example.com"},
            {"tag": "candidate", "revisionName": "hello-00002", "latestRevision": True, "percent": 50,
             "url": "http://candidate-hello.default.example.com"}]},
        patches=["revisions default/hello-00001", "revisions default/hello-00002", "configurations default/hello"],
    ), id="tagged split"),
    pytest.param(Row(
        [(ROUTES, route("hello", with_traffic({"revisionName": "hello-00009", "percent": 100}),
                        with_status(traffic=OLD_TRAFFIC))), (REVISIONS, R1)],
        status={"Ready": ("False", "RevisionMissing"),
                "AllTrafficAssigned": ("False", "RevisionMissing",
                                       'Revision "hello-00009" referenced in traffic not found.'),
                "traffic": OLD_TRAFFIC},
    ), id="missing revision keeps the previous traffic"),
    pytest.param(Row(
        [(ROUTES, route("hello", with_labels({"serving.knative.dev/service": "hello"}),
                        with_traffic({"revisionName": "other-00001", "percent": 100}),
                        with_status(traffic=OLD_TRAFFIC))), (REVISIONS, R1),
         (REVISIONS, revision("other-00001", ready, with_labels({"serving.knative.dev/service": "other"})))],
        status={"Ready": ("False", "RevisionNotOwned"),
                "AllTrafficAssigned": ("False", "RevisionNotOwned",
                                       'Revision "other-00001" belongs to Service "other", not Service "hello".'),
                "traffic": OLD_TRAFFIC},
    ), id="revision of another service is not owned"),
    pytest.param(Row(
        [(ROUTES, route("hello", with_traffic({"configurationName": "nope", "percent": 100}))), (REVISIONS, R1)],
        status={"AllTrafficAssigned": ("False", "ConfigurationMissing",
                                       'Configuration "nope" referenced in traffic not found.')},
    ), id="missing configuration"),
    pytest.param(Row(
        [(ROUTES, route("hello", with_traffic({"revisionName": "hello-00003", "percent": 100}))),
         (REVISIONS, revision("hello-00003", revision_of("hello", 3)))],
        status={"AllTrafficAssigned": ("Unknown", "RevisionMissing", 'Revision "hello-00003" is not yet ready.')},
    ), id="revision not ready yet"),
    pytest.param(Row(
        [(ROUTES, route("hello", with_traffic(LATEST), with_annotations({"serving.knative.dev/rollout-duration": "99s"}),
                        with_status(traffic=[{"revisionName": "hello-00001", "latestRevision": True, "percent": 100}],
                                    annotations={"serving.knative.dev/rollout": previous_rollout("hello-00001")}))),
         (CONFIGURATIONS, CONFIG), (REVISIONS, R1), (REVISIONS, R2)],
        status={"Ready": ("Unknown", "RolloutInProgress"), "IngressReady": ("Unknown", "RolloutInProgress"),
                "traffic": [{"revisionName": "hello-00001", "latestRevision": False, "percent": 99},
                            {"revisionName": "hello-00002", "latestRevision": True, "percent": 1}]},
        patches=["revisions default/hello-00001", "revisions default/hello-00002", "configurations default/hello"],
        requeue=1.0,
    ), id="gradual rollout starts at 1%"),
    pytest.param(Row(
        [(ROUTES, route("hello", with_traffic(LATEST))), (CONFIGURATIONS, CONFIG), (REVISIONS, R2),
         (REVISIONS, revision("hello-00001", revision_of("hello", 1), ready,
                              with_labels({"serving.knative.dev/routingState": "active"}),
                              with_annotations({"serving.knative.dev/routes": "hello"})))],
        status={"Ready": ("True",)},
        patches=["revisions default/hello-00001", "revisions default/hello-00002", "configurations default/hello"],
    ), id="revision that left the traffic goes to reserve"),
]


@pytest.mark.parametrize("row", ROWS)
async def test_route_reconciler(row: Row) -> None:
    outcome = await reconcile_once(row.objects, "route", row.key)
    assert outcome.error is None, outcome.error
    assert outcome.writes("patch") == row.patches
    assert outcome.result == (pytest.approx(row.requeue) if row.requeue is not None else None)
    if row.status:
        assert_status(outcome, ROUTES, "hello", row.status)
    else:
        assert outcome.fake.actions == []


async def test_ingress_model_and_routing_state() -> None:
    outcome = await reconcile_once(
        [(ROUTES, route("hello", with_traffic(LATEST))), (CONFIGURATIONS, CONFIG), (REVISIONS, R2),
         (ENDPOINT_SLICES, SLICE)], "route", "default/hello")
    model = outcome.sink.model
    assert [(rule.hosts[0], rule.splits) for rule in model.rules] == [
        ("hello.default.example.com", (Split("hello-00002", "default", 100),)),
        ("hello.default.svc.cluster.local", (Split("hello-00002", "default", 100),)),
    ]
    assert model.backends == (RevisionBackend("default", "hello-00002", (Endpoint("10.1.0.7", 8012),)),)
    labelled = outcome.get(REVISIONS, "hello-00002")["metadata"]
    assert labelled["labels"]["serving.knative.dev/routingState"] == "active"
    assert labelled["annotations"]["serving.knative.dev/routes"] == "hello"
    assert labelled["annotations"]["serving.knative.dev/routingStateModified"] == "2026-01-02T00:00:00Z"


async def test_missing_target_keeps_serving_the_previous_traffic() -> None:
    outcome = await reconcile_once(
        [(ROUTES, route("hello", with_traffic({"revisionName": "hello-00009", "percent": 100}),
                        with_status(traffic=OLD_TRAFFIC))), (REVISIONS, R1)], "route", "default/hello")
    assert [rule.splits for rule in outcome.sink.model.rules] == [(Split("hello-00001", "default", 100),)] * 2


async def test_rollout_completes_after_the_duration() -> None:
    import datetime

    started = NOW - datetime.timedelta(seconds=120)
    rolling = Rollout((ConfigurationRollout("hello", 100, "hello-00002", (("hello-00001", 100),),
                                            started.timestamp(), 99.0),)).to_json()
    outcome = await reconcile_once(
        [(ROUTES, route("hello", with_traffic(LATEST), with_status(annotations={"serving.knative.dev/rollout": rolling}))),
         (CONFIGURATIONS, CONFIG), (REVISIONS, R1), (REVISIONS, R2)], "route", "default/hello")
    assert_status(outcome, ROUTES, "hello", {
        "Ready": ("True",), "traffic": [{"revisionName": "hello-00002", "latestRevision": True, "percent": 100}]})
    assert outcome.result is None


async def test_route_without_traffic_is_ready_with_no_rules() -> None:
    outcome = await reconcile_once([(ROUTES, route("hello"))], "route", "default/hello")
    assert_status(outcome, ROUTES, "hello", {"Ready": ("True",), "traffic": []})
    assert outcome.sink.model.rules == ()


async def test_revision_that_left_the_traffic_is_reserve_and_forgets_the_route() -> None:
    previously_routed = revision("hello-00001", revision_of("hello", 1), ready,
                                 with_labels({"serving.knative.dev/routingState": "active"}),
                                 with_annotations({"serving.knative.dev/routes": "hello"}))
    outcome = await reconcile_once([(ROUTES, route("hello", with_traffic(LATEST))), (CONFIGURATIONS, CONFIG),
                                    (REVISIONS, R2), (REVISIONS, previously_routed)], "route", "default/hello")
    metadata = outcome.get(REVISIONS, "hello-00001")["metadata"]
    assert metadata["labels"]["serving.knative.dev/routingState"] == "reserve"
    assert "serving.knative.dev/routes" not in metadata["annotations"]
    assert metadata["annotations"]["serving.knative.dev/routingStateModified"] == "2026-01-02T00:00:00Z"


class NotYetServed(LatestModelSink):
    """A data plane that has confirmed nothing yet: a restarted controller's before Envoy's ACK."""

    async def served(self, route_key: str, generation: int) -> None:
        await asyncio.sleep(3600)


async def served_route() -> dict[str, Any]:
    """Route hello as a controller that saw it served left it."""
    outcome = await reconcile_once([(ROUTES, route("hello", with_traffic(LATEST))), (CONFIGURATIONS, CONFIG),
                                    (REVISIONS, R1), (REVISIONS, R2), (ENDPOINT_SLICES, SLICE)], "route", "default/hello")
    assert_status(outcome, ROUTES, "hello", {"Ready": ("True",)})
    return outcome.get(ROUTES, "hello")


def status_writes(outcome: Any) -> list[str]:
    return [action.name for action in outcome.fake.actions if action.verb == "update_status"]


async def test_a_restarted_controller_keeps_an_unchanged_route_ready() -> None:
    outcome = await reconcile_once([(ROUTES, await served_route()), (CONFIGURATIONS, CONFIG), (REVISIONS, R1),
                                    (REVISIONS, R2), (ENDPOINT_SLICES, SLICE)], "route", "default/hello",
                                   sink=NotYetServed())
    assert_status(outcome, ROUTES, "hello", {"Ready": ("True",), "IngressReady": ("True",)})
    assert status_writes(outcome) == []


async def test_a_restarted_controller_waits_for_the_data_plane_when_the_traffic_changed() -> None:
    moved = configuration("hello", ready, with_status(latestReadyRevisionName="hello-00003",
                                                      latestCreatedRevisionName="hello-00003"))
    r3 = revision("hello-00003", revision_of("hello", 3), ready)
    outcome = await reconcile_once([(ROUTES, await served_route()), (CONFIGURATIONS, moved), (REVISIONS, R2),
                                    (REVISIONS, r3)], "route", "default/hello", sink=NotYetServed())
    assert_status(outcome, ROUTES, "hello", {
        "IngressReady": ("Unknown", "Uninitialized"), "Ready": ("Unknown",),
        "traffic": [{"revisionName": "hello-00003", "latestRevision": True, "percent": 100}]})


async def test_a_restarted_controller_waits_for_the_data_plane_when_the_spec_changed() -> None:
    changed = await served_route()
    changed["metadata"]["generation"] = 2
    outcome = await reconcile_once([(ROUTES, changed), (CONFIGURATIONS, CONFIG), (REVISIONS, R2)],
                                   "route", "default/hello", sink=NotYetServed())
    assert_status(outcome, ROUTES, "hello", {"IngressReady": ("Unknown", "Uninitialized"), "Ready": ("Unknown",)})


class ServesUpTo(LatestModelSink):
    """A data plane that has served the Route's rules up to ``generation`` and nothing newer yet."""

    def __init__(self, generation: int) -> None:
        super().__init__()
        self.generation = generation
        self._more = asyncio.Event()

    async def served(self, route_key: str, generation: int) -> None:
        while generation > self.generation:
            self._more.clear()
            await self._more.wait()

    def serve(self, generation: int) -> None:
        self.generation = generation
        self._more.set()


async def test_within_one_generation_a_traffic_move_waits_for_the_data_plane() -> None:
    # The Route's spec never changes (latestRevision: true); what it publishes does, once the
    # Configuration's latest ready revision moves. Ready must wait for Envoy to serve it.
    from knserve.clock import FakeClock
    from kube.events import RecordingEvents
    from kube.fake import FakeKubeClient
    from serving.app import ControllerApp
    from tests.serving.reconciler.harness import Outcome

    first = configuration("hello", ready, with_status(latestReadyRevisionName="hello-00001",
                                                      latestCreatedRevisionName="hello-00001"))
    fake = FakeKubeClient([(ROUTES, route("hello", with_traffic(LATEST))), (CONFIGURATIONS, first),
                           (REVISIONS, R1), (REVISIONS, R2)])
    sink = ServesUpTo(1)
    app = ControllerApp(fake, events=RecordingEvents(), clock=FakeClock(NOW), ingress_sink=sink)
    informers = asyncio.create_task(app.informers.run())
    try:
        await app.informers.wait_synced()
        routes = app.controller("route").loop
        await routes.reconcile("default/hello")
        outcome = Outcome(fake, [], None, None, sink)
        assert_status(outcome, ROUTES, "hello", {"Ready": ("True",), "IngressReady": ("True",)})

        moved = fake.peek(CONFIGURATIONS, "default", "hello")
        assert moved is not None
        moved["status"].update(latestReadyRevisionName="hello-00002", latestCreatedRevisionName="hello-00002")
        await fake.update_status(CONFIGURATIONS, moved)
        async with asyncio.timeout(5):
            while app.informers.informer(CONFIGURATIONS).store.get("default", "hello")["status"][
                    "latestReadyRevisionName"] != "hello-00002":
                await asyncio.sleep(0.01)
        await routes.reconcile("default/hello")
        assert_status(outcome, ROUTES, "hello", {
            "IngressReady": ("Unknown", "Uninitialized"), "Ready": ("Unknown",),
            "traffic": [{"revisionName": "hello-00002", "latestRevision": True, "percent": 100}]})
        assert fake.peek(ROUTES, "default", "hello")["metadata"].get("generation", 1) == 1  # the same generation

        sink.serve(2)  # Envoy serves it now
        await asyncio.sleep(0.01)
        await routes.reconcile("default/hello")
        assert_status(outcome, ROUTES, "hello", {"Ready": ("True",), "IngressReady": ("True",)})
    finally:
        informers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await informers


def tag_service(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """The Kubernetes Service the Route made for a host, as a user may have labelled it."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": f"service-{name}-uid",
                         "labels": {"serving.knative.dev/route": "hello", **labels},
                         "ownerReferences": [{"apiVersion": "serving.knative.dev/v1", "kind": "Route", "name": "hello",
                                              "uid": "route-hello-uid", "controller": True}]},
            "spec": {"type": "ExternalName", "externalName": "knserve-internal.knative-serving.svc.cluster.local"}}


@pytest.mark.parametrize("private", [pytest.param(True, id="labelled cluster-local"),
                                     pytest.param(False, id="label removed")])
async def test_one_tag_is_made_cluster_local_by_labelling_its_service(private: bool) -> None:
    labels = {"networking.knative.dev/visibility": "cluster-local"} if private else {}
    split = with_traffic({"revisionName": "hello-00001", "percent": 100},
                         {"revisionName": "hello-00002", "percent": 0, "tag": "canary"})
    outcome = await reconcile_once(
        [(ROUTES, route("hello", split)), (CONFIGURATIONS, CONFIG), (REVISIONS, R1), (REVISIONS, R2),
         (KUBE_SERVICES, tag_service("hello", {})), (KUBE_SERVICES, tag_service("canary-hello", labels))],
        "route", "default/hello")
    status = outcome.get(ROUTES, "hello")["status"]
    canary = next(target for target in status["traffic"] if target.get("tag") == "canary")
    domain = "default.svc.cluster.local" if private else "default.example.com"
    assert (status["url"], canary["url"]) == ("http://hello.default.example.com", f"http://canary-hello.{domain}")
    hosts = [rule.hosts[0] for rule in outcome.sink.model.rules]
    assert ("canary-hello.default.example.com" in hosts) is not private
    assert "canary-hello.default.svc.cluster.local" in hosts and "hello.default.example.com" in hosts
    kept = outcome.get(KUBE_SERVICES, "canary-hello")["metadata"]["labels"]
    assert kept.get("networking.knative.dev/visibility") == labels.get("networking.knative.dev/visibility")
