"""Pod IPs: who has which address on this node.

Every pod that is not ``hostNetwork`` gets its own IP, taken from the address block this
node claimed (see ``network``); all its containers share it. The block's first address is
the gateway (the bridge), never a pod's.

``Allocations`` is the pure table; ``AllocationStore`` keeps it in one JSON file in the
state directory so an agent restart gives each pod the same address.
Side effects (store only): reads and writes that file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HOST_IP = "127.0.0.1"


def block_addresses(block: ipaddress.IPv4Network) -> Iterator[str]:
    """Usable pod IPs of ``block`` in order, skipping addresses ending in .0, .1 (the gateway)
    and .255."""
    for address in block.hosts():
        if int(address) & 0xFF not in (0, 1, 255) and str(address) != HOST_IP:
            yield str(address)


@dataclasses.dataclass
class PodAllocation:
    ip: str


@dataclasses.dataclass
class Allocations:
    """Pod UID -> address. Pure."""

    block: ipaddress.IPv4Network
    pods: dict[str, PodAllocation] = dataclasses.field(default_factory=dict)

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

    def release(self, uid: str) -> None:
        self.pods.pop(uid, None)

    def to_json(self) -> dict[str, Any]:
        return {
            "block": str(self.block),
            "pods": {uid: {"ip": a.ip} for uid, a in self.pods.items()},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], *, block: ipaddress.IPv4Network) -> Allocations:
        """The saved table; addresses outside ``block`` (an earlier block) are dropped."""
        pods = {}
        for uid, entry in (raw.get("pods") or {}).items():
            address = str(entry["ip"])
            if ipaddress.IPv4Address(address) in block and address in set(block_addresses(block)):
                pods[uid] = PodAllocation(address)
        return cls(block=block, pods=pods)


def saved_block(path: Path) -> str | None:
    """The address block an earlier run of the agent used, if it saved one."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    block = raw.get("block") if isinstance(raw, dict) else None
    return str(block) if block else None


class AllocationStore:
    """``Allocations`` saved after every change to ``<state>/allocations.json``."""

    def __init__(self, path: Path, *, block: ipaddress.IPv4Network) -> None:
        self.path = path
        try:
            raw = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            raw = {}
        self.table = Allocations.from_json(raw, block=block)
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

    def release(self, uid: str) -> None:
        if uid in self.table.pods:
            self.table.release(uid)
            self._save()

    def known_pods(self) -> set[str]:
        return set(self.table.pods)

    def addresses(self) -> set[str]:
        return {a.ip for a in self.table.pods.values()}
