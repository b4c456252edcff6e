"""Route hosts, URLs and ingress rules; Service children; the Configuration's Revision."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from serving.apis.v1 import Configuration, Route, Service
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.configuration.resources.revision import latest_revision_name, make_revision
from serving.reconciler.route.resources.hosts import address_url, route_url, tag_url
from serving.reconciler.route.resources.ingress import make_backend, make_ingress_rules, service_endpoints
from serving.reconciler.service.resources.children import make_configuration, make_route
from serving.xds.model import Endpoint, IngressRule, RevisionBackend, Split, Visibility
from tests.support.factories import (
    configuration,
    route,
    service,
    template,
    with_annotations,
    with_generation,
    with_labels,
    with_template,
    with_traffic,
)

LOCAL = "networking.knative.dev/visibility"


@pytest.mark.parametrize(
    ("labels", "configmaps", "want_url", "want_tag_url"),
    [
        pytest.param({}, {}, "http://hello.default.example.com", "http://canary-hello.default.example.com",
                     id="defaults"),
        pytest.param({LOCAL: "cluster-local"}, {}, "http://hello.default.svc.cluster.local",
                     "http://canary-hello.default.svc.cluster.local", id="cluster-local"),
        pytest.param({"app": "prod"}, {"config-domain": {"prod.example.org": "selector:\n  app: prod",
                                                         "example.net": ""}},
                     "http://hello.default.prod.example.org", "http://canary-hello.default.prod.example.org",
                     id="domain by selector"),
        pytest.param({}, {"config-network": {"domain-template": "{{.Name}}-{{.Namespace}}.{{.Domain}}",
                                             "tag-template": "{{.Name}}-{{.Tag}}"}},
                     "http://hello-default.example.com", "http://hello-canary-default.example.com", id="templates"),
    ],
)
def test_urls(labels: dict[str, str], configmaps: dict[str, dict[str, str]], want_url: str, want_tag_url: str) -> None:
    options = [with_labels({k: v}) for k, v in labels.items()]
    subject = Route.model_validate(route("hello", *options))
    config = ConfigSnapshot.from_configmaps(configmaps)
    assert route_url(subject, config) == want_url
    assert tag_url(subject, config, "canary") == want_tag_url
    assert address_url(subject) == "http://hello.default.svc.cluster.local"


def test_ingress_rules_per_group_and_visibility() -> None:
    subject = Route.model_validate(route("hello", with_generation(3)))
    groups = {"": (("hello-00001", 90), ("hello-00002", 10)), "canary": (("hello-00002", 100),)}
    splits = (Split("hello-00001", "default", 90), Split("hello-00002", "default", 10))
    canary = (Split("hello-00002", "default", 100),)
    assert make_ingress_rules(subject, groups, ConfigSnapshot()) == (
        IngressRule("default", "hello", ("hello.default.example.com",), splits, Visibility.EXTERNAL_IP),
        IngressRule("default", "hello", ("hello.default.svc.cluster.local", "hello.default.svc", "hello.default"),
                    splits, Visibility.CLUSTER_LOCAL),
        IngressRule("default", "hello", ("canary-hello.default.example.com",), canary, Visibility.EXTERNAL_IP),
        IngressRule("default", "hello", ("canary-hello.default.svc.cluster.local", "canary-hello.default.svc",
                                         "canary-hello.default"), canary, Visibility.CLUSTER_LOCAL),
    )


def test_cluster_local_route_has_no_external_rule() -> None:
    subject = Route.model_validate(route("hello", with_labels({LOCAL: "cluster-local"})))
    rules = make_ingress_rules(subject, {"": (("r", 100),)}, ConfigSnapshot())
    assert [rule.visibility for rule in rules] == [Visibility.CLUSTER_LOCAL]


def test_backend_takes_ready_addresses_at_the_queue_port() -> None:
    slices = [
        {"endpoints": [{"addresses": ["10.0.0.2"], "conditions": {"ready": True}},
                       {"addresses": ["10.0.0.3"], "conditions": {"ready": False}},
                       {"addresses": ["10.0.0.1"]}]},
        {"endpoints": [{"addresses": ["10.0.0.4"], "conditions": {"ready": True, "terminating": True}}]},
    ]
    assert make_backend("default", "r", slices) == RevisionBackend(
        "default", "r", (Endpoint("10.0.0.1", 8012), Endpoint("10.0.0.2", 8012)))


def test_the_activators_are_the_ready_endpoints_of_its_service_at_the_http_port() -> None:
    slices = [
        {"ports": [{"name": "http", "port": 8012}, {"name": "http-metrics", "port": 9090}],
         "endpoints": [{"addresses": ["10.244.1.3"], "conditions": {"ready": True}},
                       {"addresses": ["10.244.1.9"], "conditions": {"ready": False}}]},
        {"ports": [{"name": "http", "port": 8012}], "endpoints": [{"addresses": ["10.244.1.4"]}]},
    ]
    assert service_endpoints(slices, "http") == (Endpoint("10.244.1.3", 8012), Endpoint("10.244.1.4", 8012))
    assert service_endpoints(slices, "grpc") == ()


def test_service_children_carry_labels_annotations_and_owner() -> None:
    subject = Service.model_validate(service(
        "hello", with_labels({"team": "blue"}), with_annotations({"kubectl.kubernetes.io/last-applied-configuration": "{}"}),
        with_annotations({"serving.knative.dev/rollout-duration": "60s"})))
    configuration_obj = make_configuration(subject).to_dict()
    route_obj = make_route(subject).to_dict()
    want_metadata: dict[str, Any] = {
        "name": "hello", "namespace": "default",
        "labels": {"team": "blue", "serving.knative.dev/service": "hello",
                   "serving.knative.dev/serviceUID": "service-hello-uid"},
        "annotations": {"serving.knative.dev/rollout-duration": "60s"},
        "ownerReferences": [{"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello",
                             "uid": "service-hello-uid", "controller": True, "blockOwnerDeletion": True}],
    }
    assert configuration_obj == {"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
                                 "metadata": want_metadata, "spec": {"template": template()}}
    assert route_obj == {"apiVersion": "serving.knative.dev/v1", "kind": "Route", "metadata": want_metadata,
                         "spec": {"traffic": [{"configurationName": "hello", "latestRevision": True, "percent": 100}]}}


def test_service_traffic_targets_follow_its_configuration() -> None:
    subject = Service.model_validate(service("hello", with_traffic(
        {"revisionName": "hello-00001", "percent": 50, "tag": "current"},
        {"latestRevision": True, "percent": 50, "tag": "candidate"})))
    assert make_route(subject).to_dict()["spec"]["traffic"] == [
        {"tag": "current", "revisionName": "hello-00001", "latestRevision": False, "percent": 50},
        {"tag": "candidate", "configurationName": "hello", "latestRevision": True, "percent": 50},
    ]


NOW = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    ("options", "want_name"),
    [
        pytest.param([with_generation(1)], "hello-00001", id="first"),
        pytest.param([with_generation(12)], "hello-00012", id="generation"),
        pytest.param([with_template(template(name="hello-blue"))], "hello-blue", id="bring your own name"),
    ],
)
def test_revision_names(options: list[Any], want_name: str) -> None:
    assert latest_revision_name(Configuration.model_validate(configuration("hello", *options))) == want_name


def test_make_revision() -> None:
    subject = Configuration.model_validate(configuration(
        "hello", with_generation(2), with_labels({"serving.knative.dev/service": "hello"}),
        with_labels({"serving.knative.dev/serviceUID": "service-hello-uid"}),
        with_template(template(annotations={"autoscaling.knative.dev/min-scale": "1"}))))
    made = make_revision(subject, ConfigSnapshot(), now=NOW).to_dict()
    assert made["metadata"] == {
        "name": "hello-00002", "namespace": "default",
        "labels": {
            "serving.knative.dev/configuration": "hello",
            "serving.knative.dev/configurationUID": "configuration-hello-uid",
            "serving.knative.dev/configurationGeneration": "2",
            "serving.knative.dev/service": "hello",
            "serving.knative.dev/serviceUID": "service-hello-uid",
            "serving.knative.dev/routingState": "pending",
        },
        "annotations": {"autoscaling.knative.dev/min-scale": "1",
                        "serving.knative.dev/routingStateModified": "2026-01-02T00:00:00Z"},
        "ownerReferences": [{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "name": "hello",
                             "uid": "configuration-hello-uid", "controller": True, "blockOwnerDeletion": True}],
    }
    spec = made["spec"]
    assert (spec["timeoutSeconds"], spec["containerConcurrency"], spec["containers"][0]["name"]) == (
        300, 0, "user-container")

