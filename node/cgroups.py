"""Memory and CPU limits of containers, through the cgroup v1 controllers of this machine.

Each container with limits (or CPU requests) gets a cgroup of its own in the ``memory`` and
``cpu`` hierarchies, ``knserve/pod<uid>/<container>``, which its process joins between fork
and exec (``processes.ContainerSetup.cgroups``):

    resources.limits.memory    memory.limit_in_bytes (and memory.memsw.limit_in_bytes, so
                               swap does not stretch it); exceeding it gets the process killed
                               by the kernel, reported as ``OOMKilled`` like a kubelet does
    resources.limits.cpu       cpu.cfs_quota_us over a 100 ms cpu.cfs_period_us
    resources.requests.cpu     cpu.shares (1024 per CPU, at least 2)

Where the hierarchies are missing or not writable (no root, cgroup v2 only), nothing is
enforced; ``ContainerCgroups.create`` then says so, and the container runs unlimited.
``parse_quantity`` reads Kubernetes quantities (``128Mi``, ``1G``, ``500m``, ``1e9``).

Side effects: creates, writes and removes directories under /sys/fs/cgroup.
"""

from __future__ import annotations

import contextlib
import decimal
import errno
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "knserve"
CPU_PERIOD_US = 100_000
MINIMUM_QUOTA_US = 1_000
MINIMUM_SHARES = 2

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, decimal.Decimal] = {
    "n": decimal.Decimal("1e-9"), "u": decimal.Decimal("1e-6"), "m": decimal.Decimal("1e-3"),
    "k": decimal.Decimal(10**3), "M": decimal.Decimal(10**6), "G": decimal.Decimal(10**9),
    "T": decimal.Decimal(10**12), "P": decimal.Decimal(10**15), "E": decimal.Decimal(10**18),
}


def parse_quantity(value: Any) -> decimal.Decimal:
    """A Kubernetes quantity as a number (``ValueError`` when it is not one)."""
    text = str(value).strip()
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return decimal.Decimal(text[: -len(suffix)]) * factor
    for suffix, scale in _DECIMAL.items():
        if text.endswith(suffix):
            return decimal.Decimal(text[:-1]) * scale
    try:
        return decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a quantity") from None


class ContainerCgroups:
    """The cgroups of one container (memory and cpu), created on its first start."""

    def __init__(self, pod_uid: str, container: str, resources: Mapping[str, Any], *,
                 root: Path = CGROUP_ROOT) -> None:
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        self.memory_limit = int(parse_quantity(limits["memory"])) if limits.get("memory") else None
        cpu_limit = parse_quantity(limits["cpu"]) if limits.get("cpu") else None
        cpu_request = parse_quantity(requests["cpu"]) if requests.get("cpu") else cpu_limit
        self.cpu_quota = max(MINIMUM_QUOTA_US, int(cpu_limit * CPU_PERIOD_US)) if cpu_limit else None
        self.cpu_shares = max(MINIMUM_SHARES, int(cpu_request * 1024)) if cpu_request else None
        relative = Path(PARENT) / f"pod{pod_uid}" / container
        self.pod_uid, self.container, self.root = pod_uid, container, root
        self.memory = root / "memory" / relative
        self.cpu = root / "cpu" / relative
        self._oom_kills_before = 0

    @property
    def wanted(self) -> bool:
        return self.memory_limit is not None or self.cpu_quota is not None or self.cpu_shares is not None

    def create(self) -> tuple[list[Path], str]:
        """Make (or reuse) the cgroups and set the limits: the ``cgroup.procs`` files for the
        process to join, and a sentence on what could not be enforced ("" when all is)."""
        procs: list[Path] = []
        problems: list[str] = []
        if self.memory_limit is not None:
            try:
                _below_hierarchy(self.memory, self.root / "memory")
                (self.memory / "memory.limit_in_bytes").write_text(str(self.memory_limit))
                swap = self.memory / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(str(self.memory_limit))
                self._oom_kills_before = self.oom_kills()
                procs.append(self.memory / "cgroup.procs")
            except OSError as error:
                problems.append(f"memory limit not enforced ({self.root / 'memory'}: {error.strerror})")
        if self.cpu_quota is not None or self.cpu_shares is not None:
            try:
                _below_hierarchy(self.cpu, self.root / "cpu")
                if self.cpu_quota is not None:
                    (self.cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                    (self.cpu / "cpu.cfs_quota_us").write_text(str(self.cpu_quota))
                if self.cpu_shares is not None:
                    (self.cpu / "cpu.shares").write_text(str(self.cpu_shares))
                procs.append(self.cpu / "cgroup.procs")
            except OSError as error:
                problems.append(f"CPU limit not enforced ({self.root / 'cpu'}: {error.strerror})")
        return procs, "; ".join(problems)

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this cgroup for running out of memory."""
        try:
            for line in (self.memory / "memory.oom_control").read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process here for memory since the last start."""
        return self.memory_limit is not None and self.oom_kills() > self._oom_kills_before

    def remove(self) -> None:
        """Remove the container's cgroups, and the pod's when it is empty (its processes are gone)."""
        remove_pod_cgroups(self.pod_uid, root=self.root, only=self.container)


def _below_hierarchy(group: Path, hierarchy: Path) -> None:
    """Make ``group``, only inside a mounted ``hierarchy`` (never the hierarchy itself)."""
    if not hierarchy.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no cgroup v1 hierarchy here", str(hierarchy))
    group.mkdir(parents=True, exist_ok=True)


def remove_pod_cgroups(pod_uid: str, *, root: Path = CGROUP_ROOT, only: str | None = None) -> None:
    """Remove a pod's cgroups (or only container ``only``'s), leaving any still in use."""
    for controller in ("memory", "cpu"):
        pod_dir = root / controller / PARENT / f"pod{pod_uid}"
        if not pod_dir.is_dir():
            continue
        for container_dir in list(pod_dir.iterdir()):
            if container_dir.is_dir() and (only is None or container_dir.name == only):
                with contextlib.suppress(OSError):
                    os.rmdir(container_dir)
        with contextlib.suppress(OSError):
            os.rmdir(pod_dir)


__all__ = ["ContainerCgroups", "parse_quantity", "remove_pod_cgroups"]
