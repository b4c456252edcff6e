"""Pod networking on this host: the node's address block, its bridge and one network
namespace per pod, the way a CNI bridge plugin sets them up.

Each agent claims one /24 block of 10.244.0.0/16 under an exclusive lock held as long as it
runs, so several local clusters on one machine (a developer's and a test run's) never hand
out the same address; an agent that restarts asks for its previous block first.

``BridgeNetwork`` (needs CAP_NET_ADMIN, i.e. root) makes the Linux bridge ``kns<n>`` (n: the
block's third octet) carrying ``10.244.<n>.1/24``: the pods' gateway, the Node's InternalIP
and the IP of ``hostNetwork`` pods. Every other pod gets a network namespace
``knserve-<n>-<m>`` (its IP is ``10.244.<n>.<m>``) holding ``lo`` and ``eth0``, one end of a
veth pair whose host end ``knsv<n>-<m>`` hangs on the bridge, with a default route via the
gateway. All containers of the pod run inside that namespace, so each may bind
``0.0.0.0:8080`` and they share ``localhost``, as in Kubernetes. ``eth0``'s MAC derives
from the pod IP (``0a:58`` + the IP's four bytes, as OVN-Kubernetes does): an IP goes to a
new pod as soon as the old one is gone, while the host's neighbour entry for it (and any
pod's) stays REACHABLE with the old MAC for up to half a minute; with a random MAC, probes
and requests to the new pod went unanswered that long. Names derive from the pod
IP, so an agent that restarts finds the namespaces of the pods it adopts. A stopping agent
removes its namespaces and bridge; what a killed agent left is removed by the next agent that
starts (``remove_orphaned_networks``: blocks whose lock nobody holds).

``LoopbackRange`` is the fallback without root: pods get 127.0.x.y addresses in the host's
namespace; they run and answer, but the API server refuses loopback addresses in
EndpointSlices, so Services get no endpoints.

Side effects: lock files in the machine's temporary directory; ``BridgeNetwork`` runs ``ip``
(bridges, veth pairs, network namespaces under /run/netns).
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger(__name__)

DEFAULT_POD_NETWORK = ipaddress.IPv4Network("10.244.0.0/16")
LOOPBACK_POD_NETWORK = ipaddress.IPv4Network("127.0.0.0/16")
BLOCK_PREFIX = 24
NAMESPACE_DIRECTORY = Path("/run/netns")
NAMESPACE_PREFIX = "knserve-"
# Pod addresses an older agent put on lo; swept at start-up.
LEGACY_LOOPBACK_NETWORK = ipaddress.IPv4Network("198.19.0.0/16")
LEGACY_ADDRESS_LABEL = "lo:knserve"
_CAP_NET_ADMIN = 12


def lock_directory() -> Path:
    directory = Path(tempfile.gettempdir()) / "knserve-node-blocks"
    directory.mkdir(exist_ok=True)
    try:
        os.chmod(directory, 0o1777)
    except PermissionError:
        pass
    return directory


def candidate_blocks(network: ipaddress.IPv4Network, preferred: str | None) -> list[ipaddress.IPv4Network]:
    """The /24 blocks of ``network`` in the order to try them; never the one with 127.0.0.1."""
    blocks = [b for b in network.subnets(new_prefix=BLOCK_PREFIX) if ipaddress.IPv4Address("127.0.0.1") not in b]
    if preferred:
        try:
            wanted = ipaddress.IPv4Network(preferred)
        except ValueError:
            wanted = None
        if wanted in blocks:
            assert wanted is not None
            blocks.remove(wanted)
            blocks.insert(0, wanted)
    return blocks


def try_lock_block(block: ipaddress.IPv4Network, directory: Path | None = None) -> IO[bytes] | None:
    """The lock of ``block`` (keep the file open to keep it), or None when an agent holds it."""
    path = (directory or lock_directory()) / (str(block).replace("/", "_") + ".lock")
    handle = open(path, "ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def claim_block(
    network: ipaddress.IPv4Network, *, preferred: str | None, directory: Path | None = None
) -> tuple[ipaddress.IPv4Network, IO[bytes]]:
    """Lock the first free block of ``network``; keep the returned file open to keep it."""
    for block in candidate_blocks(network, preferred):
        handle = try_lock_block(block, directory)
        if handle is not None:
            return block, handle
    raise RuntimeError(f"every /{BLOCK_PREFIX} block of {network} is used by another node agent")


def can_manage_network() -> bool:
    """Whether this process may create bridges and namespaces (CAP_NET_ADMIN) and has ``ip``."""
    if shutil.which("ip") is None:
        return False
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return os.geteuid() == 0


def gateway_of(block: ipaddress.IPv4Network) -> str:
    return str(block.network_address + 1)


def bridge_name(block: ipaddress.IPv4Network) -> str:
    return f"kns{block.network_address.packed[2]}"


def namespace_name(address: str) -> str:
    octets = ipaddress.IPv4Address(address).packed
    return f"{NAMESPACE_PREFIX}{octets[2]}-{octets[3]}"


def host_veth_name(address: str) -> str:
    octets = ipaddress.IPv4Address(address).packed
    return f"knsv{octets[2]}-{octets[3]}"


def pod_mac_address(address: str) -> str:
    """The MAC of a pod's ``eth0``: locally administered unicast, the same for the same IP."""
    return ":".join(f"{byte:02x}" for byte in (0x0A, 0x58, *ipaddress.IPv4Address(address).packed))


def namespace_address(name: str, block: ipaddress.IPv4Network) -> str | None:
    """The pod IP a namespace name of this block stands for, or None when it is not ours."""
    if not name.startswith(NAMESPACE_PREFIX):
        return None
    third, _, fourth = name[len(NAMESPACE_PREFIX):].partition("-")
    if not (third.isdigit() and fourth.isdigit()) or int(third) > 255 or int(fourth) > 255:
        return None
    address = ipaddress.IPv4Address(int(block.network_address) & 0xFFFF0000 | int(third) << 8 | int(fourth))
    return str(address) if address in block else None


class PodNetwork(Protocol):
    """Gives pods their IPs: the host side (bridge) and one network per pod."""

    @property
    def gateway(self) -> str | None:
        """The address pods reach the host on (None: pods share the host's namespace)."""

    async def setup(self, wanted: set[str]) -> None: ...

    async def attach(self, address: str) -> None: ...

    async def detach(self, address: str) -> None: ...

    async def sync(self, wanted: set[str]) -> None: ...

    async def teardown(self) -> None: ...

    def namespace_path(self, address: str) -> Path | None:
        """Where the pod's network namespace is mounted (None: the host's namespace)."""


class LoopbackRange:
    """127.x addresses in the host's namespace: nothing to create or remove."""

    gateway = None

    async def setup(self, wanted: set[str]) -> None:
        return None

    async def attach(self, address: str) -> None:
        return None

    async def detach(self, address: str) -> None:
        return None

    async def sync(self, wanted: set[str]) -> None:
        return None

    async def teardown(self) -> None:
        return None

    def namespace_path(self, address: str) -> Path | None:
        return None


async def run_ip(*args: str, stdin: str | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "ip", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate(stdin.encode() if stdin is not None else None)
    return int(process.returncode or 0), output.decode("utf-8", "replace").strip()


class NetworkSetupError(OSError):
    """A bridge, veth pair or namespace could not be made; the message says which and why."""


class BridgeNetwork:
    """A bridge for the block and a network namespace per pod, as described above."""

    def __init__(self, block: ipaddress.IPv4Network) -> None:
        self.block = block
        self.bridge = bridge_name(block)
        self._gateway = gateway_of(block)

    @property
    def gateway(self) -> str | None:
        return self._gateway

    def namespace_path(self, address: str) -> Path | None:
        return NAMESPACE_DIRECTORY / namespace_name(address)

    async def setup(self, wanted: set[str]) -> None:
        """Make the bridge (or take over an existing one), drop namespaces of pods not in
        ``wanted``, and remove pod addresses an older agent put on ``lo``."""
        await sweep_legacy_loopback_addresses()
        code, output = await run_ip("link", "add", self.bridge, "type", "bridge")
        if code != 0 and "File exists" not in output:
            raise NetworkSetupError(f"creating bridge {self.bridge} failed: {output}")
        code, output = await run_ip("addr", "replace", f"{self._gateway}/{self.block.prefixlen}", "dev", self.bridge)
        if code != 0:
            raise NetworkSetupError(f"giving bridge {self.bridge} the address {self._gateway} failed: {output}")
        code, output = await run_ip("link", "set", self.bridge, "up")
        if code != 0:
            raise NetworkSetupError(f"bringing bridge {self.bridge} up failed: {output}")
        await self.sync(wanted)

    def _present(self) -> set[str]:
        """Pod IPs of this block whose namespace exists."""
        try:
            names = os.listdir(NAMESPACE_DIRECTORY)
        except OSError:
            return set()
        return {address for name in names if (address := namespace_address(name, self.block)) is not None}

    async def _configured(self, address: str) -> bool:
        """Whether the pod's namespace is complete: its eth0 carries ``address``."""
        code, output = await run_ip("-n", namespace_name(address), "-4", "-o", "addr", "show", "dev", "eth0")
        return code == 0 and f" {address}/" in output

    async def attach(self, address: str) -> None:
        """Make the pod's namespace (or keep the one an earlier agent made for it)."""
        namespace = namespace_name(address)
        host_end = host_veth_name(address)
        if address in self._present() and await self._configured(address):
            code, output = await run_ip("link", "set", host_end, "master", self.bridge, "up")
            if code == 0:
                return
        await self.detach(address)
        pod_end = f"knsp{host_end[4:]}"
        code, output = await run_ip("-batch", "-", stdin="\n".join([
            f"netns add {namespace}",
            f"link add {host_end} type veth peer name {pod_end} netns {namespace}",
            f"link set {host_end} master {self.bridge} up",
        ]) + "\n")
        if code == 0:
            code, output = await run_ip("-n", namespace, "-batch", "-", stdin="\n".join([
                "link set lo up",
                f"link set {pod_end} address {pod_mac_address(address)}",
                f"link set {pod_end} name eth0",
                f"addr add {address}/{self.block.prefixlen} dev eth0",
                "link set eth0 up",
                f"route add default via {self._gateway}",
            ]) + "\n")
        if code != 0:
            await self.detach(address)
            raise NetworkSetupError(f"setting up the network namespace {namespace} for pod IP {address} failed: {output}")

    async def detach(self, address: str) -> None:
        """Remove the pod's veth pair and namespace (its processes must have ended)."""
        code, output = await run_ip("link", "del", host_veth_name(address))
        if code != 0 and "Cannot find device" not in output:
            log.warning("removing the veth of pod IP %s failed: %s", address, output)
        namespace = namespace_name(address)
        if (NAMESPACE_DIRECTORY / namespace).exists():
            code, output = await run_ip("netns", "del", namespace)
            if code != 0:
                log.warning("removing network namespace %s failed: %s", namespace, output)

    async def sync(self, wanted: set[str]) -> None:
        """Remove the namespaces of this block whose pods are not in ``wanted``."""
        for address in sorted(self._present() - wanted):
            await self.detach(address)

    async def teardown(self) -> None:
        """Remove every pod namespace of this block and the bridge."""
        await self.sync(set())
        code, output = await run_ip("link", "del", self.bridge)
        if code != 0 and "Cannot find device" not in output:
            log.warning("removing bridge %s failed: %s", self.bridge, output)


async def remove_orphaned_networks(network: ipaddress.IPv4Network, *, own: ipaddress.IPv4Network) -> None:
    """Remove bridges and pod namespaces of blocks no running agent holds (an agent that was
    killed cannot clean up after itself): a block whose lock is free is nobody's."""
    code, output = await run_ip("-o", "link", "show", "type", "bridge")
    thirds = set()
    for line in output.splitlines() if code == 0 else []:
        name = line.split(":")[1].strip() if line.count(":") >= 2 else ""
        if name.startswith("kns") and name[3:].isdigit():
            thirds.add(int(name[3:]))
    try:
        namespaces = os.listdir(NAMESPACE_DIRECTORY)
    except OSError:
        namespaces = []
    for name in namespaces:
        third_text, _, fourth_text = name[len(NAMESPACE_PREFIX):].partition("-")
        if name.startswith(NAMESPACE_PREFIX) and third_text.isdigit() and fourth_text.isdigit():
            thirds.add(int(third_text))
    base = int(network.network_address) & 0xFFFF0000
    for third in sorted(thirds):
        if third > 255:
            continue
        block = ipaddress.IPv4Network((base | third << 8, BLOCK_PREFIX))
        if block == own or block.network_address not in network:
            continue
        lock = try_lock_block(block)
        if lock is None:
            continue
        try:
            log.info("removing the pod network of %s, left by a node agent that no longer runs", block)
            await BridgeNetwork(block).teardown()
        finally:
            lock.close()


def legacy_loopback_addresses(output: str) -> list[ipaddress.IPv4Interface]:
    """The pod addresses an older agent put on ``lo``, from ``ip -4 -o addr show dev lo``
    (whose lines end in a backslash before the lifetimes)."""
    found = []
    for line in output.splitlines():
        words = line.replace("\\", " ").split()
        if "inet" not in words or LEGACY_ADDRESS_LABEL not in words:
            continue
        interface = ipaddress.IPv4Interface(words[words.index("inet") + 1])
        if interface.ip in LEGACY_LOOPBACK_NETWORK:
            found.append(interface)
    return found


async def sweep_legacy_loopback_addresses() -> None:
    """Remove pod addresses (198.19.x.y, label ``lo:knserve``) an older agent added to ``lo``."""
    code, output = await run_ip("-4", "-o", "addr", "show", "dev", "lo")
    if code != 0:
        return
    for interface in legacy_loopback_addresses(output):
        code, message = await run_ip("-4", "addr", "del", str(interface), "dev", "lo")
        log.info("removed stale pod address %s from lo%s", interface.ip, "" if code == 0 else f": {message}")
