"""Validation table tests: whole objects in, Knative's whole error text out."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from serving.apis.v1 import Configuration, Revision, Route, Service
from serving.apis.v1.configuration_validation import validate_configuration
from serving.apis.v1.revision_validation import validate_revision
from serving.apis.v1.route_validation import validate_route
from serving.apis.v1.service_defaults import default_service
from serving.apis.v1.service_validation import validate_service
from serving.config import ConfigSnapshot
from tests.support.factories import (
    configuration,
    container,
    revision,
    route,
    service,
    with_annotations,
    with_containers,
    with_labels,
    with_spec,
    with_template_annotations,
    with_template_name,
    with_traffic,
)

CONFIG = ConfigSnapshot()
RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
LATEST = {"latestRevision": True, "percent": 100}
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def check_service(doc: dict[str, Any], *, old: dict[str, Any] | None = None, config: ConfigSnapshot = CONFIG) -> str:
    """Validate as the webhook does: after defaulting."""
    new = default_service(Service.model_validate(doc), config)
    previous = Service.model_validate(old) if old is not None else None
    return str(validate_service(new, config, old=previous))


@pytest.mark.parametrize(
    ("doc", "want"),
    [
        pytest.param(service(), "", id="hello world"),
        pytest.param(
            service("hello", with_traffic({"latestRevision": True, "percent": 50}, {"revisionName": "hello-00001", "percent": 40})),
            "Traffic targets sum to 90, want 100: spec.traffic",
            id="percents sum to 90",
        ),
        pytest.param(
            service("hello", with_traffic({"percent": 50, "tag": "x"}, {"revisionName": "hello-00001", "percent": 50, "tag": "x"})),
            'Multiple definitions for "x": spec.traffic[0].tag, spec.traffic[1].tag',
            id="duplicate tag",
        ),
        pytest.param(
            service("hello", with_traffic({"percent": 100, "tag": "Bad_Tag"})),
            f"invalid value: not a DNS 1035 label: [{DNS1035}]: spec.traffic.tag[0]",  # Knative's path
            id="tag not a DNS-1035 label",
        ),
        pytest.param(
            service("hello", with_traffic({"percent": 101}, {"revisionName": "r", "percent": -1})),
            "expected 0 <= -1 <= 100: spec.traffic[1].percent\nexpected 0 <= 101 <= 100: spec.traffic[0].percent",
            id="percent bounds",
        ),
        pytest.param(
            service("hello", with_traffic({"revisionName": "r", "latestRevision": True, "percent": 100})),
            'may not set revisionName "r" when latestRevision is true: spec.traffic[0].latestRevision',
            id="latestRevision with revisionName",
        ),
        pytest.param(
            service("hello", with_traffic({"latestRevision": False, "percent": 100})),
            'may not set revisionName "" when latestRevision is false: spec.traffic[0].latestRevision',
            id="latestRevision false without revisionName",
        ),
        pytest.param(
            service("hello", with_traffic({"configurationName": "hello", "percent": 100})),
            "must not set the field(s): spec.traffic[0].configurationName",
            id="configurationName in a Service",
        ),
        pytest.param(
            service("hello", with_traffic({"percent": 100, "url": "http://x", "tag": "a"})),
            "must not set the field(s): spec.traffic[0].url",
            id="url in spec",
        ),
        pytest.param(
            service("hello", with_spec(timeoutSeconds=601)),
            "expected 0 <= 601 <= 600: spec.template.spec.timeoutSeconds",
            id="timeoutSeconds 601",
        ),
        pytest.param(
            service("hello", with_spec(timeoutSeconds=-1)),
            "expected 0 <= -1 <= 600: spec.template.spec.timeoutSeconds",
            id="timeoutSeconds negative",
        ),
        pytest.param(
            service("hello", with_spec(containerConcurrency=1001)),
            "expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency",
            id="containerConcurrency 1001",
        ),
        pytest.param(
            service("hello", with_containers(container(ports=[{"containerPort": 8012}]))),
            "invalid value: 8012 is a reserved port: spec.template.spec.containers[0].ports.containerPort\n"
            "8012 is a reserved port, please use a different value",
            id="reserved port",
        ),
        pytest.param(
            service("hello", with_containers(container(env=[{"name": "A", "value": "b"}, {"name": "K_REVISION", "value": "x"}]))),
            '"K_REVISION" is a reserved environment variable: spec.template.spec.containers[0].env[1].name',
            id="reserved env",
        ),
        pytest.param(
            service("hello", with_containers(
                container(ports=[{"containerPort": 8080}]),
                container(name="sidecar", env=[{"name": "PORT", "value": "1"}, {"name": "K_SERVICE", "value": "x"}]),
            )),
            '"K_SERVICE" is a reserved environment variable: spec.template.spec.containers[1].env[1].name',
            id="a sidecar may use PORT but not K_SERVICE",
        ),
        pytest.param(
            service("hello", with_containers(container(ports=[{"containerPort": 8080}, {"containerPort": 8081}]))),
            "more than one container port is set: spec.template.spec.containers[*].ports\n"
            "Only a single port is allowed across all containers",
            id="two ports",
        ),
        pytest.param(
            service("hello", with_containers(container(ports=[{"containerPort": 8080, "name": "grpc"}]))),
            "Port name grpc is not allowed: spec.template.spec.containers[0].ports\n"
            "Name must be empty, or one of: 'h2c', 'http1'",
            id="port name",
        ),
        pytest.param(
            service("hello", with_containers(container(name="queue-proxy"))),
            '"queue-proxy" is a reserved container name: spec.template.spec.containers[0].name',
            id="reserved container name",
        ),
        pytest.param(
            service("hello", with_containers({"name": "app"})),
            "missing field(s): spec.template.spec.containers[0].image",
            id="missing image",
        ),
        pytest.param(
            service("hello", with_containers(container(image="UPPER CASE"))),
            "Failed to parse image reference: spec.template.spec.containers[0].image\n"
            'image: "UPPER CASE", error: could not parse reference: UPPER CASE',
            id="bad image",
        ),
        pytest.param(
            service("hello", with_containers(container(lifecycle={"preStop": {"exec": {"command": ["x"]}}}))),
            "must not set the field(s): spec.template.spec.containers[0].lifecycle",
            id="lifecycle not allowed",
        ),
        pytest.param(
            service("hello", with_containers(container(livenessProbe={"httpGet": {"port": "other"}}))),
            "invalid value: other: spec.template.spec.containers[0].livenessProbe.httpGet.port\n"
            "Probe port must match container port",
            id="probe port name",
        ),
        pytest.param(
            service("hello", with_containers(container(volumeMounts=[{"name": "v", "mountPath": "/data"}]))),
            "volumeMount has no matching volume: spec.template.spec.containers[0].volumeMounts[0].name",
            id="mount without volume",
        ),
        pytest.param(
            service("hello", with_template_name("other-v1")),
            'invalid value: "other-v1" must have prefix "hello-": spec.template.metadata.name',
            id="BYO name without the parent prefix",
        ),
        pytest.param(
            service("hello", with_annotations({"autoscaling.knative.dev/min-scale": "1"})),
            'invalid key name "autoscaling.knative.dev/min-scale": metadata.annotations\n'
            'autoscaling annotations must be put under "spec.template.metadata.annotations" to work',
            id="autoscaling annotation on the Service",
        ),
        pytest.param(
            service("hello", with_template_annotations({
                "autoscaling.knative.dev/min-scale": "5", "autoscaling.knative.dev/max-scale": "2"})),
            "max-scale=2 is less than min-scale=5: spec.template.metadata.annotations.autoscaling.knative.dev/max-scale, "
            "spec.template.metadata.annotations.autoscaling.knative.dev/min-scale",
            id="max-scale below min-scale",
        ),
        pytest.param(
            service("hello", with_template_annotations({"autoscaling.knative.dev/window": "5s"})),
            "expected 6s <= 5s <= 1h0m0s: spec.template.metadata.annotations.autoscaling.knative.dev/window",
            id="window too short",
        ),
        pytest.param(
            service("hello", with_template_annotations({"autoscaling.knative.dev/window": "6500ms"})),
            "must be specified with at most second precision: "
            "spec.template.metadata.annotations.autoscaling.knative.dev/window",
            id="window in part seconds",
        ),
        pytest.param(
            service("hello", with_template_annotations({"autoscaling.knative.dev/scale-down-delay": "1.5s"})),
            "must be specified with at most second precision: "
            "spec.template.metadata.annotations.autoscaling.knative.dev/scale-down-delay",
            id="scale-down-delay in part seconds",
        ),
        pytest.param(
            service("hello", with_template_annotations({RETENTION: "2h"})),
            "expected 0s <= 2h <= 1h0m0s: "
            "spec.template.metadata.annotations.autoscaling.knative.dev/scale-to-zero-pod-retention-period",
            id="pod retention over an hour",
        ),
        pytest.param(
            service("hello", with_template_annotations({RETENTION: "1.5s"})),
            "", id="pod retention may have part seconds",
        ),
        pytest.param(
            service("hello", with_template_annotations({"autoscaling.knative.dev/min-scale": "-1"})),
            "expected 0 <= -1 <= 2147483647: spec.template.metadata.annotations.autoscaling.knative.dev/min-scale",
            id="negative min-scale",
        ),
        pytest.param(
            service("hello", with_template_annotations({"autoscaling.knative.dev/target": "0.001"})),
            "target 0.001 should be at least 0.01: spec.template.metadata.annotations.autoscaling.knative.dev/target",
            id="target too small",
        ),
        pytest.param(
            service("hello", with_template_annotations({"autoscaling.knative.dev/metric": "cpu"})),
            "invalid value: cpu: spec.template.metadata.annotations.autoscaling.knative.dev/metric",
            id="metric cpu with KPA",
        ),
        pytest.param(
            service("hello", with_template_annotations({"autoscaling.knative.dev/initial-scale": "0"})),
            "invalid value: 0: spec.template.metadata.annotations.autoscaling.knative.dev/initial-scale=0 not allowed by cluster",
            id="initial-scale 0 not allowed by default",
        ),
        pytest.param(
            service("hello", with_annotations({"serving.knative.dev/rollout-duration": "1.5s"})),
            "rollout-duration=1.5s is not at second precision: metadata.annotations.serving.knative.dev/rollout-duration",
            id="rollout-duration precision",
        ),
        pytest.param(
            service("Hello"),
            f"not a DNS 1035 label: [{DNS1035}]: metadata.name",
            id="object name",
        ),
        pytest.param(
            service(
                "hello",
                with_spec(timeoutSeconds=700),
                with_traffic({"percent": 60, "tag": "a"}, {"revisionName": "r", "percent": 30, "tag": "a"}),
            ),
            'Multiple definitions for "a": spec.traffic[0].tag, spec.traffic[1].tag\n'
            "Traffic targets sum to 90, want 100: spec.traffic\n"
            "expected 0 <= 700 <= 600: spec.template.spec.timeoutSeconds",
            id="all errors at once, sorted by message",
        ),
    ],
)
def test_validate_service(doc: dict[str, Any], want: str) -> None:
    assert check_service(doc) == want


def test_timeout_bound_follows_config_defaults() -> None:
    config = ConfigSnapshot.from_configmaps({"config-defaults": {"max-revision-timeout-seconds": "900"}})
    assert check_service(service("hello", with_spec(timeoutSeconds=800)), config=config) == ""
    assert check_service(service("hello", with_spec(timeoutSeconds=901)), config=config) == (
        "expected 0 <= 901 <= 900: spec.template.spec.timeoutSeconds"
    )


def test_container_concurrency_zero_may_be_forbidden() -> None:
    config = ConfigSnapshot.from_configmaps({"config-defaults": {"allow-container-concurrency-zero": "false",
                                                                 "container-concurrency": "1"}})
    assert check_service(service("hello", with_spec(containerConcurrency=0)), config=config) == (
        "expected 1 <= 0 <= 1000: spec.template.spec.containerConcurrency"
    )


def _set_timeout(doc: dict[str, Any], seconds: int) -> None:
    doc["spec"]["template"]["spec"]["timeoutSeconds"] = seconds


def _rename_and_set_timeout(doc: dict[str, Any], name: str, seconds: int) -> None:
    with_template_name(name)(doc)
    _set_timeout(doc, seconds)


@pytest.mark.parametrize(
    ("old", "change", "want"),
    [
        pytest.param(
            service("hello", with_template_name("hello-v1")),
            lambda doc: _set_timeout(doc, 10),
            "Saw the following changes without a name change (-old +new): spec.template.metadata.name\n"
            "{v1.RevisionTemplateSpec}.spec.timeoutSeconds:\n\t-: 300\n\t+: 10",
            id="template changed, same BYO name",
        ),
        pytest.param(
            service("hello", with_template_name("hello-v1")),
            lambda doc: _rename_and_set_timeout(doc, "hello-v2", 10),
            "",
            id="template changed with a new name",
        ),
        pytest.param(
            service("hello"),
            lambda doc: _set_timeout(doc, 10),
            "",
            id="no BYO name: any change",
        ),
        pytest.param(
            service("hello", with_template_name("hello-v1")),
            with_traffic({"percent": 100, "tag": "t", "latestRevision": True}),
            "",
            id="traffic change keeps the name",
        ),
    ],
)
def test_validate_service_update(old: dict[str, Any], change: Any, want: str) -> None:
    """``kubectl apply`` keeps the fields the webhook defaulted, so an update starts from the stored object."""
    stored = default_service(Service.model_validate(old), CONFIG).to_dict()
    edited = copy.deepcopy(stored)
    change(edited)
    previous = Service.model_validate(stored)
    defaulted = default_service(Service.model_validate(edited), CONFIG, old=previous)
    assert str(validate_service(defaulted, CONFIG, old=previous)) == want


TO_HELLO = {"configurationName": "hello", "percent": 100}


@pytest.mark.parametrize(
    ("doc", "want"),
    [
        pytest.param(route("hello", with_traffic(TO_HELLO)), "", id="valid"),
        pytest.param(
            route("hello", with_traffic({"revisionName": "a", "configurationName": "b", "percent": 100})),
            "expected exactly one, got both: spec.traffic[0].configurationName, spec.traffic[0].revisionName",
            id="both revisionName and configurationName",
        ),
        pytest.param(
            route("hello", with_traffic({"percent": 100})),
            "expected exactly one, got neither: spec.traffic[0].configurationName, spec.traffic[0].revisionName",
            id="neither",
        ),
        pytest.param(
            route("hello", with_traffic()),
            "Traffic targets sum to 0, want 100: spec.traffic",
            id="no traffic",
        ),
        pytest.param(
            route("hello", with_traffic({"revisionName": "bad/name/x", "percent": 100})),
            'invalid key name "bad/name/x": spec.traffic[0].revisionName\n'
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            id="revisionName syntax",
        ),
        pytest.param(
            route("hello", with_traffic(TO_HELLO), with_labels({"serving.knative.dev/service": "hello"})),
            "missing field(s): metadata.labels.serving.knative.dev/service",
            id="service label without owner",
        ),
    ],
)
def test_validate_route(doc: dict[str, Any], want: str) -> None:
    assert str(validate_route(Route.model_validate(doc), CONFIG)) == want


@pytest.mark.parametrize(
    ("doc", "old", "want"),
    [
        pytest.param(revision(), None, "", id="valid"),
        pytest.param(
            revision("hello-00001", with_spec(timeoutSeconds=601)),
            None,
            "expected 0 <= 601 <= 600: spec.timeoutSeconds",
            id="timeoutSeconds 601",
        ),
        pytest.param(
            revision("hello-00001", with_containers(container(image="b", name="user-container"))),
            revision(),
            "Immutable fields changed (-old +new): spec\n"
            '{v1.RevisionSpec}.containers[0].image:\n\t-: "ghcr.io/knative/helloworld-go:latest"\n\t+: "b"',
            id="spec edit",
        ),
        pytest.param(
            revision("hello-00001", with_labels({"serving.knative.dev/routingState": "active"})),
            revision(),
            "",
            id="label edit",
        ),
        pytest.param(
            revision("hello-00001", with_annotations({"autoscaling.knative.dev/min-scale": "x"})),
            None,
            "invalid value: x: metadata.annotations.autoscaling.knative.dev/min-scale",
            id="autoscaling annotations allowed on a Revision, and checked",
        ),
    ],
)
def test_validate_revision(doc: dict[str, Any], old: dict[str, Any] | None, want: str) -> None:
    previous = Revision.model_validate(old) if old else None
    assert str(validate_revision(Revision.model_validate(doc), CONFIG, old=previous)) == want


@pytest.mark.parametrize(
    ("doc", "want"),
    [
        pytest.param(configuration(), "", id="valid"),
        pytest.param(
            configuration("hello", with_template_name("hello")),
            'invalid value: "hello" must have prefix "hello-": spec.template.metadata.name',
            id="BYO name equal to the parent",
        ),
        pytest.param(
            configuration("hello", with_spec(containerConcurrency=-1)),
            "expected 0 <= -1 <= 1000: spec.template.spec.containerConcurrency",
            id="negative containerConcurrency",
        ),
    ],
)
def test_validate_configuration(doc: dict[str, Any], want: str) -> None:
    assert str(validate_configuration(Configuration.model_validate(doc), CONFIG)) == want
