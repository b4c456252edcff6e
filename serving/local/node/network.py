"""Where pod IPs live on the host: the node's address block and the addresses on ``lo``.

Pod IPs must be real host addresses (Envoy, the activator and probes connect to them) but
must not be loopback ones: the API server refuses EndpointSlices with addresses in
127.0.0.0/8, so Services would never get endpoints. So by default each pod IP is taken from
198.19.0.0/16 (a reserved benchmarking range, not routed on real networks) and added to
``lo`` as a /32 with the label ``lo:knserve``, which needs CAP_NET_ADMIN (root). Without it
the agent falls back to 127.0.x.y addresses, which need no setup; pods then run and answer,
but Services get no endpoints, and the agent says so in its log.

Each agent claims one /24 block of the range for its pods, under an exclusive lock held as
long as it runs, so several local clusters on one machine (a developer's and a test run's)
never hand out the same address; an agent that restarts asks for its previous block first.

Side effects: lock files in the machine's temporary directory; runs ``ip addr``.
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

DEFAULT_POD_NETWORK = ipaddress.IPv4Network("198.19.0.0/16")
LOOPBACK_POD_NETWORK = ipaddress.IPv4Network("127.0.0.0/16")
BLOCK_PREFIX = 24
ADDRESS_LABEL = "lo:knserve"
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


def claim_block(
    network: ipaddress.IPv4Network, *, preferred: str | None, directory: Path | None = None
) -> tuple[ipaddress.IPv4Network, IO[bytes]]:
    """Lock the first free block of ``network``; keep the returned file open to keep it."""
    directory = directory or lock_directory()
    for block in candidate_blocks(network, preferred):
        path = directory / (str(block).replace("/", "_") + ".lock")
        handle = open(path, "ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return block, handle
    raise RuntimeError(f"every /{BLOCK_PREFIX} block of {network} is used by another node agent")


def can_add_addresses() -> bool:
    """Whether this process may add addresses to interfaces (CAP_NET_ADMIN) and has ``ip``."""
    if shutil.which("ip") is None:
        return False
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return os.geteuid() == 0


class PodAddresses(Protocol):
    """Makes pod IPs reachable on the host."""

    async def attach(self, address: str) -> None: ...

    async def detach(self, address: str) -> None: ...

    async def sync(self, wanted: set[str]) -> None: ...


class LoopbackRange:
    """127.x addresses: every one is already local; nothing to add or remove."""

    async def attach(self, address: str) -> None:
        return None

    async def detach(self, address: str) -> None:
        return None

    async def sync(self, wanted: set[str]) -> None:
        return None


async def _ip(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return int(process.returncode or 0), output.decode("utf-8", "replace")


class LoopbackAliases:
    """Pod IPs added to ``lo`` as /32 addresses labelled ``lo:knserve``, within one block."""

    def __init__(self, block: ipaddress.IPv4Network) -> None:
        self.block = block

    async def attach(self, address: str) -> None:
        code, output = await _ip("-4", "addr", "add", f"{address}/32", "dev", "lo", "label", ADDRESS_LABEL)
        if code != 0 and "File exists" not in output and "already assigned" not in output:
            raise OSError(f"adding pod address {address} to lo failed: {output.strip()}")

    async def detach(self, address: str) -> None:
        code, output = await _ip("-4", "addr", "del", f"{address}/32", "dev", "lo")
        if code != 0 and "Cannot assign" not in output:
            log.warning("removing pod address %s from lo failed: %s", address, output.strip())

    async def present(self) -> set[str]:
        """Our block's addresses now on ``lo``."""
        code, output = await _ip("-4", "-o", "addr", "show", "dev", "lo")
        found = set()
        for line in output.splitlines():
            words = line.split()
            if "inet" in words:
                interface_address = words[words.index("inet") + 1]
                address = ipaddress.IPv4Interface(interface_address).ip
                if address in self.block:
                    found.add(str(address))
        return found

    async def sync(self, wanted: set[str]) -> None:
        """Make exactly ``wanted`` (of this block) present on ``lo``."""
        present = await self.present()
        for address in sorted(present - wanted):
            await self.detach(address)
        for address in sorted(wanted - present):
            try:
                await self.attach(address)
            except OSError as error:
                log.warning("%s", error)
