"""config/ as the local cluster runs it: knserve's own Deployments with local settings laid over them.

The controller, activator and autoscaler run as config/ has them: ordinary pods with their
own IPs, finding each other through their Services (the local node gives pods Service IPs and
cluster DNS). What changes locally:

    envoy        a ``hostNetwork`` pod, so users reach it on 127.0.0.1:<ingress>; its bootstrap
                 inline (the local ports are the cluster's own, several local clusters can
                 share a machine; its connection limit fits this machine's open-file
                 limit, which the node's processes get), its admin interface and /ready
                 on 127.0.0.1:<envoy_admin>;
                 cluster DNS (``ClusterFirstWithHostNet``) finds the xDS server; ``Recreate``,
                 since two Envoys cannot hold the same host ports at once
    controller   tells Envoy to listen on 127.0.0.1:<ingress> for public routes and on the
                 node's IP at <ingress_internal> for cluster-local ones (where pods reach it
                 through the ``knserve-internal`` Service)
    all          plain-text logs (``kubectl logs`` reads better than JSON on a laptop)
    gateway      a ``hostNetwork`` pod on 127.0.0.1:<gateway> (31112, OpenFaaS's usual port; 8080
                 is the ingress's), calling functions through 127.0.0.1:<ingress>
    nats         the StatefulSet's volume claim becomes a host directory in the cluster's state
                 (the node has no persistent volumes), so what NATS stored outlives its pod;
                 its config is mounted beside it

Pure but for reading this process's open-file limit: builds manifests from config/'s and the ports.
"""

from __future__ import annotations

import copy
import json
import resource
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from knserve.networking import SYSTEM_NAMESPACE
from localcluster.controlplane import Ports
from serving.xds.bootstrap import BootstrapSettings, connections_for_open_files, make_bootstrap
from serving.xds.bootstrap_manifest import XDS_PORT, XDS_SERVICE, xds_client_tls

COMPONENT_LABEL = "app.kubernetes.io/component"
LOCALHOST = "127.0.0.1"
LOG_FORMAT_FLAG = "--log-format="


def envoy_args(ports: Ports) -> list[str]:
    bootstrap = make_bootstrap(BootstrapSettings(
        node_id="knserve-local-ingress", xds_host=f"{XDS_SERVICE}.{SYSTEM_NAMESPACE}.svc.cluster.local",
        xds_port=XDS_PORT, admin_port=ports.envoy_admin, keepalive_interval_seconds=10,
        max_connections=connections_for_open_files(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
        tls=xds_client_tls(),  # the Secret config/'s Deployment mounts
    ))
    return ["--config-yaml", json.dumps(bootstrap, separators=(",", ":")), "--disable-hot-restart",
            "--log-level", "warn", "--concurrency", "2", "--drain-time-s", "1"]


def _set_flag(args: list[str], flag: str, value: str) -> list[str]:
    return [f"{flag}={value}" if arg.startswith(f"{flag}=") else arg for arg in args]


def localize_deployment(deployment: dict[str, Any], ports: Ports, node_ip: str = LOCALHOST) -> dict[str, Any]:
    """A copy of one of config/'s component Deployments, set up for the local cluster."""
    local = copy.deepcopy(deployment)
    component = local["metadata"]["labels"][COMPONENT_LABEL]
    pod = local["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container["args"] = [arg for arg in container.get("args") or [] if not arg.startswith(LOG_FORMAT_FLAG)]
    if component == "controller":
        args = _set_flag(container["args"], "--ingress-external-address", f"{LOCALHOST}:{ports.ingress}")
        container["args"] = _set_flag(args, "--ingress-internal-address", f"{node_ip}:{ports.ingress_internal}")
    elif component == "gateway":
        # faas-cli's users find it on 127.0.0.1:31112, as with OpenFaaS; it reaches the ingress there too.
        local["spec"]["strategy"] = {"type": "Recreate"}  # one host port: one gateway at a time
        pod["hostNetwork"] = True
        pod["dnsPolicy"] = "ClusterFirstWithHostNet"
        container["args"] = [*_set_flag(_set_flag(container["args"], "--port", str(ports.gateway)),
                                        "--ingress", f"http://{LOCALHOST}:{ports.ingress}"),
                             f"--address={LOCALHOST}"]
        for port in container.get("ports") or []:
            port["containerPort"] = ports.gateway
        for probe_name in ("readinessProbe", "livenessProbe"):
            if "httpGet" in (container.get(probe_name) or {}):
                container[probe_name]["httpGet"]["host"] = LOCALHOST
    elif component == "ingress":
        local["spec"]["strategy"] = {"type": "Recreate"}
        pod["hostNetwork"] = True
        pod["dnsPolicy"] = "ClusterFirstWithHostNet"
        container["args"] = envoy_args(ports)
        # The admin interface answers /ready too: it stands in for the cluster's :8090 listener.
        numbers = {"http": ports.ingress, "http-internal": ports.ingress_internal, "http-ready": ports.envoy_admin}
        for port in container.get("ports") or []:
            port["containerPort"] = numbers[port["name"]]
        for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
            for action in ("httpGet", "tcpSocket"):
                if action in (container.get(probe_name) or {}):
                    container[probe_name][action]["host"] = LOCALHOST  # the pod's IP is the node's
    return local


NATS_STATEFULSET = "nats"


def localize_nats(statefulset: dict[str, Any], nats_dir: Path) -> dict[str, Any]:
    """config/'s nats StatefulSet with its data in ``nats_dir/data`` on the host, for good."""
    local = copy.deepcopy(statefulset)
    local["spec"].pop("volumeClaimTemplates", None)
    pod = local["spec"]["template"]["spec"]
    data, config = nats_dir / "data", nats_dir / "etc"
    pod["volumes"] = [volume for volume in pod.get("volumes") or [] if volume["name"] != "data"]
    pod["volumes"].append({"name": "data", "hostPath": {"path": str(data), "type": "DirectoryOrCreate"}})
    container = pod["containers"][0]
    paths = {"data": str(data), "config": str(config)}
    for mount in container.get("volumeMounts") or []:
        mount["mountPath"] = paths.get(mount["name"], mount["mountPath"])
    container["args"] = ["--config", f"{config}/nats.conf", "--store_dir", str(data)]
    return local


def is_nats_statefulset(manifest: dict[str, Any]) -> bool:
    return manifest.get("kind") == "StatefulSet" and manifest.get("metadata", {}).get("name") == NATS_STATEFULSET


def is_component_deployment(manifest: dict[str, Any]) -> bool:
    return (manifest.get("kind") == "Deployment"
            and manifest.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name") == "knserve")


def local_deployments(files: Iterable[Path], ports: Ports, node_ip: str = LOCALHOST,
                      nats_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every manifest of ``files`` (YAML streams), with knserve's Deployments localized (and
    NATS's StatefulSet, given where its data lives)."""
    manifests = []
    for path in files:
        for manifest in yaml.safe_load_all(path.read_text()):
            if not manifest:
                continue
            if is_component_deployment(manifest):
                manifest = localize_deployment(manifest, ports, node_ip)
            elif nats_dir is not None and is_nats_statefulset(manifest):
                manifest = localize_nats(manifest, nats_dir)
            manifests.append(manifest)
    return manifests
