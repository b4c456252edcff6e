"""One containerd node in the local cluster: a pod of a local image runs and answers from the
host, cluster addresses nobody serves stay unreachable, and stopping removes what the node made,
as does a start that fails."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcluster import binaries, images, nodesetup
from localcluster.controlplane import POD_NETWORK, Ports
from localcluster.realcluster import ContainerdCluster, RealNodesControlPlane
from localcluster.stack import kubectl_binary

HELLO_SOURCE = Path(__file__).parent / "hello_httpd.c"
HELLO_IMAGE = "knserve.local/hello-httpd:1"


@dataclass
class NodeCluster:
    real: ContainerdCluster

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([kubectl_binary(), f"--kubeconfig={self.real.cluster.kubeconfig}", *args],
                                capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    nodesetup.ensure_packages()
    node_binaries = binaries.ensure_node_binaries()
    control_plane = RealNodesControlPlane(tmp_path_factory.mktemp("containerd") / "state", binaries.ensure_binaries(),
                                          ports=Ports.free())
    real = ContainerdCluster(control_plane, node_binaries, nodes=1)
    try:
        real.start(progress=lambda _: None)
        yield NodeCluster(real)
    finally:
        real.stop(progress=lambda _: None)


def test_pod_of_a_local_image_runs_and_answers_the_host_at_its_pod_ip(nodes: NodeCluster, tmp_path: Path) -> None:
    [node] = nodes.real.nodes
    node.import_image(images.static_program_image(HELLO_IMAGE, HELLO_SOURCE, tmp_path, exposed_ports=[8080]))
    nodes.kubectl("run", "hello", f"--image={HELLO_IMAGE}", "--port=8080", "--image-pull-policy=Never")
    nodes.kubectl("wait", "pod/hello", "--for=condition=Ready", "--timeout=60s")
    pod = json.loads(nodes.kubectl("get", "pod", "hello", "-o", "json").stdout)
    addresses = node.addresses()
    assert addresses is not None
    assert pod["spec"]["nodeName"] == node.name
    assert ipaddress.ip_address(pod["status"]["podIP"]) in addresses.block
    with urllib.request.urlopen(f"http://{pod['status']['podIP']}:8080/", timeout=5) as answer:
        assert answer.read() == b"hello from hello\n"


def test_cluster_addresses_nobody_serves_are_unreachable_on_the_host_and_for_pods(nodes: NodeCluster) -> None:
    [node] = nodes.real.nodes
    addresses = node.addresses()
    assert addresses is not None
    unused_service_ip = "10.96.254.254"
    assert nodes.kubectl("get", "services", "-A", f"--field-selector=spec.clusterIP={unused_service_ip}",
                         "-o", "name").stdout.strip() == ""
    # A pod IP of a block no node of any local cluster has routed.
    free_block = next(b for b in ipaddress.IPv4Network(POD_NETWORK).subnets(new_prefix=24)
                      if not _ip("route", "show", "exact", str(b)).stdout.strip()
                      and not _ip("-o", "addr", "show", "to", str(b)).stdout.strip())
    unused_pod_ip = str(free_block.network_address + 77)
    for address in (unused_service_ip, unused_pod_ip):
        host = _ip("route", "get", address)
        assert host.returncode != 0 and "No route to host" in host.stderr, host
        # What a pod sends arrives on cni0 and is routed by the node.
        pod = subprocess.run(["nsenter", f"--net={addresses.namespace_path}", "ip", "route", "get", address,
                              "from", str(addresses.block.network_address + 2), "iif", "cni0"],
                             capture_output=True, text=True, check=False)
        assert pod.returncode != 0 and "No route to host" in pod.stderr, pod


def test_the_kubelet_acts_as_its_node_and_may_not_read_the_clusters_secrets(nodes: NodeCluster) -> None:
    [node] = nodes.real.nodes
    as_kubelet = [f"--kubeconfig={node.dir / 'kubelet.kubeconfig'}", "auth", "can-i"]
    whoami = nodes.kubectl(f"--kubeconfig={node.dir / 'kubelet.kubeconfig'}", "auth", "whoami", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == f"system:node:{node.name}"
    assert nodes.kubectl(*as_kubelet, "get", f"nodes/{node.name}").stdout.strip() == "yes"
    for verb, what in (("list", "secrets"), ("create", "deployments.apps"), ("update", "services"),
                       ("delete", "namespaces")):
        answer = nodes.kubectl(*as_kubelet, verb, what, "--all-namespaces", check=False)
        assert answer.stdout.startswith("no"), (verb, what, answer.stdout, answer.stderr)


def test_stop_removes_processes_namespaces_mounts_and_cgroups(nodes: NodeCluster) -> None:
    [node] = nodes.real.nodes
    addresses = node.addresses()
    assert addresses is not None
    nodes.real.stop(progress=lambda _: None)
    assert not node.running()
    assert not addresses.namespace_path.exists()
    assert _ip("link", "show", addresses.host_veth).returncode != 0
    assert _ip("route", "show", "exact", str(addresses.block)).stdout.strip() == ""
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(node.dir) not in mounts and str(node.run_dir) not in mounts
    assert not any(Path("/sys/fs/cgroup").glob(f"*/{node.cgroup_parent.lstrip('/')}"))
    assert _processes_naming(str(node.socket)) == []


def _processes_naming(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            continue
    return found


def _namespaces() -> set[str]:
    return {line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()}


def test_an_up_whose_api_server_cannot_start_says_why_and_leaves_no_node_behind(tmp_path: Path) -> None:
    """``knserve local up --runtime containerd`` with the API server's port taken: it fails with
    the reason and removes the node it had made (namespace, veth, route, processes) again."""
    state = tmp_path / "state"
    state.mkdir()
    ports = Ports.free()
    (state / "cluster.json").write_text(json.dumps({"ports": dataclasses.asdict(ports),
                                                    "version": binaries.KUBERNETES_VERSION}))
    namespaces, links = _namespaces(), _ip("-o", "link", "show").stdout.count("\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.apiserver))
        taken.listen()
        result = subprocess.run([str(Path(sys.executable).parent / "knserve"), "local", "--state-dir", str(state),
                                 "up", "--runtime", "containerd"],
                                capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "kube-apiserver" in result.stderr, result.stderr
    assert "network namespace" in result.stdout, result.stdout  # the node had been made
    assert _namespaces() == namespaces
    assert _ip("-o", "link", "show").stdout.count("\n") == links
    assert _processes_naming(str(state)) == []
