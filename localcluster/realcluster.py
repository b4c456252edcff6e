"""The local cluster with real nodes: the control plane of ``LocalCluster``, kube-scheduler,
and containerd nodes (``containerdnode``) in place of the process node.

Order of ``start``, so nothing ever leaves the machine: the host's ``unreachable`` routes for
the cluster's ranges, then each node's namespace and the route of its pod block into it, then
etcd, the API server, kube-controller-manager and kube-scheduler, then each node's containerd,
kubelet and kube-proxy, then the load balancer that gives LoadBalancer Services a loopback
address of the cluster's own (``loadbalancer``). The runtime is recorded in the state directory (``runtime``), so
``knserve local down`` knows to stop the nodes.

Side effects: those of ``LocalCluster`` and ``ContainerdNode``; starts kube-scheduler, the local
registry and the load balancer.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from knserve import pki
from knserve.networking import SYSTEM_NAMESPACE
from localcluster import clusteraddons, images, loadbalancer, nodeimages, processes
from localcluster.binaries import NodeBinaries, cache_root
from localcluster.containerdnode import ContainerdNode, write_cert_kubeconfig
from localcluster.controlplane import HOST_BLOCKED_RANGES, POD_NETWORK, SERVICE_CLUSTER_IP_RANGE, LocalCluster
from localcluster.processes import StartError
from localcluster.stack import kubectl_binary

Progress = Callable[[str], None]

RUNTIME_FILE = "runtime"
REGISTRY_PORT = 5000
CONTAINERD = "containerd"
PROCESS = "process"


def recorded_runtime(state_dir: Path) -> str:
    """The runtime the cluster in ``state_dir`` was last started with."""
    try:
        return (state_dir / RUNTIME_FILE).read_text().strip() or PROCESS
    except OSError:
        return PROCESS


def node_names(count: int) -> list[str]:
    return [f"knserve-node-{index}" for index in range(count)]


# A node whose kubelet has not reported for this long is NotReady, and its pods are evicted
# this long after (upstream: 50 s and 300 s, for machines that may come back; a local node that
# stopped is gone, and its pods should be running elsewhere soon).
NODE_MONITOR_GRACE_PERIOD = "20s"
EVICTION_TOLERATION_SECONDS = "10"


class RealNodesControlPlane(LocalCluster):
    """The control plane for real nodes: kube-controller-manager also runs the node lifecycle
    controller, which removes a new node's ``not-ready`` taint once it is Ready and evicts the
    pods of a node that stopped answering (the process node leaves it off), within
    ``NODE_MONITOR_GRACE_PERIOD`` plus ``EVICTION_TOLERATION_SECONDS``."""

    def controller_manager_spec(self) -> processes.ProcessSpec:
        spec = super().controller_manager_spec()
        argv = tuple(
            f"{arg},node-lifecycle-controller" if arg.startswith("--controllers=") else arg for arg in spec.argv
        ) + (f"--node-monitor-grace-period={NODE_MONITOR_GRACE_PERIOD}",)
        return dataclasses.replace(spec, argv=argv)

    def apiserver_spec(self) -> processes.ProcessSpec:
        """As the process node's, plus the Node authorizer and NodeRestriction: a kubelet acts as
        ``system:node:<name>`` and may read and write only what its own pods need."""
        spec = super().apiserver_spec()
        argv = tuple("--authorization-mode=Node,RBAC" if arg == "--authorization-mode=RBAC" else arg
                     for arg in spec.argv)
        argv += ("--enable-admission-plugins=NodeRestriction",
                 f"--default-not-ready-toleration-seconds={EVICTION_TOLERATION_SECONDS}",
                 f"--default-unreachable-toleration-seconds={EVICTION_TOLERATION_SECONDS}")
        return dataclasses.replace(spec, argv=argv)


class ContainerdCluster:
    def __init__(self, cluster: LocalCluster, node_binaries: NodeBinaries, *, nodes: int = 1) -> None:
        self.cluster = cluster
        self.node_binaries = node_binaries
        self.nodes = [
            ContainerdNode(name=name, state_dir=cluster.state_dir, pki_dir=cluster.pki_dir,
                           apiserver_port=cluster.ports.apiserver, binaries=node_binaries,
                           blocked=HOST_BLOCKED_RANGES, service_range=SERVICE_CLUSTER_IP_RANGE,
                           pod_network=POD_NETWORK)
            for name in node_names(nodes)
        ]

    @classmethod
    def existing(cls, cluster: LocalCluster, node_binaries: NodeBinaries) -> ContainerdCluster:
        """The nodes a start made in ``cluster``'s state directory."""
        made = sorted(p.name for p in (cluster.state_dir / "nodes").glob("knserve-node-*") if p.is_dir())
        return cls(cluster, node_binaries, nodes=len(made))

    # --- the local registry ----------------------------------------------------------------
    @property
    def registry_layout(self) -> Path:
        return self.cluster.state_dir / "registry"

    def registry_address(self) -> str | None:
        """The registry listens on the first node's link address on the host."""
        first = self.nodes[0].addresses() if self.nodes else None
        return f"{first.host_address}:{REGISTRY_PORT}" if first else None

    def registry_spec(self) -> processes.ProcessSpec:
        return processes.ProcessSpec(
            name="registry",
            argv=(sys.executable, "-m", "localcluster.registry", f"--listen={self.registry_address()}",
                  f"--layout={self.registry_layout}"),
            run_dir=self.cluster.state_dir / "run", log_dir=self.cluster.state_dir / "logs",
            marker="localcluster.registry",
        )

    def registry_healthy(self) -> bool:
        return processes.answers(f"http://{self.registry_address()}/v2/")

    @staticmethod
    def _start_helper(spec: processes.ProcessSpec, healthy: Callable[[], bool], *, timeout: float) -> bool:
        """Start a helper process of the cluster (the registry, the load balancer) unless it runs
        as ``spec`` says; whether it was started."""
        pid = processes.running_pid(spec)
        if pid is not None and processes.argv_of(pid) == spec.argv:
            return False
        processes.stop(spec)
        processes.wait_healthy(spec, processes.start(spec), healthy, timeout=timeout, interval=0.1)
        return True

    def _start_registry(self, progress: Progress) -> None:
        if self._start_helper(self.registry_spec(), self.registry_healthy, timeout=20.0):
            progress(f"local registry on {self.registry_address()}")

    # --- the load balancer ------------------------------------------------------------------
    def loadbalancer_address(self) -> str | None:
        """The loopback address LoadBalancer Services get: 127.244.<block>.1 after the first node's
        block (10.244.<block>.0/24), so that clusters side by side each have their own."""
        first = self.nodes[0].addresses() if self.nodes else None
        return f"127.{first.block.network_address.packed[1]}.{first.third}.1" if first else None

    def loadbalancer_spec(self) -> processes.ProcessSpec:
        return processes.ProcessSpec(
            name="loadbalancer",
            argv=(sys.executable, "-m", "localcluster.loadbalancer", f"--address={self.loadbalancer_address()}",
                  f"--node-network={POD_NETWORK}", f"--kubeconfig={self.cluster.kubeconfig}"),
            run_dir=self.cluster.state_dir / "run", log_dir=self.cluster.state_dir / "logs",
            marker="localcluster.loadbalancer",
        )

    def loadbalancer_healthy(self) -> bool:
        return processes.answers(f"http://{self.loadbalancer_address()}:{loadbalancer.HEALTH_PORT}/healthz")

    def _start_loadbalancer(self, progress: Progress) -> None:
        if self._start_helper(self.loadbalancer_spec(), self.loadbalancer_healthy, timeout=30.0):
            progress(f"load balancer for LoadBalancer Services on {self.loadbalancer_address()}")

    # --- kube-scheduler ------------------------------------------------------------------
    def scheduler_spec(self) -> processes.ProcessSpec:
        kubeconfig = self.cluster.state_dir / "scheduler.kubeconfig"
        return processes.ProcessSpec(
            name="kube-scheduler",
            argv=(
                str(self.node_binaries.kube_scheduler),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.cluster.ports.scheduler}",
                "--v=1",
            ),
            run_dir=self.cluster.state_dir / "run",
            log_dir=self.cluster.state_dir / "logs",
        )

    def scheduler_healthy(self) -> bool:
        return processes.answers(f"https://127.0.0.1:{self.cluster.ports.scheduler}/healthz")

    def _start_scheduler(self, progress: Progress) -> None:
        ca = pki.ensure_ca(self.cluster.pki_dir)
        cert = pki.issue(ca, self.cluster.pki_dir, "kube-scheduler", common_name="system:kube-scheduler", client=True)
        write_cert_kubeconfig(self.cluster.state_dir / "scheduler.kubeconfig", server=self.cluster.server,
                              ca=self.cluster.pki_dir / "ca.crt", cert=cert)
        spec = self.scheduler_spec()
        if processes.running_pid(spec) is not None and self.scheduler_healthy():
            progress("kube-scheduler already running")
            return
        began = time.monotonic()
        pid = processes.start(spec)
        processes.wait_healthy(spec, pid, self.scheduler_healthy, timeout=60.0, interval=0.2)
        progress(f"kube-scheduler ready ({time.monotonic() - began:.1f}s)")

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, *, progress: Progress = print) -> None:
        state_dir = self.cluster.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / RUNTIME_FILE).write_text(f"{CONTAINERD}\n")
        self.cluster.host_routes().install(state_dir, progress=progress)
        networks = [node.prepare_network(progress=progress) for node in self.nodes]
        for node in self.nodes:
            node.join(networks, shared_host_address=networks[0].host_address)
        self._start_registry(progress)
        for node in self.nodes:
            node.registry = self.registry_address()
        self.cluster.start(progress=progress, node=False)
        self._start_scheduler(progress)
        for node in self.nodes:
            node.start(progress=progress)
        self._start_loadbalancer(progress)

    # --- what runs on the nodes ----------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl_binary(), f"--kubeconfig={self.cluster.kubeconfig}", *args], input=input,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def _apply(self, objects: list[dict[str, Any]], what: str) -> None:
        result = self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                    "items": objects}))
        if result.returncode != 0:
            raise StartError(f"applying {what} failed: {result.stderr.strip()}")

    def import_everywhere(self, archive: Path) -> None:
        for node in self.nodes:
            node.import_image(archive)

    def start_addons(self, *, progress: Progress = print) -> None:
        """The ``kubernetes`` Service's endpoint, CoreDNS and each node's volumes (``clusteraddons``)."""
        began = time.monotonic()
        first = self.nodes[0].addresses()
        assert first is not None
        self._apply(clusteraddons.kubernetes_endpoints(first.host_address, self.cluster.ports.apiserver),
                    "the kubernetes Service's endpoints")
        coredns = images.image_archive(
            clusteraddons.COREDNS_IMAGE,
            [images.ImageFile("/coredns", self.node_binaries.coredns.read_bytes())], entrypoint=["/coredns"])
        archive = cache_root() / "images" / "coredns.tar"
        archive.write_bytes(coredns)
        self.import_everywhere(archive)
        self._apply(clusteraddons.coredns(), "CoreDNS")
        for node in self.nodes:
            self._apply(clusteraddons.local_volumes(node.name, str(node.dir / "volumes")), f"{node.name}'s volumes")
        result = self.kubectl("-n", clusteraddons.SYSTEM, "rollout", "status", "deployment/coredns", "--timeout=120s",
                              timeout=130)
        if result.returncode != 0:
            raise StartError(f"CoreDNS did not become ready: {result.stderr.strip() or result.stdout.strip()}")
        progress(f"CoreDNS ready ({time.monotonic() - began:.1f}s)")

    def install_knserve(self, context: Path, *, progress: Progress = print) -> None:
        """knserve's images built here and imported into every node, then ``config/`` applied as
        its README says, unchanged."""
        began = time.monotonic()
        for archive in (nodeimages.knserve_image(context, progress=progress),
                        nodeimages.envoy_image(progress=progress), nodeimages.nats_image()):
            self.import_everywhere(archive)
        nodeimages.publish_samples(context, self.registry_layout, progress=progress)
        progress(f"knserve's images on the nodes ({time.monotonic() - began:.1f}s)")
        config = context / "config"
        for part in ("100-namespace.yaml", "200-roles", "300-resources", "400-webhooks.yaml", "configmaps", "deployments"):
            result = self.kubectl("apply", "-f", str(config / part))
            if result.returncode != 0:
                raise StartError(f"kubectl apply -f config/{part} failed: {result.stderr.strip()}")
        progress("config/ applied")
        self.wait_knserve_ready(progress=progress)

    def wait_knserve_ready(self, *, progress: Progress = print, timeout: float = 300) -> None:
        """Every workload of config/ rolled out (the webhook among them: until it has registered,
        the API server refuses knserve's kinds)."""
        began = time.monotonic()
        listed = self.kubectl("-n", SYSTEM_NAMESPACE, "get", "deployments,statefulsets", "-o", "name")
        workloads = listed.stdout.split() if listed.returncode == 0 else []
        result = self.kubectl("-n", SYSTEM_NAMESPACE, "rollout", "status", *workloads, f"--timeout={timeout:.0f}s",
                              timeout=timeout + 20)
        if listed.returncode != 0 or result.returncode != 0:
            raise StartError(f"knserve's components did not become ready: "
                             f"{(listed.stderr + result.stderr).strip() or result.stdout.strip()}")
        progress(f"knserve's components ready ({time.monotonic() - began:.1f}s)")

    def status(self) -> list[tuple[str, int | None, bool, Path]]:
        """(name, pid, healthy, log) of the control plane, kube-scheduler and every node's daemons."""
        process_node = self.cluster.node_spec().name
        rows = [(row.name, row.pid, row.healthy, row.log) for row in self.cluster.status() if row.name != process_node]
        spec = self.scheduler_spec()
        pid = processes.running_pid(spec)
        rows.append((spec.name, pid, pid is not None and self.scheduler_healthy(), spec.log_file))
        for spec, healthy in ((self.registry_spec(), self.registry_healthy),
                              (self.loadbalancer_spec(), self.loadbalancer_healthy)):
            pid = processes.running_pid(spec)
            rows.append((spec.name, pid, pid is not None and healthy(), spec.log_file))
        for node in self.nodes:
            rows += node.status()
        return rows

    def stop(self, *, progress: Progress = print, remove_routes: bool = False) -> None:
        if self.nodes and processes.stop(self.loadbalancer_spec()):
            progress("stopped the load balancer")
        for node in self.nodes:
            node.stop(progress=progress)
        if processes.stop(self.scheduler_spec()):
            progress("stopped kube-scheduler")
        if processes.stop(self.registry_spec()):
            progress("stopped the local registry")
        self.cluster.stop(progress=progress, remove_routes=remove_routes)
