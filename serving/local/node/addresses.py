"""Pod IPs and remapped ports: who has which address and port on this node.

Every pod that is not ``hostNetwork`` gets its own IP, taken from the address block this
node claimed (see ``network``); all its containers share it. Pods run in the node's network
namespace, so a process that binds the wildcard address on port N takes N for every pod IP
at once; to keep pods apart, a container whose ``PORT`` variable is set gets a node-unique
port from a reserved range instead, and every container of the pod learns the mapping.

``Allocations`` is the pure table; ``AllocationStore`` keeps it in one JSON file in the
state directory so an agent restart gives each pod the same address and ports.
Side effects (store only): reads and writes that file, test-binds candidate ports.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HOST_IP = "127.0.0.1"
DEFAULT_PORT_RANGE = (20000, 29999)


def block_addresses(block: ipaddress.IPv4Network) -> Iterator[str]:
    """Usable pod IPs of ``block`` in order, skipping addresses ending in .0 and .255."""
    for address in block.hosts():
        if int(address) & 0xFF not in (0, 255) and str(address) != HOST_IP:
            yield str(address)


@dataclasses.dataclass
class PodAllocation:
    ip: str
    ports: dict[int, int] = dataclasses.field(default_factory=dict)  # declared -> actual


@dataclasses.dataclass
class Allocations:
    """Pod UID -> address and port map. Pure; ``port_free`` is asked before a port is taken."""

    block: ipaddress.IPv4Network
    pods: dict[str, PodAllocation] = dataclasses.field(default_factory=dict)
    port_range: tuple[int, int] = DEFAULT_PORT_RANGE

    def address_for(self, uid: str) -> str:
        allocation = self.pods.get(uid)
        if allocation is not None:
            return allocation.ip
        used = {a.ip for a in self.pods.values()}
        for candidate in block_addresses(self.block):
            if candidate not in used:
                self.pods[uid] = PodAllocation(candidate)
                return candidate
        raise RuntimeError(f"every pod address of {self.block} is in use")

    def port_for(self, uid: str, declared: int, port_free: Callable[[int], bool]) -> int:
        allocation = self.pods[uid]
        if declared in allocation.ports:
            return allocation.ports[declared]
        used = {port for a in self.pods.values() for port in a.ports.values()}
        low, high = self.port_range
        span = high - low + 1
        # Start from a spot derived from the address so that pods (and nodes) spread out.
        offset = (int(ipaddress.IPv4Address(allocation.ip)) * 7) % span
        for step in range(span):
            candidate = low + (offset + step) % span
            if candidate not in used and port_free(candidate):
                allocation.ports[declared] = candidate
                return candidate
        raise RuntimeError(f"no free port left in {low}-{high} for a pod's PORT")

    def release(self, uid: str) -> None:
        self.pods.pop(uid, None)

    def to_json(self) -> dict[str, Any]:
        return {
            "block": str(self.block),
            "pods": {uid: {"ip": a.ip, "ports": {str(k): v for k, v in a.ports.items()}} for uid, a in self.pods.items()},
        }

    @classmethod
    def from_json(
        cls, raw: dict[str, Any], *, block: ipaddress.IPv4Network, port_range: tuple[int, int] = DEFAULT_PORT_RANGE
    ) -> Allocations:
        pods = {}
        for uid, entry in (raw.get("pods") or {}).items():
            ports = entry.get("ports") or {}
            pods[uid] = PodAllocation(str(entry["ip"]), {int(k): int(v) for k, v in ports.items()})
        return cls(block=block, pods=pods, port_range=port_range)


def saved_block(path: Path) -> str | None:
    """The address block an earlier run of the agent used, if it saved one."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    block = raw.get("block") if isinstance(raw, dict) else None
    return str(block) if block else None


def wildcard_port_free(port: int) -> bool:
    """Whether a process could bind 0.0.0.0:``port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class AllocationStore:
    """``Allocations`` saved after every change to ``<state>/allocations.json``."""

    def __init__(
        self, path: Path, *, block: ipaddress.IPv4Network, port_range: tuple[int, int] = DEFAULT_PORT_RANGE
    ) -> None:
        self.path = path
        try:
            raw = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            raw = {}
        self.table = Allocations.from_json(raw, block=block, port_range=port_range)
        self._save()

    def _save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.table.to_json(), indent=1, sort_keys=True))
        os.replace(temporary, self.path)

    def address_for(self, uid: str) -> str:
        known = uid in self.table.pods
        address = self.table.address_for(uid)
        if not known:
            self._save()
        return address

    def port_for(self, uid: str, declared: int) -> int:
        before = dict(self.table.pods[uid].ports)
        port = self.table.port_for(uid, declared, wildcard_port_free)
        if self.table.pods[uid].ports != before:
            self._save()
        return port

    def release(self, uid: str) -> None:
        if uid in self.table.pods:
            self.table.release(uid)
            self._save()

    def known_pods(self) -> set[str]:
        return set(self.table.pods)

    def addresses(self) -> set[str]:
        return {a.ip for a in self.table.pods.values()}
