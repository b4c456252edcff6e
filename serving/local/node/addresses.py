"""Pod IPs and remapped ports: who has which loopback address and port on this node.

Every pod that is not ``hostNetwork`` gets its own loopback address 127.0.x.y (never
127.0.0.1, never a .0 or .255 host part); all its containers share it. Pods run in the
node's network namespace, so a process that binds the wildcard address on port N takes N
for every pod IP at once; to keep pods apart, a container whose ``PORT`` variable is set gets
a node-unique port from a reserved range instead (see ``runtime`` for how the pod learns it).

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

HOST_IP = "127.0.0.1"
FIRST_POD_NETWORK = ipaddress.IPv4Address("127.0.1.0")
LAST_POD_NETWORK = ipaddress.IPv4Address("127.255.255.255")
DEFAULT_PORT_RANGE = (20000, 29999)


def pod_addresses() -> Iterator[str]:
    """Candidate pod IPs in order: 127.0.1.1, 127.0.1.2, ... skipping .0 and .255."""
    address = int(FIRST_POD_NETWORK)
    while address < int(LAST_POD_NETWORK):
        last_octet = address & 0xFF
        if last_octet not in (0, 255):
            yield str(ipaddress.IPv4Address(address))
        address += 1


@dataclasses.dataclass
class PodAllocation:
    ip: str
    ports: dict[int, int] = dataclasses.field(default_factory=dict)  # declared -> actual


@dataclasses.dataclass
class Allocations:
    """Pod UID -> address and port map. Pure; ``port_free`` is asked before a port is taken."""

    pods: dict[str, PodAllocation] = dataclasses.field(default_factory=dict)
    port_range: tuple[int, int] = DEFAULT_PORT_RANGE

    def address_for(self, uid: str) -> str:
        allocation = self.pods.get(uid)
        if allocation is not None:
            return allocation.ip
        used = {a.ip for a in self.pods.values()}
        for candidate in pod_addresses():
            if candidate not in used:
                self.pods[uid] = PodAllocation(candidate)
                return candidate
        raise RuntimeError("every loopback pod address is in use")

    def port_for(self, uid: str, declared: int, port_free: Callable[[int], bool]) -> int:
        allocation = self.pods[uid]
        if declared in allocation.ports:
            return allocation.ports[declared]
        used = {port for a in self.pods.values() for port in a.ports.values()}
        low, high = self.port_range
        # Start from a spot derived from the pod so ports do not pile up at the range start.
        span = high - low + 1
        offset = int(ipaddress.IPv4Address(allocation.ip)) % span
        for step in range(span):
            candidate = low + (offset + step) % span
            if candidate not in used and port_free(candidate):
                allocation.ports[declared] = candidate
                return candidate
        raise RuntimeError(f"no free port left in {low}-{high} for a pod's PORT")

    def release(self, uid: str) -> None:
        self.pods.pop(uid, None)

    def to_json(self) -> dict[str, object]:
        return {uid: {"ip": a.ip, "ports": {str(k): v for k, v in a.ports.items()}} for uid, a in self.pods.items()}

    @classmethod
    def from_json(cls, raw: dict[str, dict[str, object]], port_range: tuple[int, int] = DEFAULT_PORT_RANGE) -> Allocations:
        pods = {}
        for uid, entry in raw.items():
            ports_raw = entry.get("ports") or {}
            assert isinstance(ports_raw, dict)
            pods[uid] = PodAllocation(str(entry["ip"]), {int(k): int(v) for k, v in ports_raw.items()})
        return cls(pods=pods, port_range=port_range)


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

    def __init__(self, path: Path, *, port_range: tuple[int, int] = DEFAULT_PORT_RANGE) -> None:
        self.path = path
        raw = json.loads(path.read_text()) if path.exists() else {}
        self.table = Allocations.from_json(raw, port_range)

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
