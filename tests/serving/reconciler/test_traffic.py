"""Traffic resolution: targets against the Configurations and Revisions that exist."""

from __future__ import annotations

from typing import Any

import pytest

from serving.apis.v1 import Configuration, Revision, TrafficTarget
from serving.reconciler.route.resources.traffic import (
    ResolvedTarget,
    TrafficError,
    group_by_tag,
    resolve_traffic,
    status_traffic,
    targets_from_status,
)
from tests.support.factories import configuration, failed, ready, revision, with_labels, with_status


def revisions(*objs: dict[str, Any]) -> dict[str, Revision]:
    return {obj["metadata"]["name"]: Revision.model_validate(obj) for obj in objs}


def configurations(*objs: dict[str, Any]) -> dict[str, Configuration]:
    return {obj["metadata"]["name"]: Configuration.model_validate(obj) for obj in objs}


REVISIONS = revisions(revision("hello-00001", ready), revision("hello-00002", ready), revision("hello-00003"),
                      revision("hello-00004", failed("ExitCode1", "boom")))
CONFIGURATIONS = configurations(
    configuration("hello", ready, with_status(latestReadyRevisionName="hello-00002",
                                              latestCreatedRevisionName="hello-00003")),
    configuration("fresh"),
    configuration("broken", failed("RevisionFailed", "boom")),
)


def t(**fields: Any) -> TrafficTarget:
    return TrafficTarget.model_validate(fields)


@pytest.mark.parametrize(
    ("traffic", "want_targets", "want_error"),
    [
        pytest.param([t(configurationName="hello", latestRevision=True, percent=100)],
                     (ResolvedTarget("hello-00002", 100, "", "hello", True),), None, id="latest ready revision"),
        pytest.param([t(revisionName="hello-00001", percent=50, tag="current"),
                      t(configurationName="hello", latestRevision=True, percent=50, tag="candidate")],
                     (ResolvedTarget("hello-00001", 50, "current"),
                      ResolvedTarget("hello-00002", 50, "candidate", "hello", True)), None, id="tagged split"),
        pytest.param([t(revisionName="hello-00009", percent=100)], (), TrafficError("Revision", "hello-00009", "missing"),
                     id="missing revision"),
        pytest.param([t(revisionName="hello-00009", percent=50), t(revisionName="hello-00001", percent=50)],
                     (ResolvedTarget("hello-00001", 50),), TrafficError("Revision", "hello-00009", "missing"),
                     id="a missing target does not stop the others"),
        pytest.param([t(configurationName="nope", percent=100)], (),
                     TrafficError("Configuration", "nope", "missing"), id="missing configuration"),
        pytest.param([t(revisionName="hello-00003", percent=100)], (),
                     TrafficError("Revision", "hello-00003", "not-ready"), id="revision not ready"),
        pytest.param([t(revisionName="hello-00004", percent=100)], (),
                     TrafficError("Revision", "hello-00004", "failed"), id="revision failed"),
        pytest.param([t(configurationName="fresh", percent=100)], (),
                     TrafficError("Configuration", "fresh", "not-ready"), id="configuration without ready revision"),
        pytest.param([t(configurationName="broken", percent=100)], (),
                     TrafficError("Configuration", "broken", "failed"), id="configuration failed"),
    ],
)
def test_resolve_traffic(traffic: list[TrafficTarget], want_targets: tuple[ResolvedTarget, ...],
                         want_error: TrafficError | None) -> None:
    resolution = resolve_traffic(traffic, configurations=CONFIGURATIONS, revisions=REVISIONS)
    assert resolution.targets == want_targets
    assert resolution.error == want_error


def test_references_are_known_even_when_missing() -> None:
    resolution = resolve_traffic([t(revisionName="x", percent=50), t(configurationName="hello", percent=50)],
                                 configurations=CONFIGURATIONS, revisions=REVISIONS)
    assert resolution.configurations == {"hello"}
    assert resolution.revisions == {"x", "hello-00002"}


def test_groups_merge_duplicates_and_give_each_tag_its_revision() -> None:
    targets = [ResolvedTarget("a", 30), ResolvedTarget("b", 20, "beta"), ResolvedTarget("a", 50, "alpha")]
    assert group_by_tag(targets) == {"": (("a", 80), ("b", 20)), "beta": (("b", 100),), "alpha": (("a", 100),)}


def test_status_traffic_has_urls_for_tags_only_and_reads_back() -> None:
    targets = (ResolvedTarget("a", 50, "current"), ResolvedTarget("b", 50, "", "hello", True))
    traffic = status_traffic(targets, {"current": "http://current-hello.default.example.com"})
    assert [x.to_dict() for x in traffic] == [
        {"tag": "current", "revisionName": "a", "latestRevision": False, "percent": 50,
         "url": "http://current-hello.default.example.com"},
        {"revisionName": "b", "latestRevision": True, "percent": 50},
    ]
    assert targets_from_status(traffic) == (ResolvedTarget("a", 50, "current"), ResolvedTarget("b", 50, "", "", True))


def test_a_revision_of_another_service_is_not_owned() -> None:
    theirs = revisions(revision("other-00001", ready, with_labels({"serving.knative.dev/service": "other"})),
                       revision("plain-00001", ready))
    resolution = resolve_traffic([t(revisionName="other-00001", percent=100)], configurations=CONFIGURATIONS,
                                 revisions=theirs, service="hello")
    assert (resolution.targets, resolution.error) == ((), TrafficError("Revision", "other-00001", "not-owned", "other"))
    # a Route no Service owns, and a Revision no Service made, may be named freely
    for name, service in (("other-00001", ""), ("plain-00001", "hello")):
        free = resolve_traffic([t(revisionName=name, percent=100)], configurations=CONFIGURATIONS, revisions=theirs,
                               service=service)
        assert (free.targets, free.error) == ((ResolvedTarget(name, 100),), None)
