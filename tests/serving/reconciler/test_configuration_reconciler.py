"""Configuration reconciler table: Revision per template, latestCreated / latestReady."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kube.errors import ApiError
from kube.resources import CONFIGURATIONS, REVISIONS, Resource
from tests.serving.reconciler.harness import NOW, assert_status, reconcile_once
from tests.support.factories import (
    configuration,
    container,
    deleting,
    failed,
    ready,
    revision,
    revision_of,
    template,
    with_generation,
    with_status,
    with_template,
)


@dataclasses.dataclass
class Row:
    objects: list[tuple[Resource, dict[str, Any]]]
    key: str = "default/hello"
    creates: list[str] = dataclasses.field(default_factory=list)
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    events: list[str] = dataclasses.field(default_factory=list)
    fail: tuple[str, Resource | None, Exception] | None = None
    error: bool = False


CONFIG = configuration("hello")


def byo_revision(name: str, generation: int, user_container: dict[str, Any], *options: Any) -> dict[str, Any]:
    """The Revision generation ``generation`` of Configuration "hello" made for a template named ``name``."""
    from serving.apis.v1 import Configuration
    from serving.reconciler.config_store import ConfigStore
    from serving.reconciler.configuration.resources.revision import make_revision

    parent = configuration("hello", with_generation(generation), with_template(template(user_container, name=name)))
    obj = make_revision(Configuration.model_validate(parent), ConfigStore().snapshot(), now=NOW).to_dict()
    obj["metadata"].update(uid=f"revision-{name}-uid", generation=1, resourceVersion="1")
    for option in options:
        option(obj)
    return obj
ROWS = [
    pytest.param(Row([], key="default/missing"), id="missing key"),
    pytest.param(Row([(CONFIGURATIONS, configuration("hello", deleting))]), id="deleted object"),
    pytest.param(Row(
        [(CONFIGURATIONS, CONFIG)],
        creates=["revisions default/hello-00001"],
        status={"Ready": ("Unknown",), "latestCreatedRevisionName": "hello-00001",
                "latestReadyRevisionName": None},
        events=['Normal Created Created Revision "hello-00001"'],
    ), id="first revision"),
    pytest.param(Row(
        [(CONFIGURATIONS, CONFIG), (REVISIONS, revision("hello-00001", revision_of("hello"), ready))],
        status={"Ready": ("True",), "latestCreatedRevisionName": "hello-00001",
                "latestReadyRevisionName": "hello-00001"},
        events=["Normal ConfigurationReady Configuration becomes ready"],
    ), id="revision ready"),
    pytest.param(Row(
        [(CONFIGURATIONS, configuration("hello", with_generation(2), with_status(
            latestCreatedRevisionName="hello-00001", latestReadyRevisionName="hello-00001"))),
         (REVISIONS, revision("hello-00001", revision_of("hello", 1), ready)),
         (REVISIONS, revision("hello-00002", revision_of("hello", 2), failed("ExitCode1", "Container failed with: boom")))],
        status={"Ready": ("False", "RevisionFailed",
                          'Revision "hello-00002" failed with message: Container failed with: boom.'),
                "latestCreatedRevisionName": "hello-00002", "latestReadyRevisionName": "hello-00001"},
        events=['Warning LatestCreatedFailed Latest created revision "hello-00002" has failed'],
    ), id="failing newer revision keeps latest ready"),
    pytest.param(Row(
        [(CONFIGURATIONS, configuration("hello", with_generation(3), with_status(
            latestCreatedRevisionName="hello-00003", latestReadyRevisionName="hello-00001"))),
         (REVISIONS, revision("hello-00001", revision_of("hello", 1), ready)),
         (REVISIONS, revision("hello-00002", revision_of("hello", 2), ready)),
         (REVISIONS, revision("hello-00003", revision_of("hello", 3)))],
        status={"Ready": ("Unknown",), "latestCreatedRevisionName": "hello-00003",
                "latestReadyRevisionName": "hello-00002"},
    ), id="latest ready moves forward to a newer ready revision"),
    pytest.param(Row(
        [(CONFIGURATIONS, configuration("hello", with_template(template(name="hello-blue")))),
         (REVISIONS, revision("hello-blue", revision_of("other")))],
        status={"Ready": ("False", "RevisionFailed", 'Revision creation failed with message: '
                          'revisions.serving.knative.dev "hello-blue" already exists.'),
                "latestCreatedRevisionName": None},
    ), id="bring-your-own name taken by another configuration"),
    pytest.param(Row(
        [(CONFIGURATIONS, configuration("hello", with_generation(3), with_template(
            template(container(env=[{"name": "V", "value": "3"}]), name="hello-blue")), with_status(
            latestCreatedRevisionName="hello-green", latestReadyRevisionName="hello-green"))),
         (REVISIONS, byo_revision("hello-blue", 1, container(env=[{"name": "V", "value": "1"}]))),
         (REVISIONS, byo_revision("hello-green", 2, container(env=[{"name": "V", "value": "2"}]), ready))],
        status={"Ready": ("False", "RevisionFailed", 'Revision creation failed with message: '
                          'revisions.serving.knative.dev "hello-blue" already exists.'),
                "latestCreatedRevisionName": "hello-green", "latestReadyRevisionName": "hello-green"},
    ), id="a name brought back with another template is taken"),
    pytest.param(Row(
        [(CONFIGURATIONS, configuration("hello", with_generation(3), with_template(
            template(container(env=[{"name": "V", "value": "1"}]), name="hello-blue")), with_status(
            latestCreatedRevisionName="hello-green", latestReadyRevisionName="hello-green"))),
         (REVISIONS, byo_revision("hello-blue", 1, container(env=[{"name": "V", "value": "1"}]), ready)),
         (REVISIONS, byo_revision("hello-green", 2, container(env=[{"name": "V", "value": "2"}]), ready))],
        status={"Ready": ("True",), "latestCreatedRevisionName": "hello-blue",
                "latestReadyRevisionName": "hello-blue"},
        events=["Normal ConfigurationReady Configuration becomes ready"],
    ), id="a name brought back with its template reuses its revision"),
    pytest.param(Row(
        [(CONFIGURATIONS, CONFIG)],
        fail=("create", REVISIONS, ApiError(500, "InternalError", "etcd is sad")),
        status={"Ready": ("False", "RevisionFailed", "Revision creation failed with message: etcd is sad.")},
        events=['Warning CreationFailed Failed to create Revision "hello-00001": etcd is sad'],
        error=True,
    ), id="induced create failure"),
]


@pytest.mark.parametrize("row", ROWS)
async def test_configuration_reconciler(row: Row) -> None:
    outcome = await reconcile_once(row.objects, "configuration", row.key, fail=row.fail)
    assert (outcome.error is not None) == row.error, outcome.error
    assert outcome.writes("create") == row.creates
    assert outcome.events == row.events
    if not row.status:
        assert outcome.fake.actions == []
        return
    assert_status(outcome, CONFIGURATIONS, "hello", row.status)


async def test_created_revision_carries_the_template_and_labels() -> None:
    outcome = await reconcile_once([(CONFIGURATIONS, CONFIG)], "configuration", "default/hello")
    made = outcome.get(REVISIONS, "hello-00001")
    assert made["metadata"]["labels"]["serving.knative.dev/configurationUID"] == "configuration-hello-uid"
    assert made["metadata"]["ownerReferences"][0]["uid"] == "configuration-hello-uid"
    assert made["spec"]["containers"][0]["image"] == "ghcr.io/knative/helloworld-go:latest"
