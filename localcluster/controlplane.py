"""The local single-node Kubernetes: etcd, kube-apiserver, kube-controller-manager, node agent.

A ``LocalCluster`` owns one state directory::

    state/
      cluster.json        ports chosen on first start (kept, so kubeconfigs stay valid)
      pki/                CA, serving and client certificates, service-account key
      pki/etcd/           etcd's own CA, its serving, peer and health-check certificates
      etcd/               etcd's data (objects survive down/up; --reset removes it)
      kubeconfig          admin kubeconfig (token in group system:masters)
      logs/<name>.log     each component's output
      run/<name>.pid      each running component
      node/               the node agent's state (pod IPs, pod logs, tokens)

``start`` is idempotent: components already running and healthy are left alone. It first
blocks the cluster's address ranges on the host (``hostroutes``); the routes stay after
``stop`` unless it is asked to remove them (and no other local cluster needs them).

etcd serves TLS only and asks every client, and its peer, for a certificate from its own CA
(``pki/etcd/ca.crt``, as kubeadm sets it up): the cluster CA signs certificates for anyone the
API server approves a CertificateSigningRequest for, and none of those may read etcd. The
API server uses ``apiserver-etcd-client``; health checks use ``etcd/healthcheck-client``. A
state directory made before etcd had TLS gets the missing certificates on the next start;
etcd keeps its data, and its member's recorded peer URL becomes the TLS one.

Side effects: starts and stops processes, writes the state directory, opens loopback ports,
adds and removes routes on the host (root only).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from knserve import pki
from localcluster import processes
from localcluster.binaries import KUBERNETES_VERSION, Binaries
from localcluster.hostroutes import HostRoutes

Progress = Callable[[str], None]

NODE_NAME = "knserve-node"
# The API server and kube-controller-manager collect garbage less often than Go's default
# (GOGC=100): an eighth of the API server's CPU during a burst of writes went to its collector,
# and 200 Services at once reached their Deployments 10-15% sooner with 400. A local cluster has
# memory to spare for the larger heap.
GOGC = "400"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
# Where the node agent takes its pods' /24 blocks (node.network.DEFAULT_POD_NETWORK).
POD_NETWORK = "10.244.0.0/16"
# Every range of private addresses the cluster hands out; the host blocks them (hostroutes).
HOST_BLOCKED_RANGES = (SERVICE_CLUSTER_IP_RANGE, POD_NETWORK)
# The controllers of kube-controller-manager for what a user can create here, as a cluster
# runs them; each one left out is in KUBE_CONTROLLERS_OFF with the reason (README: Limits).
KUBE_CONTROLLERS = (
    # workloads
    "deployment-controller",
    "replicaset-controller",
    "replicationcontroller-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "disruption-controller",
    "horizontal-pod-autoscaler-controller",
    "pod-garbage-collector-controller",
    "taint-eviction-controller",
    # services
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "service-cidr-controller",
    # namespaces, owners, quotas
    "garbage-collector-controller",
    "namespace-controller",
    "resourcequota-controller",
    # identities and access
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "legacy-serviceaccount-token-cleaner-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "certificatesigningrequest-approving-controller",
    "certificatesigningrequest-signing-controller",
    "certificatesigningrequest-cleaner-controller",
    "podcertificaterequest-cleaner-controller",
    "kube-apiserver-serving-clustertrustbundle-publisher-controller",
    "validatingadmissionpolicy-status-controller",
    "storage-version-migrator-controller",
    # storage objects (the local node gives every volume a directory of its own)
    "persistentvolume-binder-controller",
    "persistentvolume-expander-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    "ephemeral-volume-controller",
    "volumeattributesclass-protection-controller",
    "resourceclaim-controller",
)
KUBE_CONTROLLERS_OFF = {
    "node-lifecycle-controller": "the node agent runs on this machine and its pods stop with it; after a "
                                 "suspend this controller would taint the node and evict every pod",
    "node-ipam-controller": "the node agent claims its own pod block, free among all local clusters of the machine",
    "ttl-controller": "it only tunes a kubelet's cache; the node agent reads ConfigMaps and Secrets as a pod starts",
    "persistentvolume-attach-detach-controller": "no volume plugin attaches anything to the process node",
    "device-taint-eviction-controller": "no device drivers, so no pod uses a device a taint could evict it from",
    "resourcepoolstatusrequest-controller": "for an alpha API the API server does not serve",
    "podgroup-protection-controller": "for an alpha API the API server does not serve",
    "storageversion-garbage-collector-controller": "for an alpha API the API server does not serve",
    "bootstrap-signer-controller": "off by default upstream; no node joins with a bootstrap token",
    "token-cleaner-controller": "off by default upstream; no node joins with a bootstrap token",
    "selinux-warning-controller": "off by default upstream; no SELinux labels here",
}


# Components `start` restarts when they run with another command line than the one it would
# give them (a knserve upgrade changed their flags: etcd's TLS, the controllers); the node
# agent is left running, as restarting it restarts every pod.
RESTARTED_ON_NEW_SETTINGS = ("etcd", "kube-apiserver", "kube-controller-manager")


@dataclasses.dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    kubelet: int
    ingress: int = 8080  # Envoy's external listener, where users curl
    ingress_internal: int = 8081  # Envoy's listener for cluster-local routes
    envoy_admin: int = 9901
    xds: int = 18000
    webhook: int = 8443
    activator: int = 8012
    activator_metrics: int = 9092
    autoscaler: int = 18080
    autoscaler_metrics: int = 9093
    controller_metrics: int = 9094
    gateway: int = 31112  # the OpenFaaS gateway, on OpenFaaS's usual local port
    dashboard: int = 8070  # the dashboard (knserve dashboard), with edits on
    scheduler: int = 10259  # kube-scheduler, which runs only with containerd nodes

    @classmethod
    def defaults(cls) -> Ports:
        return cls(etcd_client=12379, etcd_peer=12380, apiserver=6443, controller_manager=10257, kubelet=10250)

    @classmethod
    def load(cls, saved: dict[str, int]) -> Ports:
        """Ports recorded by an earlier start; ports added since then take their defaults."""
        known = {field.name for field in dataclasses.fields(cls)}
        merged = {**dataclasses.asdict(cls.defaults()), **{k: v for k, v in saved.items() if k in known}}
        return cls(**merged)

    @classmethod
    def free(cls) -> Ports:
        return cls(**{field.name: free_port() for field in dataclasses.fields(cls)})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_state_dir() -> Path:
    import os

    return Path(os.environ.get("KNSERVE_STATE", Path.home() / ".local" / "share" / "knserve" / "local"))


def _node_environment() -> dict[str, str]:
    """The node agent's environment: this interpreter's bin directory first on PATH.

    Containers inherit PATH from the node, and the image map names commands such as
    ``python3`` and ``knserve``: they must be the ones installed with knserve.
    """
    import os

    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {**os.environ, "PATH": f"{bin_dir}:{path}" if path else bin_dir}


@dataclasses.dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    healthy: bool
    log: Path


class LocalCluster:
    def __init__(self, state_dir: Path, binaries: Binaries, *, ports: Ports | None = None) -> None:
        self.state_dir = state_dir
        self.binaries = binaries
        self._requested_ports = ports

    # --- layout ------------------------------------------------------------------------
    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def node_state_dir(self) -> Path:
        return self.state_dir / "node"

    @property
    def ports(self) -> Ports:
        saved = self.state_dir / "cluster.json"
        if saved.exists():
            return Ports.load(json.loads(saved.read_text())["ports"])
        return self._requested_ports or Ports.defaults()

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    def _token(self) -> str:
        return (self.pki_dir / "admin.token").read_text().strip()

    # --- preparation ---------------------------------------------------------------------
    def _prepare(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        saved = self.state_dir / "cluster.json"
        if not saved.exists():
            ports = self._requested_ports or Ports.defaults()
            saved.write_text(json.dumps({"ports": dataclasses.asdict(ports), "version": KUBERNETES_VERSION}))
        ca = pki.ensure_ca(self.pki_dir)
        pki.issue(
            ca, self.pki_dir, "apiserver", common_name="kube-apiserver", server=True,
            dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.cluster.local"),
            ip_addresses=("127.0.0.1", "10.96.0.1"),
        )
        pki.issue(ca, self.pki_dir, "apiserver-kubelet-client", common_name="kube-apiserver-kubelet-client",
                  organizations=("system:masters",), client=True)
        pki.issue(ca, self.pki_dir, "kubelet", common_name=NODE_NAME, server=True,
                  dns_names=("localhost", NODE_NAME), ip_addresses=("127.0.0.1",))
        self._prepare_etcd_pki()
        pki.ensure_service_account_key(self.pki_dir)
        token_file = self.pki_dir / "admin.token"
        if not token_file.exists():
            token_file.write_text(secrets.token_urlsafe(32) + "\n")
            token_file.chmod(0o600)
        controller_token = self.pki_dir / "controller-manager.token"
        if not controller_token.exists():
            controller_token.write_text(secrets.token_urlsafe(32) + "\n")
            controller_token.chmod(0o600)
        (self.pki_dir / "tokens.csv").write_text(
            f'{self._token()},admin,admin,"system:masters"\n'
            f"{controller_token.read_text().strip()},system:kube-controller-manager,kcm,\n"
        )
        self._write_kubeconfig(self.kubeconfig, user="admin", token=self._token())
        self._write_kubeconfig(
            self.state_dir / "controller-manager.kubeconfig",
            user="system:kube-controller-manager",
            token=controller_token.read_text().strip(),
        )

    @property
    def etcd_pki_dir(self) -> Path:
        return self.pki_dir / "etcd"

    def _prepare_etcd_pki(self) -> None:
        """etcd's CA and certificates (issued when missing, so older state directories get them)."""
        ca = pki.ensure_ca(self.etcd_pki_dir, common_name="knserve-etcd-ca")
        loopback = {"dns_names": ("localhost",), "ip_addresses": ("127.0.0.1",)}
        pki.issue(ca, self.etcd_pki_dir, "server", common_name="knserve-etcd", server=True, client=True, **loopback)
        pki.issue(ca, self.etcd_pki_dir, "peer", common_name="knserve-etcd", server=True, client=True, **loopback)
        pki.issue(ca, self.etcd_pki_dir, "healthcheck-client", common_name="kube-etcd-healthcheck-client", client=True)
        pki.issue(ca, self.pki_dir, "apiserver-etcd-client", common_name="kube-apiserver-etcd-client", client=True)

    def etcd_client_context(self, name: str = "healthcheck-client") -> ssl.SSLContext:
        """A TLS context that trusts etcd and presents the client certificate ``pki/etcd/<name>``."""
        context = ssl.create_default_context(cafile=str(self.etcd_pki_dir / "ca.crt"))
        context.load_cert_chain(self.etcd_pki_dir / f"{name}.crt", self.etcd_pki_dir / f"{name}.key")
        return context

    @property
    def etcd_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.etcd_client}"

    def host_routes(self) -> HostRoutes:
        return HostRoutes(HOST_BLOCKED_RANGES)

    def _write_kubeconfig(self, path: Path, *, user: str, token: str) -> None:
        import base64

        ca_data = base64.b64encode((self.pki_dir / "ca.crt").read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "knserve", "cluster": {"server": self.server, "certificate-authority-data": ca_data}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "knserve", "context": {"cluster": "knserve", "user": user, "namespace": "default"}}],
            "current-context": "knserve",
        }
        path.write_text(json.dumps(config, indent=2) + "\n")
        path.chmod(0o600)

    # --- components ----------------------------------------------------------------------
    def _spec(self, name: str, argv: list[str], **kwargs: object) -> processes.ProcessSpec:
        return processes.ProcessSpec(
            name=name, argv=tuple(argv), run_dir=self.state_dir / "run", log_dir=self.state_dir / "logs", **kwargs  # type: ignore[arg-type]
        )

    def etcd_spec(self) -> processes.ProcessSpec:
        p, d = self.ports, self.etcd_pki_dir
        return self._spec("etcd", [
            str(self.binaries.etcd),
            "--name=knserve",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--cert-file={d / 'server.crt'}",
            f"--key-file={d / 'server.key'}",
            f"--trusted-ca-file={d / 'ca.crt'}",
            "--client-cert-auth=true",
            f"--listen-peer-urls=https://127.0.0.1:{p.etcd_peer}",
            f"--initial-advertise-peer-urls=https://127.0.0.1:{p.etcd_peer}",
            f"--initial-cluster=knserve=https://127.0.0.1:{p.etcd_peer}",
            f"--peer-cert-file={d / 'peer.crt'}",
            f"--peer-key-file={d / 'peer.key'}",
            f"--peer-trusted-ca-file={d / 'ca.crt'}",
            "--peer-client-cert-auth=true",
            "--unsafe-no-fsync",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ])

    def apiserver_spec(self) -> processes.ProcessSpec:
        p, d = self.ports, self.pki_dir
        return self._spec("kube-apiserver", [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            f"--etcd-cafile={self.etcd_pki_dir / 'ca.crt'}",
            f"--etcd-certfile={d / 'apiserver-etcd-client.crt'}",
            f"--etcd-keyfile={d / 'apiserver-etcd-client.key'}",
            # All interfaces: pods reach the API server through their network's gateway address.
            "--bind-address=0.0.0.0",
            "--advertise-address=127.0.0.1",
            # The in-cluster "kubernetes" Service cannot point at loopback; pods get the address directly.
            "--endpoint-reconciler-type=none",
            f"--secure-port={p.apiserver}",
            f"--cert-dir={d}",
            f"--tls-cert-file={d / 'apiserver.crt'}",
            f"--tls-private-key-file={d / 'apiserver.key'}",
            f"--client-ca-file={d / 'ca.crt'}",
            f"--token-auth-file={d / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={d / 'service-account.key'}",
            f"--service-account-signing-key-file={d / 'service-account.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            f"--kubelet-client-certificate={d / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={d / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            # No kube-proxy runs locally: resolve webhook and aggregated-API services to endpoints.
            "--enable-aggregator-routing=true",
            "--profiling=false",
            "--v=1",
        ], env={**os.environ, "GOGC": GOGC})

    def controller_manager_spec(self) -> processes.ProcessSpec:
        p, d = self.ports, self.pki_dir
        return self._spec("kube-controller-manager", [
            str(self.binaries.kube_controller_manager),
            f"--kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={p.controller_manager}",
            f"--controllers={','.join(KUBE_CONTROLLERS)}",
            f"--service-account-private-key-file={d / 'service-account.key'}",
            f"--root-ca-file={d / 'ca.crt'}",
            # The signer of kubernetes.io/kube-apiserver-client and kubelet CSRs: the cluster CA.
            f"--cluster-signing-cert-file={d / 'ca.crt'}",
            f"--cluster-signing-key-file={d / 'ca.key'}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            # Each controller's client is otherwise held to 20 requests/s (burst 30): waking 20
            # revisions at once made ReplicaSets wait ~1 s for their pods on the client side.
            "--kube-api-qps=500",
            "--kube-api-burst=1000",
            "--v=1",
        ], env={**os.environ, "GOGC": GOGC})

    def node_spec(self) -> processes.ProcessSpec:
        return self._spec("knserve-node", [
            sys.executable, "-m", "knserve.cli", "node",
            f"--kubeconfig={self.kubeconfig}",
            f"--name={NODE_NAME}",
            f"--state-dir={self.node_state_dir}",
            f"--port={self.ports.kubelet}",
            f"--tls-cert-file={self.pki_dir / 'kubelet.crt'}",
            f"--tls-private-key-file={self.pki_dir / 'kubelet.key'}",
            f"--client-ca-file={self.pki_dir / 'ca.crt'}",
        ], env=_node_environment(), stop_timeout=40.0, marker="knserve.cli node")

    # --- health --------------------------------------------------------------------------
    def _get(self, url: str, *, context: ssl.SSLContext | None = None, token: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def _ca_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))

    def etcd_healthy(self) -> bool:
        status, body = self._get(f"{self.etcd_url}/health", context=self.etcd_client_context())
        return status == 200 and b'"true"' in body

    def apiserver_healthy(self) -> bool:
        status, _ = self._get(f"{self.server}/readyz", context=self._ca_context(), token=self._token())
        return status == 200

    def controller_manager_healthy(self) -> bool:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        status, _ = self._get(f"https://127.0.0.1:{self.ports.controller_manager}/healthz", context=insecure)
        return status == 200

    def node_ready(self) -> bool:
        status, body = self._get(
            f"{self.server}/api/v1/nodes/{NODE_NAME}", context=self._ca_context(), token=self._token()
        )
        if status != 200:
            return False
        conditions = json.loads(body).get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _components(self, *, node: bool) -> list[tuple[processes.ProcessSpec, Callable[[], bool], float]]:
        components = [
            (self.etcd_spec(), self.etcd_healthy, 30.0),
            (self.apiserver_spec(), self.apiserver_healthy, 60.0),
            (self.controller_manager_spec(), self.controller_manager_healthy, 30.0),
        ]
        if node:
            components.append((self.node_spec(), self.node_ready, 30.0))
        return components

    # --- lifecycle -----------------------------------------------------------------------
    def any_running(self) -> bool:
        """Whether any process of this cluster runs."""
        return any(processes.running_pid(spec) is not None for spec, _, _ in self._components(node=True))

    def _running_at(self, state_dir: Path) -> bool:
        return LocalCluster(state_dir, self.binaries).any_running()

    def start(self, *, progress: Progress = print, node: bool = True) -> None:
        self._prepare()
        self.host_routes().install(self.state_dir, progress=progress)
        for spec, healthy, timeout in self._components(node=node):
            pid = processes.running_pid(spec)
            if pid is not None and spec.name in RESTARTED_ON_NEW_SETTINGS and processes.argv_of(pid) != spec.argv:
                progress(f"restarting {spec.name}: it runs with other settings than this knserve gives it")
                processes.stop(spec)
            elif pid is not None and healthy():
                progress(f"{spec.name} already running")
                continue
            began = time.monotonic()
            pid = processes.start(spec)
            processes.wait_healthy(spec, pid, healthy, timeout=timeout)
            progress(f"{spec.name} ready ({time.monotonic() - began:.1f}s)")
            if spec.name == "etcd":
                self._advertise_tls_peer_url(progress)

    def _etcd_call(self, path: str, body: dict[str, object]) -> dict[str, Any]:
        """POST to etcd's JSON gateway (``/v3/...``) with the health-check client's certificate."""
        request = urllib.request.Request(f"{self.etcd_url}{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=5, context=self.etcd_client_context()) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def _advertise_tls_peer_url(self, progress: Progress) -> None:
        """A member that an earlier knserve started keeps its plain-HTTP peer URL in etcd's data
        (the --initial-* flags count only for a new member): record the TLS one."""
        peer_url = f"https://127.0.0.1:{self.ports.etcd_peer}"
        for member in self._etcd_call("/v3/cluster/member/list", {}).get("members", []):
            if member.get("peerURLs") != [peer_url]:
                self._etcd_call("/v3/cluster/member/update", {"ID": member["ID"], "peerURLs": [peer_url]})
                progress(f"etcd member {member.get('name', member['ID'])} now advertises {peer_url}")

    def stop(self, *, progress: Progress = print, remove_routes: bool = False) -> None:
        for spec, _, _ in reversed(self._components(node=True)):
            if processes.stop(spec):
                progress(f"stopped {spec.name}")
        self.host_routes().release(self.state_dir, running=self._running_at, remove=remove_routes, progress=progress)

    def status(self) -> list[ComponentStatus]:
        result = []
        for spec, healthy, _ in self._components(node=True):
            pid = processes.running_pid(spec)
            result.append(ComponentStatus(spec.name, pid, pid is not None and healthy(), spec.log_file))
        return result

    def reset(self) -> None:
        self.stop(progress=lambda _: None)
        for name in ("etcd", "node", "logs", "run", "cluster.json"):
            path = self.state_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
