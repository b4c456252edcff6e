"""config/'s Deployments as the local cluster runs them: same objects, local ports, hostNetwork."""

from __future__ import annotations

import json
from pathlib import Path

from serving.local.controlplane import Ports
from serving.local.manifests import local_deployments

REPOSITORY = Path(__file__).resolve().parents[3]
DEPLOYMENTS = sorted((REPOSITORY / "config" / "deployments").glob("*.yaml"))
PORTS = Ports(etcd_client=1, etcd_peer=2, apiserver=3, controller_manager=4, kubelet=5, ingress=41080,
              ingress_internal=41081, envoy_admin=41901, xds=41800, webhook=41443, activator=41012,
              activator_metrics=41092, autoscaler=41180, autoscaler_metrics=41093, controller_metrics=41094)


def deployments() -> dict[str, dict]:
    manifests = local_deployments(DEPLOYMENTS, PORTS, Path("/state"), node_ip="10.244.9.1")
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Deployment"}


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_every_component_runs_on_the_host_network_with_recreate():
    found = deployments()
    assert set(found) == {"controller", "activator", "autoscaler", "envoy"}
    for deployment in found.values():
        assert deployment["spec"]["template"]["spec"]["hostNetwork"] is True
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_the_rest_of_config_is_kept():
    manifests = local_deployments(DEPLOYMENTS, PORTS, Path("/state"))
    kinds = sorted({m["kind"] for m in manifests})
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    controller = deployments()["controller"]
    assert controller["spec"]["template"]["spec"]["serviceAccountName"] == "controller"
    assert container(controller)["image"].startswith("ghcr.io/knserve/knserve:")


def test_components_listen_on_the_clusters_own_loopback_ports():
    found = deployments()
    controller = container(found["controller"])
    assert "--xds-address=127.0.0.1:41800" in controller["args"]
    assert "--ingress-external-address=127.0.0.1:41080" in controller["args"]
    # Pods reach the internal listener through the knserve-internal Service: on the node's IP.
    assert "--ingress-internal-address=10.244.9.1:41081" in controller["args"]
    assert "--activator-address=127.0.0.1:41012" in controller["args"]
    assert "--webhook-url=https://127.0.0.1:41443" in controller["args"]
    assert {p["name"]: p["containerPort"] for p in controller["ports"]} == {
        "grpc-xds": 41800, "https-webhook": 41443, "http-health": 41094}
    activator = container(found["activator"])
    assert "--autoscaler-url=http://127.0.0.1:41180" in activator["args"]
    # Probes go to 127.0.0.1 at the (renumbered) named port.
    probe = container(found["autoscaler"])["readinessProbe"]["httpGet"]
    assert probe["host"] == "127.0.0.1" and probe["port"] == "http"
    assert {p["name"]: p["containerPort"] for p in container(found["autoscaler"])["ports"]}["http"] == 41180


def test_envoy_gets_its_bootstrap_inline_pointing_at_the_local_xds_port():
    envoy = container(deployments()["envoy"])
    bootstrap = json.loads(envoy["args"][envoy["args"].index("--config-yaml") + 1])
    assert bootstrap["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 41901}
    xds = bootstrap["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert xds["endpoint"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 41800}
    assert envoy["command"] == ["envoy"]
