"""Service reconciler table: objects, key, wanted writes, status and events."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kube.errors import ApiError
from kube.resources import CONFIGURATIONS, REVISIONS, ROUTES, SERVICES, Resource
from tests.serving.reconciler.harness import reconcile_once
from tests.support.factories import (
    configuration,
    deleting,
    failed,
    owned_by,
    ready,
    revision,
    revision_of,
    service,
    template,
    with_annotations,
    with_generation,
    with_labels,
    with_status,
    with_template,
)

SVC = service("hello")
OWNED_CONFIG = configuration("hello", owned_by(SVC), with_labels({"serving.knative.dev/service": "hello"}),
                             with_labels({"serving.knative.dev/serviceUID": "service-hello-uid"}))


def hello_config(*options: Any) -> dict[str, Any]:
    from serving.apis.v1 import Service
    from serving.reconciler.service.resources.children import make_configuration

    obj = make_configuration(Service.model_validate(SVC)).to_dict()
    obj["metadata"].update(uid="configuration-hello-uid", generation=1, resourceVersion="1")
    for option in options:
        option(obj)
    return obj


def hello_route(*options: Any) -> dict[str, Any]:
    from serving.apis.v1 import Service
    from serving.reconciler.service.resources.children import make_route

    obj = make_route(Service.model_validate(SVC)).to_dict()
    obj["metadata"].update(uid="route-hello-uid", generation=1, resourceVersion="1")
    for option in options:
        option(obj)
    return obj


BYO_SVC = service("hello", with_template(template(name="hello-blue")))


def byo_config(*options: Any) -> dict[str, Any]:
    from serving.apis.v1 import Service
    from serving.reconciler.service.resources.children import make_configuration

    obj = make_configuration(Service.model_validate(BYO_SVC)).to_dict()
    obj["metadata"].update(uid="configuration-hello-uid", generation=1, resourceVersion="1")
    for option in options:
        option(obj)
    return obj


NAME_TAKEN = ("False", "RevisionNameTaken")
TAKEN_MESSAGE = 'Revision creation failed with message: revisions.serving.knative.dev "hello-blue" already exists.'

ROUTE_READY_STATUS = dict(
    url="http://hello.default.example.com", address={"url": "http://hello.default.svc.cluster.local"},
    traffic=[{"revisionName": "hello-00001", "latestRevision": True, "percent": 100}],
)


@dataclasses.dataclass
class Row:
    objects: list[tuple[Resource, dict[str, Any]]]
    key: str = "default/hello"
    creates: list[str] = dataclasses.field(default_factory=list)
    updates: list[str] = dataclasses.field(default_factory=list)
    status: dict[str, Any] | None = None  # condition type -> (status, reason) and fields
    events: list[str] = dataclasses.field(default_factory=list)
    fail: tuple[str, Resource | None, Exception] | None = None
    error: bool = False


ROWS = [
    pytest.param(Row([], key="default/missing"), id="missing key"),
    pytest.param(Row([(SERVICES, service("hello", deleting))]), id="deleted object"),
    pytest.param(Row(
        [(SERVICES, SVC)],
        creates=["configurations default/hello", "routes default/hello"],
        status={"ConfigurationsReady": ("Unknown", "OutOfDate"), "RoutesReady": ("Unknown", "OutOfDate"),
                "Ready": ("Unknown", "OutOfDate")},
        events=['Normal Created Created Configuration "hello"', 'Normal Created Created Route "hello"'],
    ), id="new service makes a configuration and a route"),
    pytest.param(Row(
        [(SERVICES, SVC),
         (CONFIGURATIONS, hello_config(ready, with_status(latestReadyRevisionName="hello-00001",
                                                          latestCreatedRevisionName="hello-00001"))),
         (ROUTES, hello_route(ready, with_status(**ROUTE_READY_STATUS)))],
        status={"Ready": ("True", ""), "url": "http://hello.default.example.com",
                "latestReadyRevisionName": "hello-00001", "latestCreatedRevisionName": "hello-00001",
                "traffic": ROUTE_READY_STATUS["traffic"], "address": ROUTE_READY_STATUS["address"]},
    ), id="ready children make a ready service"),
    pytest.param(Row(
        [(SERVICES, SVC),
         (CONFIGURATIONS, hello_config(ready, with_status(latestReadyRevisionName="hello-00002",
                                                          latestCreatedRevisionName="hello-00002"))),
         (ROUTES, hello_route(ready, with_status(**ROUTE_READY_STATUS)))],
        status={"RoutesReady": ("Unknown", "TrafficNotMigrated"), "Ready": ("Unknown", "TrafficNotMigrated")},
    ), id="route still on the old revision"),
    pytest.param(Row(
        [(SERVICES, service("hello", with_labels({"team": "green"}))), (CONFIGURATIONS, hello_config()),
         (ROUTES, hello_route())],
        updates=["configurations default/hello", "routes default/hello"],
    ), id="service labels reach the children"),
    pytest.param(Row(
        [(SERVICES, SVC), (CONFIGURATIONS, configuration("hello"))],
        creates=["routes default/hello"],
        status={"ConfigurationsReady": ("False", "NotOwned"), "Ready": ("False", "NotOwned")},
        events=['Normal Created Created Route "hello"'],
        error=True,
    ), id="configuration owned by someone else"),
    pytest.param(Row(
        [(SERVICES, BYO_SVC)],
        creates=["configurations default/hello"],
        status={"ConfigurationsReady": ("Unknown", "OutOfDate")},
        events=['Normal Created Created Configuration "hello"'],
    ), id="a named revision: the route waits for the configuration"),
    pytest.param(Row(
        [(SERVICES, BYO_SVC), (CONFIGURATIONS, byo_config(failed("RevisionFailed", TAKEN_MESSAGE))),
         (REVISIONS, revision("hello-blue", revision_of("other")))],
        status={"ConfigurationsReady": ("False", "RevisionFailed"), "RoutesReady": NAME_TAKEN, "Ready": NAME_TAKEN},
    ), id="a named revision taken by another configuration: no route"),
    pytest.param(Row(
        [(SERVICES, BYO_SVC), (CONFIGURATIONS, byo_config(with_generation(1, 1))),
         (REVISIONS, revision("hello-blue", revision_of("hello")))],
        creates=["routes default/hello"],
        status={"RoutesReady": ("Unknown", "OutOfDate")},
        events=['Normal Created Created Route "hello"'],
    ), id="a named revision of its own: the route follows"),
    pytest.param(Row(
        [(SERVICES, SVC)],
        fail=("create", CONFIGURATIONS, ApiError(500, "InternalError", "etcd is sad")),
        creates=["routes default/hello"],
        events=['Warning CreationFailed Failed to create Configuration "hello": etcd is sad',
                'Normal Created Created Route "hello"'],
        error=True,
    ), id="induced create failure"),
]


@pytest.mark.parametrize("row", ROWS)
async def test_service_reconciler(row: Row) -> None:
    outcome = await reconcile_once(row.objects, "service", row.key, fail=row.fail)
    assert (outcome.error is not None) == row.error, outcome.error
    assert outcome.writes("create") == row.creates
    assert outcome.writes("update") == row.updates
    assert outcome.events == row.events
    if row.status is None:
        return
    for field, want in row.status.items():
        if field[0].isupper():
            got = outcome.condition(SERVICES, "hello", field)
            assert got is not None and got[:2] == want, (field, got)
        else:
            assert outcome.get(SERVICES, "hello")["status"][field] == want, field


async def test_guard_rows_write_nothing() -> None:
    for objects, key in (([], "default/missing"), ([(SERVICES, service("hello", deleting))], "default/hello")):
        outcome = await reconcile_once(objects, "service", key)
        assert outcome.fake.actions == []


# --- canary analysis (knserve.dev/canary-steps) -------------------------------------------------

CANARY_ANNOTATIONS = {"knserve.dev/canary-steps": "5,25,50", "knserve.dev/canary-interval": "30s"}


def canary_service(*options: Any) -> dict[str, Any]:
    return service("hello", with_annotations(CANARY_ANNOTATIONS), *options)


def canary_config(latest_ready: str) -> dict[str, Any]:
    from serving.apis.v1 import Service
    from serving.reconciler.service.resources.children import make_configuration

    obj = make_configuration(Service.model_validate(canary_service())).to_dict()
    obj["metadata"].update(uid="configuration-hello-uid", generation=1, resourceVersion="1")
    ready(obj)
    obj["status"].update(latestReadyRevisionName=latest_ready, latestCreatedRevisionName=latest_ready)
    return obj


def canary_state(**fields: Any) -> dict[str, Any]:
    from serving.reconciler.service.resources.canary import traffic_digest

    return {"trafficDigest": traffic_digest(None), **fields}


def split(outcome: Any) -> list[tuple[str | None, int]]:
    return [(t.get("revisionName"), t.get("percent")) for t in outcome.get(ROUTES, "hello")["spec"]["traffic"]]


def analysed(revision: str, *, ok: float, errors: float = 0.0, p99: float = 20.0) -> Any:
    from knserve.request_metrics import RequestSummary

    return RequestSummary(namespace="default", revision=revision, since=0, until=0, requests=ok + errors,
                          responses={"2xx": ok, "5xx": errors}, covered_seconds=30, p50_ms=p99, p90_ms=p99,
                          p99_ms=p99)


async def test_canary_the_first_ready_revision_takes_all_traffic_pinned() -> None:
    outcome = await reconcile_once([(SERVICES, canary_service()), (CONFIGURATIONS, canary_config("hello-00001"))],
                                   "service", "default/hello")
    assert outcome.error is None, outcome.error
    assert split(outcome) == [("hello-00001", 100)]
    assert outcome.condition(SERVICES, "hello", "CanaryReady")[:2] == ("True", "Promoted")
    assert outcome.get(SERVICES, "hello")["status"]["canary"]["revisionName"] == "hello-00001"


async def test_canary_a_new_ready_revision_gets_the_first_step() -> None:
    svc = canary_service(with_status(canary=canary_state(revisionName="hello-00001", phase="Promoted", percent=100)))
    outcome = await reconcile_once([(SERVICES, svc), (CONFIGURATIONS, canary_config("hello-00002"))],
                                   "service", "default/hello")
    assert outcome.error is None, outcome.error
    assert split(outcome) == [("hello-00002", 5), ("hello-00001", 95)]
    assert outcome.condition(SERVICES, "hello", "CanaryReady")[:2] == ("Unknown", "Progressing")
    assert outcome.condition(SERVICES, "hello", "Ready")[0] == "Unknown"
    assert any(event.startswith("Normal CanaryStarted hello-00002 gets 5%") for event in outcome.events)
    assert outcome.result == 30.0


async def test_canary_a_failing_interval_rolls_back_and_says_why() -> None:
    from serving.apis.conditions import format_time
    from serving.reconciler.service.metrics_reader import FakeRequestMetrics
    from tests.serving.reconciler.harness import NOW

    state = canary_state(revisionName="hello-00002", previousRevisionName="hello-00001", phase="Progressing",
                         percent=5, step=0, steps=[5, 25, 50], stepStartedAt=format_time(NOW.timestamp() - 30))
    metrics = FakeRequestMetrics({("default", "hello-00002"): analysed("hello-00002", ok=80, errors=20),
                                  ("default", "hello-00001"): analysed("hello-00001", ok=1500)})
    outcome = await reconcile_once(
        [(SERVICES, canary_service(with_status(canary=state))), (CONFIGURATIONS, canary_config("hello-00002"))],
        "service", "default/hello", request_metrics=metrics)
    assert outcome.error is None, outcome.error
    assert split(outcome) == [("hello-00001", 100)]
    status, reason, message = outcome.condition(SERVICES, "hello", "Ready")
    assert (status, reason) == ("False", "RolledBack")
    assert "error rate 20%" in message
    assert any(event.startswith("Warning CanaryRolledBack hello-00002 was rolled back to hello-00001")
               for event in outcome.events)
    assert [read[:2] for read in metrics.reads] == [("default", "hello-00002"), ("default", "hello-00001")]
    assert outcome.get(SERVICES, "hello")["status"]["latestCreatedRevisionName"] == "hello-00002"


async def test_canary_switched_off_the_route_follows_the_configuration_again() -> None:
    svc = service("hello", with_status(canary=canary_state(revisionName="hello-00001", phase="Promoted"),
                                       conditions=[{"type": "CanaryReady", "status": "True", "reason": "Promoted"}]))
    outcome = await reconcile_once([(SERVICES, svc), (CONFIGURATIONS, hello_config(ready, with_status(
        latestReadyRevisionName="hello-00002", latestCreatedRevisionName="hello-00002")))], "service", "default/hello")
    assert outcome.error is None, outcome.error
    status = outcome.get(SERVICES, "hello")["status"]
    assert "canary" not in status
    assert outcome.condition(SERVICES, "hello", "CanaryReady") is None
    assert [t.get("configurationName") for t in outcome.get(ROUTES, "hello")["spec"]["traffic"]] == ["hello"]
