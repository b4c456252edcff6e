"""config/ as the local cluster runs it: knserve's own Deployments with local settings laid over them.

A cluster runs each component as an ordinary pod and connects them through Services (cluster
DNS and Service IPs). The local node has neither, so the same Deployments run here as
``hostNetwork`` pods whose ports are the local cluster's own (``Ports``: several local
clusters can share a machine) and bound to 127.0.0.1:

    controller   xDS 127.0.0.1:<xds>, webhook https://127.0.0.1:<webhook> (registered by URL),
                 health 127.0.0.1:<controller_metrics>; the activator at 127.0.0.1:<activator>;
                 Envoy's internal listener on the node's IP, where pods reach it (through the
                 ``knserve-internal`` Service, which Routes' placeholder Services alias)
    activator    127.0.0.1:<activator>, metrics <activator_metrics>; the autoscaler by address
    autoscaler   127.0.0.1:<autoscaler>, metrics <autoscaler_metrics>
    envoy        127.0.0.1:<ingress> and <ingress_internal>; the bootstrap inline (no volumes
                 locally), admin (and its /ready) on 127.0.0.1:<envoy_admin>

Everything else of a Deployment (service account and so RBAC, labels, probes' paths, env,
resources) is config/'s. Probes get ``host: 127.0.0.1`` (a hostNetwork pod's IP is the node's,
where nothing listens); every Deployment is replaced with ``Recreate``, since two pods of one
component cannot hold the same host ports at once.

Pure: builds manifests from config/'s and the ports.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from serving.local.controlplane import Ports
from serving.xds.bootstrap import BootstrapSettings, make_bootstrap

COMPONENT_LABEL = "app.kubernetes.io/component"
LOCALHOST = "127.0.0.1"
ENVOY_NODE_ID = "knserve-local-ingress"


def component_args(component: str, ports: Ports, state_dir: Path, node_ip: str = LOCALHOST) -> list[str]:
    """The command line of ``component`` on the local cluster whose node has ``node_ip``."""
    local = LOCALHOST
    if component == "controller":
        return [
            "controller",
            f"--xds-address={local}:{ports.xds}",
            f"--ingress-external-address={local}:{ports.ingress}",
            f"--ingress-internal-address={node_ip}:{ports.ingress_internal}",
            f"--activator-address={local}:{ports.activator}",
            f"--webhook-address={local}:{ports.webhook}",
            f"--webhook-url=https://{local}:{ports.webhook}",
            f"--webhook-cert-dir={state_dir / 'webhook'}",
            f"--health-address={local}:{ports.controller_metrics}",
        ]
    if component == "activator":
        return [
            "activator", f"--host={local}", f"--port={ports.activator}", f"--metrics-port={ports.activator_metrics}",
            f"--autoscaler-url=http://{local}:{ports.autoscaler}", "--drain-seconds=1",
        ]
    if component == "autoscaler":
        return ["autoscaler", f"--host={local}", f"--port={ports.autoscaler}", f"--metrics-port={ports.autoscaler_metrics}"]
    if component == "ingress":
        bootstrap = make_bootstrap(BootstrapSettings(
            node_id=ENVOY_NODE_ID, xds_host=local, xds_port=ports.xds, admin_port=ports.envoy_admin,
            keepalive_interval_seconds=10,
        ))
        return ["--config-yaml", json.dumps(bootstrap, separators=(",", ":")), "--disable-hot-restart",
                "--log-level", "warn", "--concurrency", "2", "--drain-time-s", "1"]
    raise ValueError(f"no local settings for component {component!r}")


def container_ports(component: str, ports: Ports) -> dict[str, int]:
    """Container port name -> the local cluster's port for it."""
    return {
        "controller": {"grpc-xds": ports.xds, "https-webhook": ports.webhook, "http-health": ports.controller_metrics},
        "activator": {"http": ports.activator, "http-metrics": ports.activator_metrics},
        "autoscaler": {"http": ports.autoscaler, "http-metrics": ports.autoscaler_metrics},
        # Envoy's admin interface answers /ready too, so it stands in for the cluster's :8090.
        "ingress": {"http": ports.ingress, "http-internal": ports.ingress_internal, "http-ready": ports.envoy_admin},
    }[component]


def localize_deployment(deployment: dict[str, Any], ports: Ports, state_dir: Path,
                        node_ip: str = LOCALHOST) -> dict[str, Any]:
    """A copy of one of config/'s component Deployments, set up for the local cluster."""
    local = copy.deepcopy(deployment)
    component = local["metadata"]["labels"][COMPONENT_LABEL]
    spec = local["spec"]
    spec["strategy"] = {"type": "Recreate"}
    pod = spec["template"]["spec"]
    pod["hostNetwork"] = True
    pod["dnsPolicy"] = "ClusterFirstWithHostNet"
    port_numbers = container_ports(component, ports)
    container = pod["containers"][0]
    container["args"] = component_args(component, ports, state_dir, node_ip)
    for port in container.get("ports") or []:
        port["containerPort"] = port_numbers[port["name"]]
        port.pop("hostPort", None)
    for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(probe_name)
        if probe is None:
            continue
        for action in ("httpGet", "tcpSocket"):
            if action in probe:
                probe[action]["host"] = LOCALHOST
    return local


def is_component_deployment(manifest: dict[str, Any]) -> bool:
    return (manifest.get("kind") == "Deployment"
            and manifest.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name") == "knserve")


def local_deployments(files: Iterable[Path], ports: Ports, state_dir: Path,
                      node_ip: str = LOCALHOST) -> list[dict[str, Any]]:
    """Every manifest of ``files`` (YAML streams), with knserve's Deployments localized."""
    manifests = []
    for path in files:
        for manifest in yaml.safe_load_all(path.read_text()):
            if not manifest:
                continue
            manifests.append(localize_deployment(manifest, ports, state_dir, node_ip)
                             if is_component_deployment(manifest) else manifest)
    return manifests
