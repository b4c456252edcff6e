"""knserve itself on the local cluster: config/ applied, its components running as pods.

After the control plane is up, ``LocalStack.start`` applies config/ as a cluster install does
(namespace, RBAC, CRDs, ConfigMaps, the components' Deployments and Services) plus the local
image map, with the few local settings of ``localcluster.manifests`` laid over the
Deployments; the node agent then runs the components as pods under their own service
accounts, finding each other through their Services:

    controller   reconcilers and the xDS server (knserve-xds); two replicas, one leads
    webhook      the admission webhook (webhook); two replicas
    envoy        the ingress, a hostNetwork pod: 127.0.0.1:<ingress> for users,
                 <node IP>:<ingress_internal> for cluster-local routes (knserve-internal)
    activator    holds requests for revisions without ready pods (activator-service)
    autoscaler   the KPA: scrapes queue-proxies, writes /scale (autoscaler)

``start`` waits until each answers on its health port and says how long that took.

Side effects: runs kubectl against the cluster, reads the node agent's container logs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import Any
from collections.abc import Callable
from pathlib import Path

import yaml

from knserve.networking import SYSTEM_NAMESPACE
from localcluster import processes
from localcluster.controlplane import NODE_NAME, LocalCluster, Ports, Progress
from localcluster.manifests import local_deployments
from node.context import StateLayout

REPOSITORY = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPOSITORY / "config"
# Applied in this order; each entry is a file or a directory of manifests.
MANIFESTS = ("100-namespace.yaml", "200-roles", "300-resources", "configmaps", "local")
DEPLOYMENTS = CONFIG_DIR / "deployments"
CRDS = ("services.serving.knative.dev", "configurations.serving.knative.dev", "revisions.serving.knative.dev",
        "routes.serving.knative.dev", "podautoscalers.autoscaling.internal.knative.dev")
# (component label, Deployment, container) in start order.
COMPONENTS = (("autoscaler", "autoscaler", "autoscaler"), ("activator", "activator", "activator"),
              ("webhook", "webhook", "webhook"), ("controller", "controller", "controller"),
              ("ingress", "envoy", "envoy"))
# (component label, workload) that `up` does not wait for (the core answers without them); `status`
# lists them by their pods' readiness. Their container is named as the label.
AUXILIARY = (("queue", "knserve-queue"), ("nats", "nats"), ("gateway", "knserve-gateway"),
             ("dashboard", "knserve-dashboard"))
START_TIMEOUT = 90.0
IMMUTABLE_SERVICE = re.compile(r'The Service "([a-z0-9-]+)" is invalid: spec\.clusterIPs?(\[0\])?: Invalid value: .*may not change once set')
# Host processes an earlier knserve ran its components as; stopped when found.
LEGACY_PROCESSES = (("envoy", "localcluster.keeper"), ("knserve-controller", "knserve.cli controller"),
                    ("knserve-activator", "knserve.cli activator"), ("knserve-autoscaler", "knserve.cli autoscaler"))


def kubectl_binary() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else "kubectl"


class LocalStack:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    @property
    def ports(self) -> Ports:
        return self.cluster.ports

    # --- manifests -------------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {"KUBECONFIG": str(self.cluster.kubeconfig), "PATH": str(Path(sys.executable).parent)}
        return subprocess.run([kubectl_binary(), *args], env=env, input=input, capture_output=True, text=True,
                              timeout=timeout)

    def _apply(self, what: str, *args: str, input: str | None = None) -> None:
        result = self.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=knserve-local", *args,
                              input=input)
        if result.returncode != 0:
            raise processes.StartError(f"applying {what} failed:\n{result.stderr.strip()}")

    def node_ip(self) -> str:
        """The node's InternalIP: where pods reach the host (and hostNetwork pods)."""
        result = self.kubectl("get", "node", NODE_NAME, "-o",
                              "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}")
        if result.returncode != 0 or not result.stdout.strip():
            raise processes.StartError(f"the node {NODE_NAME} has no InternalIP: {result.stderr.strip()}")
        return result.stdout.strip()

    def deployment_manifests(self) -> list[dict[str, Any]]:
        """config/deployments/ with the local settings laid over the components' Deployments."""
        return local_deployments(sorted(DEPLOYMENTS.glob("*.yaml")), self.ports, self.node_ip(),
                                 nats_dir=self.cluster.state_dir / "nats")

    def apply_manifests(self) -> None:
        for entry in MANIFESTS:
            path = CONFIG_DIR / entry
            if path.exists():
                self._apply(str(path.relative_to(REPOSITORY)), "-f", str(path))
        self._apply_nats_image()
        # CRDs must be served before the controller starts watching them.
        result = self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in CRDS))
        if result.returncode != 0:
            raise processes.StartError(f"the CRDs were not established:\n{result.stderr.strip()}")
        self._apply_deployments()

    def _apply_nats_image(self) -> None:
        """The image map's entry for NATS's image: the nats-server built into the cache; and
        the host directory its StatefulSet keeps its data in (``manifests.localize_nats``)."""
        (self.cluster.state_dir / "nats" / "data").mkdir(parents=True, exist_ok=True)
        entry = {"image": "nats", "command": str(self.cluster.binaries.nats_server)}
        config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "knserve-images", "namespace": SYSTEM_NAMESPACE},
                      "data": {"nats": yaml.safe_dump(entry, sort_keys=False)}}
        result = self.kubectl("apply", "--server-side", "--field-manager=knserve-local-binaries", "-f", "-",
                              input=json.dumps(config_map))
        if result.returncode != 0:
            raise processes.StartError(f"adding nats-server to the image map failed:\n{result.stderr.strip()}")

    def _apply_deployments(self) -> None:
        manifests = yaml.safe_dump_all(self.deployment_manifests(), sort_keys=False)
        try:
            self._apply("config/deployments (local settings)", "-f", "-", input=manifests)
        except processes.StartError as error:
            # A Service an earlier knserve made differs in a field the API server keeps for
            # good (knserve-xds became headless): make it anew, once.
            found = IMMUTABLE_SERVICE.search(str(error))
            if found is None:
                raise
            self.kubectl("delete", "service", found.group(1), "-n", SYSTEM_NAMESPACE, "--wait=true")
            self._apply("config/deployments (local settings)", "-f", "-", input=manifests)

    # --- components ------------------------------------------------------------------------
    def dashboard_ready(self, *, timeout: float = 30.0) -> bool:
        """Whether the dashboard answers on 127.0.0.1:<dashboard> within ``timeout`` (it is not
        one of the components ``start`` waits for: the stack serves without it)."""
        deadline = time.monotonic() + timeout
        while not processes.answers(f"http://127.0.0.1:{self.ports.dashboard}/healthz"):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def envoy_live(self) -> bool:
        return processes.answers(f"http://127.0.0.1:{self.ports.envoy_admin}/ready", b"LIVE")

    def component_url(self, component: str, port_name: str) -> str | None:
        """``http://<pod IP>:<port>`` of the component's newest running pod, by container port name."""
        for pod in self.pods(component):
            address = pod.get("status", {}).get("podIP")
            if pod.get("metadata", {}).get("deletionTimestamp") or not address:
                continue
            for container in pod["spec"]["containers"]:
                for port in container.get("ports") or []:
                    if port.get("name") == port_name:
                        scheme = "https" if port_name.startswith("https") else "http"
                        return f"{scheme}://{address}:{port['containerPort']}"
        return None

    def _component_answers(self, component: str, port_name: str, path: str) -> bool:
        base = self.component_url(component, port_name)
        return base is not None and processes.answers(base + path)

    def _leader_answers(self, component: str, port_name: str, path: str) -> bool:
        for pod in self.pods(component):
            address = pod.get("status", {}).get("podIP")
            if pod.get("metadata", {}).get("deletionTimestamp") or not address:
                continue
            ports = [port for container in pod["spec"]["containers"] for port in container.get("ports") or []
                     if port.get("name") == port_name]
            if ports and processes.answers(f"http://{address}:{ports[0]['containerPort']}{path}", b"ok"):
                return True
        return False

    def health_checks(self) -> dict[str, Callable[[], bool]]:
        return {
            "autoscaler": lambda: self._component_answers("autoscaler", "http-metrics", "/metrics"),
            "activator": lambda: self._component_answers("activator", "http-metrics", "/metrics"),
            # Of the controller's replicas the leader answers "ok" once its caches synced (a standby
            # answers "standby").
            "controller": lambda: self._leader_answers("controller", "http-health", "/healthz"),
            "webhook": lambda: self._component_answers("webhook", "https-webhook", "/healthz"),
            "ingress": self.envoy_live,
        }

    def pods(self, component: str) -> list[dict[str, Any]]:
        """The component's pods, newest first."""
        result = self.kubectl("get", "pods", "-n", SYSTEM_NAMESPACE, "-l", f"app.kubernetes.io/component={component}",
                              "-o", "json")
        if result.returncode != 0:
            return []
        items = json.loads(result.stdout)["items"]
        return sorted(items, key=lambda pod: pod["metadata"]["creationTimestamp"], reverse=True)

    def container_logs(self, component: str, pods: list[dict[str, Any]] | None = None) -> list[Path]:
        """The log files of the component's container in ``pods`` (default: its pods now),
        oldest first (one per pod and restart)."""
        container = {label: name for label, _, name in COMPONENTS}.get(component, component)
        layout = StateLayout(self.cluster.node_state_dir)
        files: list[Path] = []
        for pod in reversed(self.pods(component) if pods is None else pods):
            directory = layout.container_dir(pod["metadata"]["uid"], container)
            files += sorted(directory.glob("*.log"), key=lambda path: int(path.stem) if path.stem.isdigit() else -1)
        return files

    def _describe(self, component: str) -> str:
        pods = self.pods(component)
        if not pods:
            return "no pod was created (kubectl get deploy,rs,events -n knative-serving)"
        pod = pods[0]
        statuses = json.dumps(pod.get("status", {}).get("containerStatuses") or pod.get("status", {}), indent=1)
        logs = self.container_logs(component, pods)
        tail = "\n".join(logs[-1].read_text(errors="replace").splitlines()[-20:]) if logs else "(no log yet)"
        return f"pod {pod['metadata']['name']}: {statuses}\nlog {logs[-1] if logs else '-'}:\n{tail}"

    def wait_healthy(self, component: str, *, timeout: float = START_TIMEOUT) -> None:
        healthy = self.health_checks()[component]
        deadline = time.monotonic() + timeout
        while not healthy():
            if time.monotonic() > deadline:
                raise processes.StartError(f"{component} was not healthy after {timeout:.0f}s; "
                                           f"{self._describe(component)}")
            time.sleep(0.1)

    def _stop_legacy_processes(self, progress: Progress) -> None:
        for name, marker in LEGACY_PROCESSES:
            spec = processes.ProcessSpec(name=name, argv=(name,), run_dir=self.cluster.state_dir / "run",
                                         log_dir=self.cluster.state_dir / "logs", marker=marker)
            if processes.stop(spec):
                progress(f"stopped {name}, run as a host process by an earlier knserve")

    def _deployment(self, component: str) -> str:
        return {label: deployment for label, deployment, _ in COMPONENTS}[component]

    def rollout(self, component: str, *, timeout: float = START_TIMEOUT) -> None:
        """Wait until the component's Deployment has rolled out and the component answers."""
        result = self.kubectl("rollout", "status", f"deployment/{self._deployment(component)}", "-n", SYSTEM_NAMESPACE,
                              f"--timeout={timeout:.0f}s", timeout=timeout + 10)
        if result.returncode != 0:
            raise processes.StartError(f"{component} did not roll out: {result.stderr.strip()}; "
                                       f"{self._describe(component)}")
        self.wait_healthy(component, timeout=timeout)

    def scale(self, component: str, replicas: int, *, timeout: float = START_TIMEOUT) -> None:
        """``kubectl scale`` the component; returns once its pods are gone (0) or it answers."""
        result = self.kubectl("scale", f"deployment/{self._deployment(component)}", "-n", SYSTEM_NAMESPACE,
                              f"--replicas={replicas}")
        if result.returncode != 0:
            raise processes.StartError(f"scaling {component} failed: {result.stderr.strip()}")
        if replicas > 0:
            self.rollout(component, timeout=timeout)
            return
        deadline = time.monotonic() + timeout
        while self.pods(component):
            if time.monotonic() > deadline:
                raise processes.StartError(f"{component}'s pods were still there after {timeout:.0f}s")
            time.sleep(0.1)

    def add_args(self, component: str, *args: str) -> None:
        """Roll the component out again with ``args`` added to its command line
        (``restore`` undoes it)."""
        patch = [{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": arg} for arg in args]
        result = self.kubectl("patch", f"deployment/{self._deployment(component)}", "-n", SYSTEM_NAMESPACE,
                              "--type=json", "-p", json.dumps(patch))
        if result.returncode != 0:
            raise processes.StartError(f"patching {component} failed: {result.stderr.strip()}")
        self.rollout(component)

    def restore(self) -> None:
        """Every component as ``start`` left it (config/ with the local settings), rolled out."""
        self._apply_deployments()
        for component, _, _ in COMPONENTS:
            self.rollout(component)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, *, progress: Progress = print) -> None:
        began = time.monotonic()
        self._stop_legacy_processes(progress)
        self.apply_manifests()
        progress(f"knserve manifests applied ({time.monotonic() - began:.1f}s)")
        for component, deployment, _ in COMPONENTS:
            began = time.monotonic()
            self.wait_healthy(component)
            progress(f"{deployment} ready ({time.monotonic() - began:.1f}s)")

    def stop(self, *, progress: Progress = print) -> None:
        """The components stop with the node agent (``LocalCluster.stop``); here only what an
        earlier knserve ran beside the cluster."""
        self._stop_legacy_processes(progress)

    def status(self) -> list[tuple[str, int | None, bool, Path | str]]:
        rows: list[tuple[str, int | None, bool, Path | str]] = []
        for component, deployment, _ in COMPONENTS:
            pods = self.pods(component)
            logs = self.container_logs(component, pods)
            rows.append((deployment, None, bool(pods) and self.health_checks()[component](), logs[-1] if logs else "-"))
        for component, workload in AUXILIARY:
            pods = self.pods(component)
            logs = self.container_logs(component, pods)
            ready = bool(pods) and all(_pod_ready(pod) for pod in pods)
            rows.append((workload, None, ready, logs[-1] if logs else "-"))
        return rows


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
