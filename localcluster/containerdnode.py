"""A real node of the local cluster: containerd, kubelet and kube-proxy in a network namespace.

``ContainerdNode`` starts the three daemons with ``nsenter --net`` into the node's namespace
(``nodenet``): only the network is theirs, so runc sees the host's cgroups and the kubelet's
mounts. Everything else of the node lives in its own directory of the cluster's state
directory::

    nodes/<name>/
      containerd/config.toml   CRI: cgroupfs, restrict_oom_score_adj, the pause image, CNI dirs
      containerd/root/         images and snapshots
      cni/net.d/, cni/ipam/    the bridge network and its address allocations
      kubelet/config.yaml      cgroup v1 and no swap accepted; its own cgroup root
      kubelet/root/            the kubelet's root directory (pod volumes), pod logs
      kube-proxy/config.yaml   iptables mode
      *.kubeconfig             client certificates of the cluster CA, server at the host's veth address

containerd's socket and runtime state are under ``/run/knserve/nodes/<id>/``, and a link to
the kubelet's root directory (unix socket paths must be short). Facts of this kind of machine shape the settings: cgroup v1 (kubelet
``failCgroupV1: false``, ``cgroupDriver: cgroupfs``), no CAP_SYS_RESOURCE (containerd
``restrict_oom_score_adj``, or runc fails every pod), no swap check.

The pause image is a static C program (``localcluster.images``), imported at every start.
``stop`` stops the daemons, kills what containerd still runs, unmounts what the node mounted,
removes the pods' and the node's namespaces, its cgroups and its veth pair. ``lose`` stops it
as a machine losing its power would (daemons and pods gone, its network left in place).

The kubelet authenticates as ``system:node:<name>`` in ``system:nodes``, which the API server's
Node authorizer and NodeRestriction admission hold to what its own pods need; kube-proxy and
kube-scheduler as the users the default RBAC bindings name.

Side effects: starts and stops processes; writes under the state directory, /run/knserve/nodes
and the cgroup hierarchy; changes the host's network (``nodenet``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from knserve import pki
from localcluster import images, processes
from localcluster.binaries import NodeBinaries, cache_root
from localcluster.nodenet import NodeAddresses, NodeNetwork, node_blocks, try_lock
from localcluster.nodesetup import CNI_BIN_DIR
from localcluster.processes import StartError

Progress = Callable[[str], None]

RUN_ROOT = Path("/run/knserve/nodes")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CLUSTER_DNS = "10.96.0.10"
# Under each cgroup hierarchy, one directory per node: the kubelet's cgroupRoot.
CGROUP_PARENT = "knserve-nodes"


def _cgroup_hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies: each v1 controller's directory, and the v2 one beside them."""
    found: dict[str, Path] = {}
    for entry in sorted(CGROUP_ROOT.iterdir()) if CGROUP_ROOT.is_dir() else []:
        if entry.is_dir() and not entry.is_symlink() and (entry / "cgroup.procs").exists():
            found[entry.name] = entry
    return list(found.values())


def _mounts_under(directories: list[Path]) -> list[str]:
    """Mount points at or below any of ``directories``, deepest first."""
    roots = [str(d.resolve()) for d in directories]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if any(point == root or point.startswith(root + "/") for root in roots):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def write_cert_kubeconfig(path: Path, *, server: str, ca: Path, cert: pki.KeyPair) -> None:
    """A kubeconfig that presents ``cert``; the API server's certificate is checked for the
    name ``localhost``, which it carries whatever address it is reached at."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "knserve", "cluster": {"server": server, "certificate-authority": str(ca),
                                                     "tls-server-name": "localhost"}}],
        "users": [{"name": "user", "user": {"client-certificate": str(cert.cert), "client-key": str(cert.key)}}],
        "contexts": [{"name": "knserve", "context": {"cluster": "knserve", "user": "user"}}],
        "current-context": "knserve",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


class ContainerdNode:
    """One real node; ``blocked`` are the cluster's address ranges."""

    def __init__(self, *, name: str, state_dir: Path, pki_dir: Path, apiserver_port: int, binaries: NodeBinaries,
                 blocked: tuple[str, ...], service_range: str, pod_network: str, registry: str | None = None) -> None:
        self.name = name
        self.dir = state_dir / "nodes" / name
        self.pki_dir = pki_dir
        self.apiserver_port = apiserver_port
        self.binaries = binaries
        self.blocked = blocked
        self.service_range = service_range
        self.pod_network = pod_network
        self.registry = registry
        key = hashlib.sha256(f"{state_dir.resolve()}/{name}".encode()).hexdigest()[:12]
        self.run_dir = RUN_ROOT / key
        self.cgroup_parent = f"/{CGROUP_PARENT}/{key}"
        self._lock: object | None = None

    # --- layout --------------------------------------------------------------------------
    @property
    def socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's root directory by a short path (a link to ``kubelet/root`` in the node's
        directory): it makes unix sockets there, whose paths may not exceed 107 bytes."""
        return self.run_dir / "kubelet"

    @property
    def _block_file(self) -> Path:
        return self.dir / "block"

    def addresses(self) -> NodeAddresses | None:
        """The node's addresses once a block was claimed (kept across restarts)."""
        try:
            import ipaddress

            return NodeAddresses(ipaddress.IPv4Network(self._block_file.read_text().strip()))
        except (OSError, ValueError):
            return None

    def _spec(self, component: str, argv: list[str], marker: str, **kwargs: object) -> processes.ProcessSpec:
        return processes.ProcessSpec(name=f"{self.name}-{component}", argv=tuple(argv), run_dir=self.dir / "run",
                                     log_dir=self.dir / "logs", marker=marker, **kwargs)  # type: ignore[arg-type]

    def _specs(self, addresses: NodeAddresses, lock_fd: int | None = None) -> list[processes.ProcessSpec]:
        ns = addresses.nsenter()
        containerd_config = self.dir / "containerd" / "config.toml"
        kubelet_config = self.dir / "kubelet" / "config.yaml"
        proxy_config = self.dir / "kube-proxy" / "config.yaml"
        return [
            self._spec("containerd", [*ns, "containerd", "--config", str(containerd_config)], str(containerd_config),
                       pass_fds=(lock_fd,) if lock_fd is not None else (), stop_timeout=15.0),
            self._spec("kubelet", [
                *ns, str(self.binaries.kubelet),
                f"--config={kubelet_config}",
                f"--kubeconfig={self.dir / 'kubelet.kubeconfig'}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.dir / 'kubelet' / 'pki'}",
                f"--hostname-override={self.name}",
                f"--node-ip={addresses.node_address}",
                "--v=1",
            ], str(kubelet_config), stop_timeout=20.0),
            self._spec("kube-proxy", [
                *ns, str(self.binaries.kube_proxy), f"--config={proxy_config}", "--v=1",
            ], str(proxy_config)),
        ]

    # --- preparation ---------------------------------------------------------------------
    def _claim(self) -> tuple[NodeAddresses, object]:
        """The node's block and its lock: the block it had before when it is free, else the first free one."""
        previous = self.addresses()
        candidates = node_blocks()
        if previous is not None and previous.block in candidates:
            candidates.remove(previous.block)
            candidates.insert(0, previous.block)
        for block in candidates:
            lock = try_lock(block)
            if lock is None:
                continue
            addresses = NodeAddresses(block)
            routed = subprocess.run(["ip", "route", "show", "exact", str(block)], check=False, capture_output=True,
                                    text=True)
            if routed.stdout.strip() and not (previous is not None and previous.block == block):
                lock.close()  # a node that was killed left its route; leave that block alone
                continue
            self.dir.mkdir(parents=True, exist_ok=True)
            self._block_file.write_text(f"{block}\n")
            return addresses, lock
        raise StartError("every /24 block of the pod range for containerd nodes is in use by another local node")

    def _kubeconfig(self, path: Path, addresses: NodeAddresses, cert: pki.KeyPair) -> None:
        write_cert_kubeconfig(path, server=f"https://{addresses.host_address}:{self.apiserver_port}",
                              ca=self.pki_dir / "ca.crt", cert=cert)

    def _containerd_config(self, addresses: NodeAddresses) -> str:
        d = self.dir
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        return "\n".join([
            "version = 2",
            f'root = "{d / "containerd" / "root"}"',
            f'state = "{self.run_dir / "state"}"',
            "oom_score = 0",
            "[grpc]",
            f'  address = "{self.socket}"',
            "[ttrpc]",
            f'  address = "{self.socket}.ttrpc"',
            "[debug]",
            '  level = "warn"',
            f'[{cri}]',
            f'  sandbox_image = "{images.PAUSE_IMAGE}"',
            "  restrict_oom_score_adj = true",
            "  enable_selinux = false",
            "  disable_apparmor = true",
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
            f'[{cri}.containerd]',
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            f'[{cri}.containerd.runtimes.runc]',
            '  runtime_type = "io.containerd.runc.v2"',
            f'[{cri}.containerd.runtimes.runc.options]',
            "  SystemdCgroup = false",
            f'[{cri}.cni]',
            f'  bin_dir = "{CNI_BIN_DIR}"',
            f'  conf_dir = "{d / "cni" / "net.d"}"',
            f'[{cri}.registry]',
            f'  config_path = "{d / "containerd" / "certs.d"}"',
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{d / "containerd" / "opt"}"',
            "",
        ])

    def _kubelet_config(self, addresses: NodeAddresses) -> dict[str, object]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_parent,
            "cgroupsPerQOS": True,
            "enforceNodeAllocatable": ["pods"],
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "imageServiceEndpoint": f"unix://{self.socket}",
            "address": addresses.node_address,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": addresses.node_address,
            "healthzPort": 10248,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(self.pki_dir / "ca.crt")}},
            "authorization": {"mode": "AlwaysAllow"},
            "clusterDNS": [CLUSTER_DNS],
            "clusterDomain": "cluster.local",
            # No resolver of the host's: a pod with dnsPolicy Default gets none rather than one off the machine.
            "resolvConf": "",
            "podLogsDir": str(self.dir / "kubelet" / "pod-logs"),
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 99,
            "imageGCLowThresholdPercent": 98,
            "serializeImagePulls": False,
            "registerNode": True,
            "makeIPTablesUtilChains": True,
        }

    def _proxy_config(self, addresses: NodeAddresses) -> dict[str, object]:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clientConnection": {"kubeconfig": str(self.dir / "kube-proxy.kubeconfig")},
            "hostnameOverride": self.name,
            "clusterCIDR": self.pod_network,
            "bindAddress": addresses.node_address,
            "healthzBindAddress": f"{addresses.node_address}:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # Leave the machine's conntrack settings alone (they are not the namespace's own).
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"syncPeriod": "30s", "minSyncPeriod": "0s"},
        }

    def _write_files(self, addresses: NodeAddresses) -> None:
        for sub in ("containerd/root", "containerd/certs.d", "containerd/opt", "cni/net.d", "cni/ipam",
                    "kubelet/root", "kubelet/pki", "kubelet/pod-logs", "kube-proxy"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.kubelet_root.is_symlink():
            self.kubelet_root.symlink_to(self.dir / "kubelet" / "root")
        (self.dir / "containerd" / "config.toml").write_text(self._containerd_config(addresses))
        if self.registry:
            # Every registry host's pulls go to the local registry: nothing is pulled from elsewhere.
            default = self.dir / "containerd" / "certs.d" / "_default"
            default.mkdir(parents=True, exist_ok=True)
            (default / "hosts.toml").write_text(
                f'server = "http://{self.registry}"\n\n[host."http://{self.registry}"]\n'
                f'  capabilities = ["pull", "resolve"]\n')
        (self.dir / "cni" / "net.d" / "10-knserve.conflist").write_text(
            json.dumps(addresses.cni_config(self.dir / "cni" / "ipam"), indent=2) + "\n")
        (self.dir / "kubelet" / "config.yaml").write_text(json.dumps(self._kubelet_config(addresses), indent=2) + "\n")
        (self.dir / "kube-proxy" / "config.yaml").write_text(json.dumps(self._proxy_config(addresses), indent=2) + "\n")
        ca = pki.ensure_ca(self.pki_dir)
        kubelet_cert = pki.issue(ca, self.pki_dir, f"kubelet-{self.name}", common_name=f"system:node:{self.name}",
                                 organizations=("system:nodes",), client=True)
        proxy_cert = pki.issue(ca, self.pki_dir, "kube-proxy", common_name="system:kube-proxy", client=True)
        self._kubeconfig(self.dir / "kubelet.kubeconfig", addresses, kubelet_cert)
        self._kubeconfig(self.dir / "kube-proxy.kubeconfig", addresses, proxy_cert)

    def _make_cgroups(self) -> None:
        for hierarchy in _cgroup_hierarchies():
            (hierarchy / self.cgroup_parent.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def _remove_cgroups(self) -> None:
        for hierarchy in _cgroup_hierarchies():
            top = hierarchy / self.cgroup_parent.lstrip("/")
            if not top.is_dir():
                continue
            for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                try:
                    directory.rmdir()
                except OSError:
                    pass
            for directory in (top, top.parent):
                try:
                    directory.rmdir()
                except OSError:
                    pass

    # --- containerd ----------------------------------------------------------------------
    def ctr(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args],
                              capture_output=True, text=True, check=False, timeout=timeout)

    def import_image(self, archive: Path) -> None:
        """Load an image archive (``docker save`` format) into the node's containerd."""
        result = self.ctr("images", "import", str(archive))
        if result.returncode != 0:
            raise StartError(f"importing {archive.name} into node {self.name} failed: {result.stderr.strip()}")

    def _containerd_ready(self) -> bool:
        return self.socket.exists() and self.ctr("version", timeout=5).returncode == 0

    # --- health --------------------------------------------------------------------------
    def _get(self, url: str) -> int:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(url, timeout=2, context=context if url.startswith("https") else None) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except (urllib.error.URLError, OSError):
            return 0

    def kubelet_healthy(self, addresses: NodeAddresses) -> bool:
        return self._get(f"http://{addresses.node_address}:10248/healthz") == 200

    def proxy_healthy(self, addresses: NodeAddresses) -> bool:
        return self._get(f"http://{addresses.node_address}:10256/healthz") == 200

    # --- lifecycle -----------------------------------------------------------------------
    def running(self) -> bool:
        addresses = self.addresses()
        return addresses is not None and any(processes.running_pid(s) is not None for s in self._specs(addresses))

    def daemon_pids(self) -> dict[str, int | None]:
        """containerd's, the kubelet's and kube-proxy's pid while each runs (by component name)."""
        addresses = self.addresses()
        if addresses is None:
            return {}
        return {spec.name.removeprefix(f"{self.name}-"): processes.running_pid(spec) for spec in self._specs(addresses)}

    def status(self) -> list[tuple[str, int | None, bool, Path]]:
        """(name, pid, healthy, log) of the node's daemons."""
        addresses = self.addresses()
        if addresses is None:
            return []
        checks: list[Callable[[], bool]] = [self._containerd_ready, lambda: self.kubelet_healthy(addresses),
                                            lambda: self.proxy_healthy(addresses)]
        rows = []
        for spec, healthy in zip(self._specs(addresses), checks):
            pid = processes.running_pid(spec)
            rows.append((spec.name, pid, pid is not None and healthy(), spec.log_file))
        return rows

    def prepare_network(self, *, progress: Progress = print) -> NodeAddresses:
        """Claim the node's block and make its namespace and routes; call after the host's
        unreachable routes are in place and before the API server starts."""
        addresses = self.addresses()
        if addresses is not None and self.running():
            NodeNetwork(addresses, blocked=self.blocked, service_range=self.service_range).setup()
            return addresses
        addresses, lock = self._claim()
        self._lock = lock
        NodeNetwork(addresses, blocked=self.blocked, service_range=self.service_range).setup()
        progress(f"node {self.name}: network namespace {addresses.namespace}, pods in {addresses.block}")
        return addresses

    def join(self, others: list[NodeAddresses], *, shared_host_address: str) -> None:
        """Routes to the other nodes of the cluster (``NodeNetwork.join``)."""
        addresses = self.addresses()
        assert addresses is not None
        NodeNetwork(addresses, blocked=self.blocked, service_range=self.service_range).join(
            others, shared_host_address=shared_host_address)

    def start(self, *, progress: Progress = print) -> None:
        addresses = self.prepare_network(progress=progress) if self._lock is None else self.addresses()
        assert addresses is not None
        self._write_files(addresses)
        self._make_cgroups()
        lock = self._lock
        lock_fd = lock.fileno() if lock is not None else None  # type: ignore[attr-defined]
        containerd, kubelet, proxy = self._specs(addresses, lock_fd)
        began = time.monotonic()
        pid = processes.start(containerd)
        processes.wait_healthy(containerd, pid, self._containerd_ready, timeout=30.0, interval=0.2)
        if lock is not None:
            lock.close()  # type: ignore[attr-defined]  # containerd holds it now
            self._lock = None
        pause = images.static_program_image(images.PAUSE_IMAGE, images.PAUSE_SOURCE, cache_root() / "images")
        self.import_image(pause)
        progress(f"node {self.name}: containerd ready ({time.monotonic() - began:.1f}s)")
        began = time.monotonic()
        pid = processes.start(kubelet)
        processes.wait_healthy(kubelet, pid, lambda: self.kubelet_healthy(addresses), timeout=60.0, interval=0.2)
        pid = processes.start(proxy)
        processes.wait_healthy(proxy, pid, lambda: self.proxy_healthy(addresses), timeout=60.0, interval=0.2)
        progress(f"node {self.name}: kubelet and kube-proxy ready ({time.monotonic() - began:.1f}s)")

    def _pod_namespaces(self) -> list[str]:
        """The network namespaces containerd made for this node's pods."""
        found = []
        listed = self.ctr("containers", "ls", "-q", timeout=20)
        for container in listed.stdout.split() if listed.returncode == 0 else []:
            info = self.ctr("containers", "info", container, timeout=20)
            try:
                spec = json.loads(info.stdout).get("Spec", {})
            except ValueError:
                continue
            for namespace in spec.get("linux", {}).get("namespaces", []):
                path = namespace.get("path", "")
                if namespace.get("type") == "network" and path.startswith(("/var/run/netns/", "/run/netns/")):
                    found.append(Path(path).name)
        return sorted(set(found))

    def _kill_tasks(self) -> None:
        listed = self.ctr("tasks", "ls", "-q", timeout=20)
        for task in listed.stdout.split() if listed.returncode == 0 else []:
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, timeout=20)
        deadline = time.monotonic() + 10
        for task in listed.stdout.split() if listed.returncode == 0 else []:
            while self.ctr("tasks", "delete", task, timeout=20).returncode != 0 and time.monotonic() < deadline:
                time.sleep(0.2)

    def _kill_shims(self) -> None:
        """Shims of this node's containerd that outlived it (found by its socket on their command line)."""
        marker = str(self.socket)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and b"containerd-shim" in argv[0] and marker.encode() in argv:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _halt(self, addresses: NodeAddresses, *, kubelet_first: bool, progress: Progress) -> list[str]:
        """Stop the kubelet and kube-proxy, kill every pod's processes, stop containerd and its
        shims; the pods' network namespaces, left for the caller to delete."""
        containerd, kubelet, proxy = self._specs(addresses)
        for spec in (kubelet, proxy) if kubelet_first else (proxy, kubelet):
            if processes.stop(spec):
                progress(f"stopped {spec.name}")
        pod_namespaces: list[str] = []
        if processes.running_pid(containerd) is not None:
            pod_namespaces = self._pod_namespaces()
            self._kill_tasks()
        if processes.stop(containerd):
            progress(f"stopped {containerd.name}")
        self._kill_shims()
        return pod_namespaces

    @staticmethod
    def _delete_namespaces(names: list[str]) -> None:
        for namespace in names:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)

    def lose(self, *, progress: Progress = print) -> None:
        """The node as a machine that lost its power: the kubelet and kube-proxy stop reporting,
        every pod's processes are killed with their network namespaces, and containerd stops. The
        node's own namespace and routes stay, so its pods' addresses go unanswered (nothing refuses
        a connection) until the cluster notices; ``stop`` removes the rest."""
        addresses = self.addresses()
        if addresses is not None:
            self._delete_namespaces(self._halt(addresses, kubelet_first=True, progress=progress))

    def stop(self, *, progress: Progress = print) -> None:
        """Stop the daemons and remove what the node made: pods, mounts, namespaces, cgroups, veth pair."""
        addresses = self.addresses()
        if addresses is None:
            return
        pod_namespaces = self._halt(addresses, kubelet_first=False, progress=progress)
        for point in _mounts_under([self.dir, self.run_dir]):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        self._delete_namespaces(pod_namespaces)
        NodeNetwork(addresses, blocked=self.blocked, service_range=self.service_range).teardown()
        self._remove_cgroups()
        shutil.rmtree(self.dir / "cni" / "ipam", ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
