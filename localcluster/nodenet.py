"""The network of a containerd node: a network namespace joined to the host by a veth pair,
the way kind joins a node container to its Docker network.

Each node takes one /24 of the pod range from the top half down (``10.244.128.0/24`` first;
process node agents take theirs from the bottom), under the same lock files the process node
agents use, so no two nodes of any local cluster share a block. The lock is handed to the
node's containerd, which holds it for as long as it runs. In block ``10.244.N.0/24``:

- ``.1`` is the CNI bridge ``cni0`` inside the namespace, the pods' gateway; host-local hands
  out ``.2``-``.251``;
- ``.252/30`` is the veth link: ``.253`` on the host's end ``knsnh<N>``, ``.254`` on ``eth0``
  inside the namespace, the Node's InternalIP. The kubelet and kube-proxy reach the API server
  at ``.253``. Pods see both as on-link (in their /24), so ``cni0`` answers ARP for them
  (``proxy_arp``).

The host routes the block into the namespace, more specific than its ``unreachable`` route for
the whole pod range. The namespace has no default route, and ``unreachable`` routes for the
cluster's ranges: whatever a pod sends to an address no Service rule or pod answers fails there
("No route to host", or "Network is unreachable" outside the cluster's ranges) and never reaches
the host's default route (the node's own connections to a ClusterIP alone are routed into the
loopback device, so kube-proxy's DNAT can take them; one nothing serves ends there). The
namespace forwards (its pods' traffic); the host does not.

With several nodes, each routes the others' blocks through the host, which forwards only
what arrives on a node's veth (``join``); a node's address of no node still ends unreachable
on the host.

``NodeAddresses`` is pure. ``NodeNetwork`` runs ``ip``, ``sysctl`` (through ``nsenter``) and
takes the lock.

Side effects: lock files in the machine's temporary directory; network namespaces under
/run/netns, veth pairs, routes on the host and in the namespace.
"""

from __future__ import annotations

import dataclasses
import fcntl
import ipaddress
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from localcluster.processes import StartError

POD_NETWORK = ipaddress.IPv4Network("10.244.0.0/16")
# The process node agents' lock directory and file names (node.network), shared on purpose.
BLOCK_LOCKS = Path(tempfile.gettempdir()) / "knserve-node-blocks"
NAMESPACE_PREFIX = "knsnode-"
FIRST_NODE_BLOCK = 128
LOCAL_SERVICE_TABLE = "157"

RunCommand = Callable[[Sequence[str]], tuple[int, str]]


def run_command(command: Sequence[str]) -> tuple[int, str]:
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


@dataclasses.dataclass(frozen=True)
class NodeAddresses:
    """Every name and address of one node, from its block."""

    block: ipaddress.IPv4Network

    @property
    def third(self) -> int:
        return int(self.block.network_address.packed[2])

    def _host(self, last: int) -> str:
        return str(self.block.network_address + last)

    @property
    def gateway(self) -> str:
        return self._host(1)

    @property
    def range_end(self) -> str:
        return self._host(251)

    @property
    def link(self) -> str:
        return f"{self._host(252)}/30"

    @property
    def host_address(self) -> str:
        return self._host(253)

    @property
    def node_address(self) -> str:
        return self._host(254)

    @property
    def namespace(self) -> str:
        return f"{NAMESPACE_PREFIX}{self.third}"

    @property
    def namespace_path(self) -> Path:
        return Path("/run/netns") / self.namespace

    @property
    def host_veth(self) -> str:
        return f"knsnh{self.third}"

    @property
    def peer_veth(self) -> str:
        return f"knsnp{self.third}"

    def nsenter(self) -> list[str]:
        return ["nsenter", f"--net={self.namespace_path}"]

    def cni_config(self, ipam_dir: Path) -> dict[str, object]:
        """The CNI network: a bridge with host-local addresses from the block, and portmap."""
        return {
            "cniVersion": "0.4.0",
            "name": "knserve",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": str(self.block), "rangeEnd": self.range_end,
                                     "gateway": self.gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(ipam_dir),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }


def node_blocks() -> list[ipaddress.IPv4Network]:
    blocks = list(POD_NETWORK.subnets(new_prefix=24))
    return blocks[FIRST_NODE_BLOCK:255]


def _lock_path(block: ipaddress.IPv4Network) -> Path:
    return BLOCK_LOCKS / (str(block).replace("/", "_") + ".lock")


def try_lock(block: ipaddress.IPv4Network) -> IO[bytes] | None:
    BLOCK_LOCKS.mkdir(exist_ok=True)
    handle = open(_lock_path(block), "ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class NodeNetwork:
    """Sets up and removes one node's namespace, veth pair and routes."""

    def __init__(self, addresses: NodeAddresses, *, blocked: Sequence[str], service_range: str,
                 run: RunCommand = run_command) -> None:
        self.addresses = addresses
        self.blocked = tuple(blocked)
        self.service_range = service_range
        self.run = run

    def _must(self, command: Sequence[str], what: str) -> str:
        code, output = self.run(command)
        if code != 0:
            raise StartError(f"could not {what} for node network {self.addresses.block}: {output}")
        return output

    def exists(self) -> bool:
        return self.addresses.namespace_path.exists()

    def setup(self) -> None:
        """Make the namespace, the veth pair and the routes (idempotent: an existing namespace
        is checked and completed)."""
        a = self.addresses
        if not self.exists():
            self._must(["ip", "netns", "add", a.namespace], "make the network namespace")
        ns = ["ip", "-n", a.namespace]
        if self.run(["ip", "link", "show", a.host_veth])[0] != 0:
            self.run(["ip", "link", "del", a.peer_veth])
            self._must(["ip", "link", "add", a.host_veth, "type", "veth", "peer", "name", a.peer_veth], "make the veth pair")
            self._must(["ip", "link", "set", a.peer_veth, "netns", a.namespace], "move the veth into the namespace")
            self._must([*ns, "link", "set", a.peer_veth, "name", "eth0"], "name the node's interface")
            self._must(["ip", "addr", "add", f"{a.host_address}/30", "dev", a.host_veth], "address the host's veth")
            self._must([*ns, "addr", "add", f"{a.node_address}/30", "dev", "eth0"], "address the node's veth")
        self._must(["ip", "link", "set", a.host_veth, "up"], "bring the host's veth up")
        self._must([*ns, "link", "set", "eth0", "up"], "bring the node's veth up")
        self._must([*ns, "link", "set", "lo", "up"], "bring the node's loopback up")
        for network in self.blocked:
            self._must([*ns, "route", "replace", "unreachable", network], f"block {network} inside the node")
        # The node's own connections to a ClusterIP (hostNetwork pods) must pass the route lookup
        # that comes before kube-proxy's DNAT: they alone see a route, into the loopback device.
        self._must([*ns, "route", "replace", self.service_range, "dev", "lo", "src", a.node_address,
                    "table", LOCAL_SERVICE_TABLE], "route the node's own Service connections")
        if f"lookup {LOCAL_SERVICE_TABLE}" not in self._must([*ns, "rule", "show"], "list the routing rules"):
            self._must([*ns, "rule", "add", "iif", "lo", "to", self.service_range, "lookup", LOCAL_SERVICE_TABLE,
                        "priority", "1000"], "add the rule for the node's own Service connections")
        self._must(["ip", "route", "replace", str(a.block), "via", a.node_address, "dev", a.host_veth],
                   "route the node's pods from the host")
        self._must([*a.nsenter(), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], "let the node forward")
        # Pods see the whole block on-link, the veth link's two addresses too: cni0 answers
        # their ARP for those (it routes them through eth0). cni0 is made with the first pod,
        # so it takes the namespace's default; one that exists already is set directly.
        self._must([*a.nsenter(), "sysctl", "-q", "-w", "net.ipv4.conf.default.proxy_arp=1"], "let cni0 answer ARP")
        for setting in ("net.ipv4.conf.cni0.proxy_arp=1", "net.bridge.bridge-nf-call-iptables=1"):
            self.run([*a.nsenter(), "sysctl", "-q", "-w", setting])

    def join(self, others: Sequence[NodeAddresses], *, shared_host_address: str) -> None:
        """Route the other nodes' blocks, and the host address every node uses for the API
        server and the registry, through this node's host end; the host forwards what
        arrives on this veth (only there: its own forwarding stays off)."""
        a = self.addresses
        ns = ["ip", "-n", a.namespace]
        for other in others:
            if other.block != a.block:
                self._must([*ns, "route", "replace", str(other.block), "via", a.host_address, "dev", "eth0"],
                           f"route node block {other.block}")
        if shared_host_address != a.host_address:
            self._must([*ns, "route", "replace", f"{shared_host_address}/32", "via", a.host_address, "dev", "eth0"],
                       "route the cluster's host address")
        if any(other.block != a.block for other in others):
            self._must(["sysctl", "-q", "-w", f"net.ipv4.conf.{a.host_veth}.forwarding=1"],
                       "let the host forward between nodes")

    def teardown(self) -> None:
        """Remove the route, the veth pair and the namespace (gone already is fine)."""
        a = self.addresses
        self.run(["ip", "route", "del", str(a.block), "via", a.node_address])
        self.run(["ip", "link", "del", a.host_veth])
        if self.exists():
            self.run(["ip", "netns", "del", a.namespace])
