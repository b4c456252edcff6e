"""config/ as the local cluster runs it: knserve's own Deployments with local settings laid over them.

The controller, activator and autoscaler run as config/ has them: ordinary pods with their
own IPs, finding each other through their Services (the local node gives pods Service IPs and
cluster DNS). What changes locally:

    envoy        a ``hostNetwork`` pod, so users reach it on 127.0.0.1:<ingress>; its bootstrap
                 inline (the local ports are the cluster's own, several local clusters can
                 share a machine; its connection limit fits this machine's open-file
                 limit, which the node's processes get), /ready on 127.0.0.1:<envoy_admin>
                 (a listener passing it to the admin interface, which listens on a socket in
                 a directory of the pod's own); each pod its own xDS node (``--service-node``);
                 cluster DNS (``ClusterFirstWithHostNet``) finds the xDS server.
                 One replica, handed over without a gap: Envoy's listeners set SO_REUSEPORT,
                 so a replacement binds the same host ports beside the old pod, whose preStop
                 waits until the replacement listens, drains (``drain_listeners?graceful``)
                 and only then lets SIGTERM stop it
    controller   tells Envoy to listen on 127.0.0.1:<ingress> for public routes and on the
                 node's IP at <ingress_internal> for cluster-local ones (where pods reach it
                 through the ``knserve-internal`` Service)
    all          plain-text logs (``kubectl logs`` reads better than JSON on a laptop)
    gateway      a ``hostNetwork`` pod on 127.0.0.1:<gateway> (31112, OpenFaaS's usual port; 8080
                 is the ingress's), calling functions through 127.0.0.1:<ingress>
    dashboard    a ``hostNetwork`` pod on 127.0.0.1:<dashboard> (8070) with ``--edits``, invoking
                 through 127.0.0.1:<ingress>; cluster IPs do not answer host-network pods on the
                 local node, so it finds the autoscaler's and the call queue's metrics ports by
                 their EndpointSlices
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
from serving.xds.bootstrap_manifest import XDS_PORT, XDS_SERVICE, admin_cluster, ready_listener, xds_client_tls

COMPONENT_LABEL = "app.kubernetes.io/component"
LOCALHOST = "127.0.0.1"
LOG_FORMAT_FLAG = "--log-format="
# In a directory of the Envoy pod's own (an emptyDir): the old and the new pod, and Envoys of
# other local clusters, each reach their own.
ENVOY_ADMIN_DIR = "/var/run/knserve-envoy"
ENVOY_ADMIN_SOCKET = f"{ENVOY_ADMIN_DIR}/admin.sock"
ENVOY_DRAIN_SECONDS = 2
ENVOY_HANDOVER_WAIT_SECONDS = 20


def envoy_args(ports: Ports) -> list[str]:
    bootstrap = make_bootstrap(BootstrapSettings(
        node_id="knserve-local-ingress", xds_host=f"{XDS_SERVICE}.{SYSTEM_NAMESPACE}.svc.cluster.local",
        xds_port=XDS_PORT, admin_port=ports.envoy_admin, keepalive_interval_seconds=10,
        max_connections=connections_for_open_files(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
        tls=xds_client_tls(),  # the Secret config/'s Deployment mounts
    ))
    admin_socket = {"pipe": {"path": ENVOY_ADMIN_SOCKET}}
    bootstrap["admin"] = {"address": admin_socket}
    ready = ready_listener(port=ports.envoy_admin)
    ready["address"]["socket_address"]["address"] = LOCALHOST
    admin = admin_cluster()
    admin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = admin_socket
    static = bootstrap["static_resources"]
    static["clusters"] = [*static["clusters"], admin]
    static["listeners"] = [*static.get("listeners", []), ready]
    return ["--config-yaml", json.dumps(bootstrap, separators=(",", ":")), "--service-node", "$(POD_NAME)",
            "--disable-hot-restart", "--log-level", "warn", "--concurrency", "2",
            "--drain-time-s", str(ENVOY_DRAIN_SECONDS)]


def envoy_handover(ports: Ports) -> list[str]:
    """The local Envoy's preStop: wait (a while) until another Envoy listens on the ingress port
    beside this one (its listening sockets in the host's /proc/net/tcp outnumber this one's),
    then drain this one gracefully through its own admin socket, and wait out the drain."""
    # No "$(" in it: Kubernetes would read that as a variable reference.
    script = f"""
pattern='0100007F:{ports.ingress:04X} 00000000:0000 0A'
own=`grep -c "$pattern" /proc/net/tcp`
waited=0
while [ `grep -c "$pattern" /proc/net/tcp` -le "$own" ] && [ "$waited" -lt {ENVOY_HANDOVER_WAIT_SECONDS * 10} ]; do
  sleep 0.1; waited=`expr "$waited" + 1`
done
curl -s -o /dev/null -X POST --unix-socket {ENVOY_ADMIN_SOCKET} 'http://envoy/drain_listeners?graceful'
sleep {ENVOY_DRAIN_SECONDS + 1}
"""
    return ["/bin/sh", "-c", script]


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
    elif component == "dashboard":
        local["spec"]["strategy"] = {"type": "Recreate"}  # one host port: one dashboard at a time
        pod["hostNetwork"] = True
        pod["dnsPolicy"] = "ClusterFirstWithHostNet"
        args = _set_flag(_set_flag(container["args"], "--port", str(ports.dashboard)),
                         "--ingress", f"http://{LOCALHOST}:{ports.ingress}")
        args = _set_flag(args, "--metrics", f"endpoints:{SYSTEM_NAMESPACE}/autoscaler:http-metrics")
        args = _set_flag(args, "--queue-metrics", f"endpoints:{SYSTEM_NAMESPACE}/knserve-queue:http-metrics")
        container["args"] = [*args, f"--address={LOCALHOST}", "--edits"]
        for port in container.get("ports") or []:
            port["containerPort"] = ports.dashboard
        for probe_name in ("readinessProbe", "livenessProbe"):
            if "httpGet" in (container.get(probe_name) or {}):
                container[probe_name]["httpGet"]["host"] = LOCALHOST
    elif component == "ingress":
        local["spec"]["replicas"] = 1  # one host, one Envoy: its replacement overlaps it
        local["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
        pod["hostNetwork"] = True
        pod["dnsPolicy"] = "ClusterFirstWithHostNet"
        container["args"] = envoy_args(ports)
        container["lifecycle"] = {"preStop": {"exec": {"command": envoy_handover(ports)}}}
        pod["volumes"] = [*(pod.get("volumes") or []), {"name": "admin", "emptyDir": {}}]
        container["volumeMounts"] = [*(container.get("volumeMounts") or []),
                                     {"name": "admin", "mountPath": ENVOY_ADMIN_DIR}]
        # /ready on <envoy_admin> (the ready listener) stands in for the cluster's :8090 one.
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
