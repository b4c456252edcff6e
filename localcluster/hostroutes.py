"""Unreachable routes on the host for the address ranges the local cluster uses.

The cluster's Service IPs (10.96.0.0/16) and pod IPs (10.244.0.0/16) exist only on this
machine: the node agent puts each Service IP it serves on its bridge (the kernel's local
table) and each node's pod block on its bridge (a /24 route), and both win over a /16. An
address of those ranges that nothing serves (yet) -- a Service created a moment ago, a pod
that is gone -- would otherwise follow the host's default route and leave the machine. An
``unreachable`` route for each range makes such a connection fail at once with "No route to
host", on the host and for pods, whose packets the host routes.

The routes go in before etcd starts and stay when the cluster stops: they only stop packets
that had nowhere to go on this machine, and a process that outlives its cluster (a pod's, a
test's client) may still dial a cluster address. ``knserve local down --remove-routes``
removes them, but only when no other local cluster of this machine still needs them (a test
run starts its own cluster beside a developer's). For that every cluster that installs them
registers its state directory in ``/run/knserve/host-routes/`` (a tmpfs: emptied at reboot,
like the routes themselves); a registration counts while its cluster runs a process, or was
made in the last ten minutes (a start under way), and is dropped when its state directory is
gone or its processes ended long ago (a killed test run's). The routes carry ``proto 157``,
so only ours are ever removed. A route someone else made for the same range is kept if it
blocks too; if it leads somewhere, the start stops, since it would carry the cluster's
traffic off the machine.

Without CAP_NET_ADMIN (not root) no route can be made: ``install`` says what that means
and the cluster starts without them.

Side effects: runs ``ip route``; writes registration files and takes a lock under /run/knserve/.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from localcluster.processes import StartError

REGISTRY = Path("/run/knserve/host-routes")
ROUTE_PROTOCOL = "157"
STARTING_GRACE_SECONDS = 600.0
BLOCKING_TYPES = ("unreachable", "blackhole", "prohibit")
_CAP_NET_ADMIN = 12

RunIp = Callable[[Sequence[str]], tuple[int, str]]
Progress = Callable[[str], None]


def run_ip(args: Sequence[str]) -> tuple[int, str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


def can_manage_routes() -> bool:
    """Whether this process may change the host's routes (CAP_NET_ADMIN) and has ``ip``."""
    if shutil.which("ip") is None:
        return False
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return os.geteuid() == 0


@dataclasses.dataclass(frozen=True)
class HostRoutes:
    """The ranges to block and where clusters register that they need them."""

    ranges: tuple[str, ...]
    registry: Path = REGISTRY
    run: RunIp = run_ip
    allowed: Callable[[], bool] = can_manage_routes

    # --- registrations -----------------------------------------------------------------------
    def _entry(self, state_dir: Path) -> Path:
        key = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
        return self.registry / key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.registry.mkdir(parents=True, exist_ok=True)
        with (self.registry / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def users(self, *, running: Callable[[Path], bool], now: float | None = None) -> list[Path]:
        """State directories of clusters that still need the routes; stale registrations are dropped."""
        now = time.time() if now is None else now
        found = []
        for entry in sorted(self.registry.iterdir()) if self.registry.is_dir() else []:
            if entry.name.startswith("."):
                continue
            try:
                state_dir, registered = Path(entry.read_text().strip()), entry.stat().st_mtime
            except OSError:
                continue
            if state_dir.is_dir() and (running(state_dir) or now - registered < STARTING_GRACE_SECONDS):
                found.append(state_dir)
            else:
                entry.unlink(missing_ok=True)
        return found

    # --- routes ------------------------------------------------------------------------------
    def _add(self, network: str) -> None:
        code, output = self.run(["route", "add", "unreachable", network, "proto", ROUTE_PROTOCOL])
        if code == 0:
            return
        if "File exists" not in output:
            raise StartError(f"could not add the route 'unreachable {network}' on this host: {output}")
        code, existing = self.run(["-o", "route", "show", "exact", network])
        leading = [line for line in existing.splitlines() if line.split()[:1] and line.split()[0] not in BLOCKING_TYPES]
        if code != 0 or leading:
            raise StartError(
                f"this host already routes {network} ({'; '.join(leading) or existing}), which the local cluster "
                f"uses for its own addresses: connections to them would leave the machine. Remove that route "
                f"(or give the cluster a machine where {network} is free) and run `knserve local up` again."
            )

    def install(self, state_dir: Path, *, progress: Progress) -> None:
        """Register ``state_dir`` and make sure every range has its unreachable route."""
        if not self.allowed():
            progress(f"warning: not running as root, so no 'unreachable' routes for {', '.join(self.ranges)}: "
                     f"a connection to a Service or pod IP this machine does not serve would follow the "
                     f"default route off the machine. Run `knserve local up` as root to block them.")
            return
        with self._locked():
            self._entry(state_dir).write_text(f"{state_dir.resolve()}\n")
            for network in self.ranges:
                self._add(network)

    def release(self, state_dir: Path, *, running: Callable[[Path], bool], remove: bool, progress: Progress) -> None:
        """Unregister ``state_dir``; with ``remove``, also remove the routes unless another
        cluster still needs them."""
        if not self.allowed():
            return
        with self._locked():
            self._entry(state_dir).unlink(missing_ok=True)
            if not remove:
                return
            others = self.users(running=running)
            if others:
                progress(f"kept the 'unreachable' routes for {', '.join(self.ranges)}: the local cluster in "
                         f"{others[0]} uses them too")
                return
            removed = [network for network in self.ranges
                       if self.run(["route", "del", "unreachable", network, "proto", ROUTE_PROTOCOL])[0] == 0]
            if removed:
                progress(f"removed the 'unreachable' routes for {', '.join(removed)}")
