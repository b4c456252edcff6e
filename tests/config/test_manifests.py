"""The install manifests hang together: images, commands and flags, accounts, Services,
probes, security settings, the Envoy bootstrap, and the README's install command."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import re
import tomllib
from typing import Any

import pytest

from knserve.cli import COMMANDS
from serving.webhook import registration
from serving.xds import bootstrap_manifest
from tests.config import manifests
from tests.config.manifests import CONFIG, ENVOY_IMAGE, IMAGE, INSTALL, REPOSITORY


def _id(item: tuple[dict[str, Any], dict[str, Any]]) -> str:
    deployment, container = item
    return f"{deployment['metadata']['name']}/{container['name']}"


KNSERVE_CONTAINERS = [item for item in manifests.deployment_containers() if item[1]["image"] != ENVOY_IMAGE]


def test_every_manifest_under_config_parses() -> None:
    paths = sorted(CONFIG.rglob("*.yaml"))
    assert paths
    for path in paths:
        for document in manifests.documents(path):
            assert {"apiVersion", "kind", "metadata"} <= document.keys(), f"{path}: {document.get('kind')}"


def test_the_install_holds_each_component_and_not_the_local_image_map() -> None:
    deployments = {d["metadata"]["name"] for d in manifests.of_kind("Deployment")}
    assert deployments == {"controller", "webhook", "activator", "autoscaler", "envoy", "knserve-queue",
                           "knserve-gateway", "knserve-dashboard"}
    assert not any(path.is_relative_to(CONFIG / "local") for path in manifests.install_files())
    namespaced = [o for o in manifests.install_objects() if o["kind"] not in
                  {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                   "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"knative-serving"}


def test_the_readme_install_command_applies_the_install_in_order() -> None:
    readme = (CONFIG / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("kubectl apply"))
    applied = re.findall(r"-f config/(\S+?)/?(?=\s|$)", command)
    assert tuple(applied) == INSTALL


def test_every_knserve_container_runs_the_image_the_containerfile_builds() -> None:
    containerfile = (REPOSITORY / "Containerfile").read_text()
    tags = set(re.findall(r"build -t (\S+) -f Containerfile", containerfile))
    assert tags == {IMAGE}
    version = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["version"]
    assert IMAGE.endswith(f":{version}")
    assert KNSERVE_CONTAINERS
    for deployment, container in KNSERVE_CONTAINERS:
        assert container["image"] == IMAGE, _id((deployment, container))
        assert "command" not in container, "the image's entrypoint is knserve; components differ by args"
        assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == version


def test_the_containerfile_copies_every_package_the_project_ships() -> None:
    containerfile = (REPOSITORY / "Containerfile").read_text()
    pyproject = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
    copied = set(re.findall(r"^COPY (\w+)/ \1/$", containerfile, flags=re.MULTILINE))
    shipped = {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert shipped <= copied
    assert 'ENTRYPOINT ["knserve"]' in containerfile


def _variables(deployment: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    namespace = deployment["metadata"]["namespace"]
    variables = {env["name"]: f"<{env['name']}>" for env in container.get("env", [])}
    for service in manifests.of_kind("Service"):
        if service["metadata"]["namespace"] == namespace:
            variables.update(manifests.service_link_variables(service))
    return variables


@pytest.mark.parametrize("item", KNSERVE_CONTAINERS, ids=_id)
def test_args_name_a_knserve_command_and_its_parser_accepts_them(item: tuple[dict[str, Any], dict[str, Any]]) -> None:
    deployment, container = item
    command, *flags = container["args"]
    assert command in COMMANDS
    variables = _variables(deployment, container)
    expanded = [manifests.expand(flag, variables) for flag in flags]
    unresolved = [flag for flag in expanded if manifests.VARIABLE.search(flag)]
    assert not unresolved, "references to variables neither in env nor a Service's environment"
    module = importlib.import_module(COMMANDS[command][0])
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parsed = module.parse_args(expanded)
    except SystemExit:
        pytest.fail(f"knserve {command} refuses {expanded}: {errors.getvalue()}")
    assert isinstance(parsed, argparse.Namespace)


def test_the_controller_routes_to_the_activator_service_and_envoy_listens_where_it_is_told() -> None:
    (controller,) = [c for d, c in manifests.deployment_containers() if d["metadata"]["name"] == "controller"]
    (envoy,) = [c for d, c in manifests.deployment_containers() if d["metadata"]["name"] == "envoy"]
    flags = dict(flag.split("=", 1) for flag in controller["args"][1:] if "=" in flag)
    namespace, name = flags["--activator-service"].split("/")
    (activator_service,) = [s for s in manifests.of_kind("Service") if s["metadata"]["name"] == name]
    assert activator_service["metadata"]["namespace"] == namespace
    assert "http" in {port["name"] for port in activator_service["spec"]["ports"]}  # the port routed to
    envoy_ports = {port["containerPort"] for port in envoy["ports"]}
    for flag in ("--ingress-external-address", "--ingress-internal-address"):
        host, port = flags[flag].rsplit(":", 1)
        assert host == "0.0.0.0" and int(port) in envoy_ports
    assert "--no-webhook" in controller["args"], "the webhook runs as its own Deployment"


def test_the_webhook_and_the_controller_survive_the_loss_of_one_pod() -> None:
    deployments = {d["metadata"]["name"]: d for d in manifests.of_kind("Deployment")}
    budgets = {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]: b
               for b in manifests.of_kind("PodDisruptionBudget")}
    for name, component in (("webhook", "webhook"), ("controller", "controller"), ("activator", "activator")):
        spec = deployments[name]["spec"]
        assert spec["replicas"] >= 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        assert budgets[component]["spec"]["minAvailable"] == 1, name
    (webhook_service,) = [s for s in manifests.of_kind("Service") if s["metadata"]["name"] == "webhook"]
    assert webhook_service["spec"]["selector"]["app.kubernetes.io/component"] == "webhook"
    (webhook,) = [c for d, c in manifests.deployment_containers() if d["metadata"]["name"] == "webhook"]
    assert "--url" not in " ".join(webhook["args"]), "in a cluster the webhook is reached through its Service"
    (controller,) = [c for d, c in manifests.deployment_containers() if d["metadata"]["name"] == "controller"]
    assert "--leader-elect" in controller["args"]


def test_service_accounts_exist_and_envoy_gets_no_token() -> None:
    accounts = {(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in manifests.of_kind("ServiceAccount")}
    for deployment in manifests.of_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert (deployment["metadata"]["namespace"], spec["serviceAccountName"]) in accounts
    assert accounts[("knative-serving", "envoy")]["automountServiceAccountToken"] is False
    bound = {(s["namespace"], s["name"]) for binding in [*manifests.of_kind("ClusterRoleBinding"),
                                                        *manifests.of_kind("RoleBinding")]
             for s in binding["subjects"]}
    assert bound <= accounts.keys()
    assert ("knative-serving", "envoy") not in bound


def _pod_template(service: dict[str, Any]) -> dict[str, Any]:
    selector = service["spec"]["selector"]
    matches = [d["spec"]["template"] for d in manifests.of_kind("Deployment") + manifests.of_kind("StatefulSet")
               if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
    assert len(matches) == 1, f"Service {service['metadata']['name']} selects {len(matches)} Deployments or StatefulSets"
    return matches[0]


@pytest.mark.parametrize("service", manifests.of_kind("Service"), ids=lambda s: s["metadata"]["name"])
def test_services_select_one_deployment_and_name_its_ports(service: dict[str, Any]) -> None:
    template = _pod_template(service)
    names = {port["name"] for container in template["spec"]["containers"] for port in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in names


def test_the_services_knative_components_expect() -> None:
    ports = {s["metadata"]["name"]: {p["port"]: p["targetPort"] for p in s["spec"]["ports"]}
             for s in manifests.of_kind("Service")}
    assert ports["webhook"][443] == "https-webhook"
    assert ports["activator-service"][80] == "http"
    assert ports["autoscaler"][8080] == "http"
    assert ports["knserve-xds"][18000] == "grpc-xds"
    assert ports["knserve-ingress"][80] == "http"
    assert ports["knserve-internal"][80] == "http-internal"
    (ingress,) = [s for s in manifests.of_kind("Service") if s["metadata"]["name"] == "knserve-ingress"]
    assert ingress["spec"]["type"] == "LoadBalancer"


@pytest.mark.parametrize("item", list(manifests.deployment_containers()), ids=_id)
def test_probes_resources_and_security(item: tuple[dict[str, Any], dict[str, Any]]) -> None:
    deployment, container = item
    pod = deployment["spec"]["template"]["spec"]
    names = {port["name"] for port in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        action = container[probe].get("httpGet") or container[probe].get("tcpSocket")
        assert action["port"] in names, f"{probe} names no port of the container"
    assert container["resources"]["requests"].keys() >= {"cpu", "memory"}
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]


def test_the_webhook_configurations_are_generated() -> None:
    assert (CONFIG / "400-webhooks.yaml").read_text() == registration.install_manifest(), (
        "run `python -m serving.webhook.registration > config/400-webhooks.yaml` and commit it")


def test_envoy_bootstrap_is_generated() -> None:
    assert bootstrap_manifest.main(["--check"]) == 0, (
        "run `python -m serving.xds.bootstrap_manifest` and commit config/deployments/envoy-bootstrap.yaml")


def test_envoy_reads_the_bootstrap_that_points_at_the_xds_service() -> None:
    (deployment,) = [d for d in manifests.of_kind("Deployment") if d["metadata"]["name"] == "envoy"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == ENVOY_IMAGE
    args = container["args"]
    config_path = args[args.index("-c") + 1]
    assert args[args.index("--service-node") + 1] == "$(POD_NAME)"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    assert config_path == f"{mounts[volume['name']]}/{bootstrap_manifest.BOOTSTRAP_KEY}"
    (configmap,) = [c for c in manifests.of_kind("ConfigMap") if c["metadata"]["name"] == volume["configMap"]["name"]]
    bootstrap = json.loads(configmap["data"][bootstrap_manifest.BOOTSTRAP_KEY])
    (xds,) = [c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "xds_cluster"]
    address = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert xds["type"] == "STRICT_DNS"
    (service,) = [s for s in manifests.of_kind("Service") if s["metadata"]["name"] == "knserve-xds"]
    assert address["address"] == f"knserve-xds.{service['metadata']['namespace']}"
    assert address["port_value"] in {p["port"] for p in service["spec"]["ports"]}
    ready = {p["name"]: p["containerPort"] for p in container["ports"]}["http-ready"]
    (listener,) = bootstrap["static_resources"]["listeners"]
    assert listener["address"]["socket_address"]["port_value"] == ready
