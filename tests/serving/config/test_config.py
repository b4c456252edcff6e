"""ConfigMap models: Knative's defaults, parsing, clear errors, and the shipped YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.config import (
    AutoscalerConfig,
    ConfigError,
    ConfigSnapshot,
    DefaultsConfig,
    DeploymentConfig,
    DomainConfig,
    FeaturesConfig,
    GCConfig,
    NetworkConfig,
)

CONFIGMAPS = Path(__file__).resolve().parents[3] / "config" / "configmaps"


def test_defaults_are_knatives() -> None:
    snapshot = ConfigSnapshot()
    assert (snapshot.defaults.revision_timeout_seconds, snapshot.defaults.max_revision_timeout_seconds) == (300, 600)
    assert (snapshot.defaults.container_concurrency, snapshot.defaults.container_concurrency_max_limit) == (0, 1000)
    assert snapshot.domain.lookup({}) == "example.com"
    assert snapshot.network.domain_template == "{{.Name}}.{{.Namespace}}.{{.Domain}}"
    assert snapshot.network.tag_template == "{{.Tag}}-{{.Name}}"
    a = snapshot.autoscaler
    assert (a.stable_window_seconds, a.panic_window_percentage, a.panic_threshold_percentage) == (60.0, 10.0, 200.0)
    assert (a.container_concurrency_target_default, a.target_utilization, a.rps_target_default) == (100.0, 0.7, 200.0)
    assert (a.min_scale, a.max_scale, a.initial_scale) == (0, 0, 1)
    assert (a.max_scale_up_rate, a.max_scale_down_rate) == (1000.0, 2.0)
    assert (a.scale_to_zero_grace_period_seconds, a.target_burst_capacity) == (30.0, 211.0)
    assert snapshot.gc.min_non_active_revisions == 20
    assert snapshot.deployment.queue_sidecar_command == ("knserve", "queue-proxy")
    f = snapshot.features
    assert (f.flag("multi-container"), f.flag("kubernetes.podspec-volumes-emptydir")) == ("Enabled", "Enabled")
    assert f.flag("kubernetes.podspec-dryrun") == "Allowed"
    assert all(f.disabled(key) for key in (
        "kubernetes.podspec-persistent-volume-claim", "kubernetes.podspec-fieldref", "kubernetes.podspec-affinity",
        "kubernetes.podspec-init-containers", "kubernetes.podspec-hostnetwork", "kubernetes.podspec-volumes-hostpath",
        "kubernetes.podspec-securitycontext", "kubernetes.containerspec-addcapabilities"))


@pytest.mark.parametrize(
    ("model", "data", "want"),
    [
        pytest.param(DefaultsConfig, {"revision-timeout-seconds": "120", "container-concurrency": "10"},
                     DefaultsConfig(revision_timeout_seconds=120, revision_response_start_timeout_seconds=120,
                                    container_concurrency=10), id="defaults"),
        pytest.param(DefaultsConfig, {"enable-service-links": "default"}, DefaultsConfig(enable_service_links=None),
                     id="enable-service-links default"),
        pytest.param(AutoscalerConfig, {"container-concurrency-target-percentage": "80", "stable-window": "2m"},
                     AutoscalerConfig(container_concurrency_target_fraction=0.8, target_utilization=0.8,
                                      stable_window_seconds=120.0), id="autoscaler percentages and durations"),
        pytest.param(AutoscalerConfig, {"container-concurrency-target-percentage": "0.5"},
                     AutoscalerConfig(container_concurrency_target_fraction=0.5, target_utilization=0.5),
                     id="autoscaler fraction"),
        pytest.param(GCConfig, {"retain-since-create-time": "disabled", "max-non-active-revisions": "disabled",
                                "min-non-active-revisions": "5"},
                     GCConfig(retain_since_create_time_seconds=None, max_non_active_revisions=None,
                              min_non_active_revisions=5), id="gc disabled values"),
        pytest.param(DeploymentConfig, {"queue-sidecar-image": "q:1", "queue-sidecar-command": "python -m 'queue proxy'",
                                        "progress-deadline": "5m"},
                     DeploymentConfig(queue_sidecar_image="q:1", queue_sidecar_command=("python", "-m", "queue proxy"),
                                      progress_deadline_seconds=300.0), id="deployment"),
        pytest.param(NetworkConfig, {"domain-template": "{{.Name}}-{{.Namespace}}.{{.Domain}}", "http-protocol": "redirected"},
                     NetworkConfig(domain_template="{{.Name}}-{{.Namespace}}.{{.Domain}}", http_protocol="Redirected"),
                     id="network"),
        pytest.param(DomainConfig, {"example.org": "", "prod.example.org": "selector:\n  app: prod\n"},
                     DomainConfig(domains=(("example.org", ()), ("prod.example.org", (("app", "prod"),)))),
                     id="domain"),
    ],
)
def test_from_data(model: Any, data: dict[str, str], want: Any) -> None:
    assert model.from_data(data) == want


def test_feature_flags_parse_any_case_and_ignore_unknown_values() -> None:
    features = FeaturesConfig.from_data({"kubernetes.podspec-fieldref": "enabled", "multi-container": "DISABLED",
                                         "kubernetes.podspec-affinity": "Allowed",
                                         "kubernetes.podspec-init-containers": "maybe"})
    assert features.enabled("kubernetes.podspec-fieldref")
    assert features.disabled("multi-container")
    assert features.flag("kubernetes.podspec-affinity") == "Allowed"
    assert features.disabled("kubernetes.podspec-init-containers")


@pytest.mark.parametrize(
    ("name", "data", "want"),
    [
        pytest.param("config-defaults", {"revision-timeout-seconds": "abc"},
                     "config-defaults: revision-timeout-seconds: 'abc' is not an integer", id="not an integer"),
        pytest.param("config-defaults", {"revision-timeout-seconds": "700"},
                     "config-defaults: revision-timeout-seconds: 700 cannot be greater than max-revision-timeout-seconds (600)",
                     id="timeout above max"),
        pytest.param("config-defaults", {"container-concurrency": "2000"},
                     "config-defaults: container-concurrency: expected 0 <= 2000 <= 1000", id="concurrency above max"),
        pytest.param("config-autoscaler", {"stable-window": "5s"},
                     "config-autoscaler: stable-window: must be in [6s; 1h0m0s] range, was 5s", id="window"),
        pytest.param("config-autoscaler", {"stable-window": "soon"},
                     "config-autoscaler: stable-window: 'soon' is not a duration (for example 60s, 1m30s, 500ms)",
                     id="not a duration"),
        pytest.param("config-autoscaler", {"enable-scale-to-zero": "yes"},
                     "config-autoscaler: enable-scale-to-zero: 'yes' is not a boolean (use true or false)", id="boolean"),
        pytest.param("config-autoscaler", {"max-scale-up-rate": "1"},
                     "config-autoscaler: max-scale-up-rate: must be greater than 1.0", id="scale up rate"),
        pytest.param("config-network", {"domain-template": "{{.Namespace}}.{{.Domain}}"},
                     "config-network: domain-template: the template must contain {{.Name}}, was '{{.Namespace}}.{{.Domain}}'",
                     id="domain template without name"),
        pytest.param("config-network", {"tag-template": "{{.Tag}}"},
                     "config-network: tag-template: the template must contain both {{.Tag}} and {{.Name}}, was '{{.Tag}}'",
                     id="tag template"),
        pytest.param("config-network", {"domain-template": "{{.Name}}.{{.Bogus}}"},
                     "config-network: domain-template: invalid template '{{.Name}}.{{.Bogus}}': can't evaluate field Bogus",
                     id="unknown template field"),
        pytest.param("config-domain", {"example.org": "selector: [1]"},
                     "config-domain: example.org: selector must be a map of label to value", id="bad selector"),
        pytest.param("config-gc", {"min-non-active-revisions": "30", "max-non-active-revisions": "10"},
                     "config-gc: min-non-active-revisions: (30) must be <= max-non-active-revisions(10)", id="gc bounds"),
        pytest.param("config-deployment", {"queue-sidecar-image": ""},
                     "config-deployment: queue-sidecar-image: cannot be empty", id="empty image"),
        pytest.param("config-deployment", {"queue-sidecar-cpu-request": "lots"},
                     "config-deployment: queue-sidecar-cpu-request: 'lots' is not a resource quantity (for example 100m, 128Mi)",
                     id="bad quantity"),
    ],
)
def test_errors_name_the_key(name: str, data: dict[str, str], want: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ConfigSnapshot.from_configmaps({name: data})
    assert str(caught.value) == want


def test_example_key_is_never_read() -> None:
    assert DefaultsConfig.from_data({"_example": "revision-timeout-seconds: nonsense"}) == DefaultsConfig()


def test_snapshot_is_immutable_and_replaced_whole() -> None:
    snapshot = ConfigSnapshot()
    newer = snapshot.with_configmap("config-gc", {"min-non-active-revisions": "1"})
    assert snapshot.gc.min_non_active_revisions == 20 and newer.gc.min_non_active_revisions == 1
    with pytest.raises(Exception):
        snapshot.gc = GCConfig()  # type: ignore[misc]
    with pytest.raises(KeyError):
        snapshot.with_configmap("config-nope", {})


@pytest.mark.parametrize(
    ("template", "values", "want"),
    [
        pytest.param("{{.Name}}.{{.Namespace}}.{{.Domain}}", {"Name": "hello", "Namespace": "default", "Domain": "example.com"},
                     "hello.default.example.com", id="default domain template"),
        pytest.param("{{ .Tag }}-{{ .Name }}", {"Tag": "canary", "Name": "hello"}, "canary-hello", id="spaces"),
        pytest.param("{{.Annotations.team}}-{{.Name}}", {"Name": "a", "Annotations": {"team": "blue"}}, "blue-a",
                     id="annotation"),
        pytest.param("{{.Labels.missing}}x", {"Labels": {}}, "x", id="missing label renders empty"),
        pytest.param('{{index .Annotations "example.com/team"}}', {"Annotations": {"example.com/team": "red"}}, "red",
                     id="index form"),
    ],
)
def test_render_template(template: str, values: dict[str, Any], want: str) -> None:
    from serving.config.templates import render_template

    assert render_template(template, values) == want


def test_hosts_from_network_and_domain() -> None:
    snapshot = ConfigSnapshot.from_configmaps({"config-domain": {"example.org": "", "internal.dev": "selector:\n  app: x"}})
    assert snapshot.domain.lookup({"app": "x"}) == "internal.dev"
    assert snapshot.domain.lookup({"app": "y"}) == "example.org"
    assert snapshot.domain.lookup({"networking.knative.dev/visibility": "cluster-local"}) == "svc.cluster.local"
    assert snapshot.network.tag_host(name="hello", tag="canary", namespace="default", domain="example.org") == (
        "canary-hello.default.example.org")


@pytest.mark.parametrize("path", sorted(CONFIGMAPS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configmaps(path: Path) -> None:
    configmap = yaml.safe_load(path.read_text())
    assert configmap["metadata"]["namespace"] == "knative-serving"
    name = configmap["metadata"]["name"]
    assert path.stem == name
    # the data as shipped gives Knative's defaults
    assert ConfigSnapshot.from_configmaps({name: configmap["data"]}) == ConfigSnapshot()
    # every documented key in _example parses; apart from config-domain's illustration they are the defaults
    example = yaml.safe_load(configmap["data"]["_example"])
    documented = {key: "" if value is None else str(value) for key, value in example.items()}
    parsed = ConfigSnapshot.from_configmaps({name: documented})
    if name != "config-domain":
        assert parsed == ConfigSnapshot()
