"""Container processes: start one, find it again after an agent restart, wait for it, stop it.

A container is one process started in its own session (so its whole process group can be
signalled), with stdout and stderr written straight into a log file, so it keeps logging
while the agent is away. Its pid, the kernel's start time for that pid and the restart count
go into a record file; an agent that restarts adopts a process only when the pid still runs
with the same start time, so a reused pid is never signalled. Exits are awaited through a
pidfd registered with the event loop: no polling and no thread per process. A pod's
containers start inside its network namespace (``setns`` between fork and exec) and, when
the pod has files of its own for /etc/resolv.conf and /etc/hosts or volumes, in a private
mount namespace that shows those.

Side effects: spawns processes, sends signals, writes record files.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import json
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def process_start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None when no such process runs."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    after_name = raw[raw.rfind(")") + 2 :].split()
    state = after_name[0]
    if state in ("Z", "X"):
        return None
    return int(after_name[19])


@dataclasses.dataclass(frozen=True)
class ProcessRecord:
    """What the record file says about a container's current process."""

    pid: int
    start_ticks: int
    started_at: float  # wall-clock seconds
    restart_count: int
    log_file: str

    def still_running(self) -> bool:
        return process_start_ticks(self.pid) == self.start_ticks

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ProcessRecord:
        return cls(
            pid=int(raw["pid"]),
            start_ticks=int(raw["start_ticks"]),
            started_at=float(raw["started_at"]),
            restart_count=int(raw["restart_count"]),
            log_file=str(raw["log_file"]),
        )


def write_json_atomically(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(content, sort_keys=True))
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


class StartError(Exception):
    """The process could not be executed (missing program, bad working directory...)."""


CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000


def _check(result: int) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


@dataclasses.dataclass(frozen=True)
class BindMount:
    target: str  # the path the container sees
    source: Path  # what it shows there
    read_only: bool = False


def preparing_container(network_namespace: Path | None, mounts: Sequence[BindMount] = ()
                        ) -> Callable[[], None] | None:
    """A ``preexec_fn`` that moves the child into the network namespace mounted at
    ``network_namespace`` (``setns``; Python 3.11 has no ``os.setns``) and, when ``mounts`` are
    given, into a mount namespace of its own in which each mount's target (such as
    /etc/resolv.conf, or a volume's mount path) shows its source instead (private bind mounts:
    the host's view is untouched; the targets must exist). None when there is nothing to do."""
    if network_namespace is None and not mounts:
        return None
    target = str(network_namespace) if network_namespace is not None else None
    # Parents first (a volume at /tmp, then one below it), as container runtimes order them.
    ordered = sorted(mounts, key=lambda m: len(Path(m.target).parts))
    binds = [(str(m.source).encode(), m.target.encode(), m.read_only) for m in ordered]
    setns, unshare, mount = _libc.setns, _libc.unshare, _libc.mount
    mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]

    def enter() -> None:
        try:
            if target is not None:
                descriptor = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _check(setns(descriptor, CLONE_NEWNET))
                finally:
                    os.close(descriptor)
            if binds:
                _check(unshare(CLONE_NEWNS))
                _check(mount(None, b"/", None, MS_REC | MS_PRIVATE, None))  # nothing propagates back
                for source, path, read_only in binds:
                    _check(mount(source, path, None, MS_BIND, None))
                    if read_only:
                        _check(mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None))
        except OSError as error:  # into the container's log (stderr is the log file by now)
            os.write(2, f"knserve node: preparing the container failed: {error}\n".encode())
            raise

    return enter


def check_start(cwd: Path, network_namespace: Path | None) -> None:
    """What must hold before a container process can start (else ``StartError``)."""
    if not cwd.is_dir():
        raise StartError(f'working directory "{cwd}" does not exist')
    if network_namespace is not None and not network_namespace.exists():
        raise StartError(f"the pod's network namespace {network_namespace} does not exist")


class ContainerProcess:
    """One running process: a child of this agent, or adopted from an earlier agent."""

    def __init__(self, pid: int, *, popen: subprocess.Popen[bytes] | None = None,
                 reported_exit: asyncio.Future[int | None] | None = None) -> None:
        """``popen`` for a child of this agent; ``reported_exit`` for a child of the zygote,
        which resolves it with the exit code (None when the zygote went away first)."""
        self.pid = pid
        self._popen = popen
        self._exit: asyncio.Future[int | None] | None = reported_exit

    @classmethod
    def spawn(
        cls, argv: list[str], *, env: dict[str, str], cwd: Path, log_file: Path, network_namespace: Path | None = None,
        mounts: Sequence[BindMount] = (),
    ) -> ContainerProcess:
        """Start ``argv`` in its own session, inside ``network_namespace`` when given, with
        ``mounts`` bound in a mount namespace of its own."""
        check_start(cwd, network_namespace)
        with open(log_file, "ab", buffering=0) as log:
            try:
                popen = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=preparing_container(network_namespace, mounts),
                )
            except FileNotFoundError:
                raise StartError(f'exec: "{argv[0]}": executable file not found in $PATH') from None
            except PermissionError:
                raise StartError(f'exec: "{argv[0]}": permission denied') from None
            except OSError as error:
                raise StartError(f'exec: "{argv[0]}": {error.strerror}') from None
            except subprocess.SubprocessError:
                raise StartError(f"could not enter the pod's namespaces (network {network_namespace}, "
                                 f"mounts {[m.target for m in mounts]})") from None
        return cls(popen.pid, popen=popen)

    @property
    def adopted(self) -> bool:
        return self._popen is None and self._exit is None

    def start_ticks(self) -> int | None:
        return process_start_ticks(self.pid)

    def wait(self) -> asyncio.Future[int | None]:
        """A future for the exit code (negative: killed by that signal; None: unknown, adopted)."""
        if self._exit is None:
            loop = asyncio.get_running_loop()
            self._exit = loop.create_future()
            try:
                pidfd = os.pidfd_open(self.pid)
            except ProcessLookupError:
                self._finish(None)
                return self._exit

            def on_exit() -> None:
                loop.remove_reader(pidfd)
                os.close(pidfd)
                self._finish(None)

            loop.add_reader(pidfd, on_exit)
        return self._exit

    def _finish(self, _: None) -> None:
        assert self._exit is not None
        if self._exit.done():
            return
        code: int | None = None
        if self._popen is not None:
            code = self._popen.wait()
        self._exit.set_result(code)

    def signal_group(self, signum: int) -> None:
        """Signal the process's whole group (it leads its own session)."""
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    async def stop(self, grace: float) -> int | None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; the exit code."""
        exited = self.wait()
        if not exited.done():
            self.signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout=max(grace, 0.0))
            except TimeoutError:
                self.signal_group(signal.SIGKILL)
        code = await exited
        # Children that outlived the leader still belong to the group.
        self.signal_group(signal.SIGKILL)
        return code


def exit_code_and_signal(returncode: int | None) -> tuple[int, int | None]:
    """A Popen return code as the exit code Kubernetes shows (128+signal) and the signal."""
    if returncode is None:
        return 255, None
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None
