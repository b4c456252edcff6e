"""Container processes: start one, find it again after an agent restart, wait for it, stop it.

A container is one process started in its own session (so its whole process group can be
signalled), with stdout and stderr written straight into a log file, so it keeps logging
while the agent is away. Its pid, the kernel's start time for that pid and the restart count
go into a record file; an agent that restarts adopts a process only when the pid still runs
with the same start time, so a reused pid is never signalled. Exits are awaited through a
pidfd registered with the event loop: no polling and no thread per process. A pod's
containers start inside its network namespace (``setns`` between fork and exec) and, when
the pod has files of its own for /etc/resolv.conf and /etc/hosts or volumes, in a private
mount namespace that shows those. A mount point the host lacks (or has as a file where a
directory is mounted, or the reverse) is made inside that namespace only, on a tmpfs laid
over the nearest directory that exists (for ``/``: a private root of the container, a tmpfs
with the host's top-level entries bound in, entered with ``pivot_root``), so nothing of it
appears on the host and pods never collide over it. The container then joins its cgroups
and takes its user and groups (``setgroups``, ``setgid``, ``setuid``) last, just before exec.
Exec probes and hooks enter a running container the same way (``ContainerSetup.join_pid``):
its network and mount namespaces, its working directory, its user.

Side effects: spawns processes, sends signals, writes record files.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import errno
import json
import os
import signal
import stat
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
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, 155)


def _check(result: int) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


@dataclasses.dataclass(frozen=True)
class BindMount:
    target: str  # the path the container sees
    source: Path  # what it shows there
    read_only: bool = False


@dataclasses.dataclass(frozen=True)
class Identity:
    """The user and groups a container's process runs as."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def to_json(self) -> list[Any]:
        return [self.uid, self.gid, list(self.groups)]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Identity:
        return cls(int(raw[0]), int(raw[1]), tuple(int(g) for g in raw[2]))


@dataclasses.dataclass(frozen=True)
class ContainerSetup:
    """What the child does between fork and exec to become the container (or, with
    ``join_pid``, to enter a running one for an exec probe or hook)."""

    network_namespace: Path | None = None
    mounts: tuple[BindMount, ...] = ()
    scratch: Path | None = None  # an empty directory of the pod's, for a private root
    cwd: Path | None = None
    identity: Identity | None = None
    cgroups: tuple[Path, ...] = ()  # cgroup.procs files to join
    join_pid: int | None = None
    # Paths the container's user must reach (the Python it runs on, its working directory, its
    # credentials): a directory on their way that the user may not search is replaced, in the
    # container's view only, by a tmpfs that it may search, holding just the entry on the way.
    reachable: tuple[Path, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "netns": str(self.network_namespace) if self.network_namespace is not None else None,
            "mounts": [[str(m.source), m.target, m.read_only] for m in self.mounts],
            "scratch": str(self.scratch) if self.scratch is not None else None,
            "cwd": str(self.cwd) if self.cwd is not None else None,
            "identity": self.identity.to_json() if self.identity is not None else None,
            "cgroups": [str(path) for path in self.cgroups],
            "join_pid": self.join_pid,
            "reachable": [str(path) for path in self.reachable],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ContainerSetup:
        def path(key: str) -> Path | None:
            value = raw.get(key)
            return Path(value) if value else None

        identity = raw.get("identity")
        return cls(
            network_namespace=path("netns"),
            mounts=tuple(BindMount(target, Path(source), bool(read_only))
                         for source, target, read_only in raw.get("mounts") or []),
            scratch=path("scratch"),
            cwd=path("cwd"),
            identity=Identity.from_json(identity) if identity is not None else None,
            cgroups=tuple(Path(p) for p in raw.get("cgroups") or []),
            join_pid=raw.get("join_pid"),
            reachable=tuple(Path(p) for p in raw.get("reachable") or []),
        )


def _libc_mount() -> Callable[..., int]:
    mount = _libc.mount
    mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    return mount


def _bind(mount: Callable[..., int], source: str, target: str, *, read_only: bool = False) -> None:
    _check(mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None))
    if read_only:
        _check(mount(None, target.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None))


class _MountPoints:
    """Makes the mount points a container needs inside its own mount namespace (see the
    module's docstring); remembers which directories are its own tmpfs already."""

    def __init__(self, scratch: Path | None) -> None:
        self.scratch = scratch
        self.mount = _libc_mount()
        self.own: set[str] = set()  # directories on a tmpfs of this container's
        self.opened: dict[str, int] = {}  # directories made searchable -> their originals

    def expose(self, path: Path, identity: Identity) -> None:
        """Let ``identity`` reach ``path``: each directory on the way it may not search becomes
        a searchable tmpfs with only the next entry (bound from the original) in it."""
        current = Path("/")
        for part in path.parts[1:]:
            following = current / part
            if str(current) in self.opened:
                if not os.path.lexists(following):
                    self._stand_ins(f"/proc/self/fd/{self.opened[str(current)]}", str(current), [part])
            elif not os.path.lexists(following):
                return
            else:
                status = os.stat(current)
                if not _searchable(status, identity):
                    original = os.open(current, os.O_RDONLY | os.O_DIRECTORY)
                    self.opened[str(current)] = original
                    self._tmpfs(str(current), status, mode=(status.st_mode | 0o111) & 0o7777)
                    self._stand_ins(f"/proc/self/fd/{original}", str(current), [part])
            current = following

    @staticmethod
    def fits(target: str, directory: bool) -> bool:
        if not os.path.lexists(target):
            return False
        return os.path.isdir(target) == directory

    def make(self, target: str, directory: bool) -> None:
        """Make ``target`` (a directory, or an empty file) without touching the host."""
        path = Path(target)
        anchor = Path("/")  # the deepest directory on the way that exists
        for part in path.parts[1:-1]:
            if not (anchor / part).is_dir():
                break
            anchor = anchor / part
        if str(anchor) not in self.own:
            self._shadow(anchor, skip=path.relative_to(anchor).parts[0])
        current = anchor
        for part in path.relative_to(anchor).parts:
            current = current / part
            last = current == path
            if current.is_dir() and not last:
                continue
            if os.path.lexists(current):  # only ever an entry of this container's own tmpfs
                self._remove(current)
            if last and not directory:
                os.close(os.open(current, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            else:
                os.mkdir(current, 0o755)
                self.own.add(str(current))

    @staticmethod
    def _remove(path: Path) -> None:
        _libc.umount2(str(path).encode(), MNT_DETACH)  # a stand-in is a bind mount; nothing else is
        if path.is_dir() and not path.is_symlink():
            os.rmdir(path)
        else:
            os.unlink(path)

    def _stand_ins(self, source: str, target: str, names: list[str]) -> None:
        """In ``target`` (a fresh tmpfs), each of ``names`` as it is in ``source``."""
        for name in names:
            original, stand_in = f"{source}/{name}", f"{target}/{name}"
            try:
                status = os.lstat(original)
            except OSError:
                continue
            if stat.S_ISLNK(status.st_mode):
                os.symlink(os.readlink(original), stand_in)
            elif stat.S_ISDIR(status.st_mode):
                os.mkdir(stand_in, 0o755)
                _bind(self.mount, original, stand_in)
            else:
                os.close(os.open(stand_in, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
                _bind(self.mount, original, stand_in)

    def _tmpfs(self, where: str, like: os.stat_result, *, mode: int | None = None) -> None:
        chosen = like.st_mode & 0o7777 if mode is None else mode
        options = f"mode={chosen:o},uid={like.st_uid},gid={like.st_gid}"
        _check(self.mount(b"tmpfs", where.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()))

    def _shadow(self, directory: Path, *, skip: str) -> None:
        """Lay a tmpfs over ``directory`` that shows what it held, except ``skip``."""
        if directory == Path("/"):
            self._private_root(skip=skip)
        else:
            like = os.stat(directory)
            original = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)  # reaches under the tmpfs
            try:
                names = [name for name in os.listdir(original) if name != skip]
                self._tmpfs(str(directory), like)
                self._stand_ins(f"/proc/self/fd/{original}", str(directory), names)
            finally:
                os.close(original)
        self.own.add(str(directory))

    def _private_root(self, *, skip: str) -> None:
        """A tmpfs root with the host's top-level entries bound in, entered by ``pivot_root``."""
        if self.scratch is None:
            raise OSError(errno.ENOENT, "no directory to build the container's root in")
        root = str(self.scratch)
        self._tmpfs(root, os.stat("/"))
        names = [name for name in os.listdir("/") if name != skip]
        # The entry that holds the scratch directory goes first, while the new root is still
        # empty, and its copy of the new root is detached: no root inside the root.
        top = self.scratch.parts[1] if len(self.scratch.parts) > 1 else ""
        if top in names:
            names.remove(top)
            self._stand_ins("", root, [top])
            _libc.umount2((root + root).encode(), MNT_DETACH)
        self._stand_ins("", root, names)
        os.chdir(root)
        _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."))
        _check(_libc.umount2(b".", MNT_DETACH))
        os.chdir("/")


def _searchable(directory: os.stat_result, identity: Identity) -> bool:
    if identity.uid == 0:
        return True
    if directory.st_uid == identity.uid:
        return bool(directory.st_mode & 0o100)
    if directory.st_gid == identity.gid or directory.st_gid in identity.groups:
        return bool(directory.st_mode & 0o010)
    return bool(directory.st_mode & 0o001)


def _enter_namespaces(pid: int) -> None:
    """Join a running container: its network and mount namespaces (mount last: the paths
    of /proc are read before)."""
    network = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    mounts = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(network, CLONE_NEWNET))
        _check(_libc.setns(mounts, CLONE_NEWNS))
    finally:
        os.close(network)
        os.close(mounts)


def _join_cgroups(cgroups: Sequence[Path]) -> None:
    pid = str(os.getpid()).encode()
    for procs in cgroups:
        descriptor = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(descriptor, pid)
        finally:
            os.close(descriptor)


def become(identity: Identity) -> None:
    """Take ``identity``'s groups, group and user (last: it gives up root)."""
    os.setgroups(list(identity.groups))
    os.setgid(identity.gid)
    os.setuid(identity.uid)


def enter_container(setup: ContainerSetup, *, switch_user: bool = True) -> None:
    """In the child, between fork and exec: become the container ``setup`` describes (but for
    its user, with ``switch_user`` false: the caller then calls ``become`` itself)."""
    _join_cgroups(setup.cgroups)
    if setup.join_pid is not None:
        _enter_namespaces(setup.join_pid)
    else:
        if setup.network_namespace is not None:
            descriptor = os.open(setup.network_namespace, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _check(_libc.setns(descriptor, CLONE_NEWNET))
            finally:
                os.close(descriptor)
        exposing = setup.identity is not None and setup.identity.uid != 0 and setup.reachable
        if setup.mounts or exposing:
            mount = _libc_mount()
            _check(_libc.unshare(CLONE_NEWNS))
            _check(mount(None, b"/", None, MS_REC | MS_PRIVATE, None))  # nothing propagates back
            points = _MountPoints(setup.scratch)
            # Parents first (a volume at /tmp, then one below it), as container runtimes order them.
            for bind in sorted(setup.mounts, key=lambda m: len(Path(m.target).parts)):
                directory = bind.source.is_dir()
                if not points.fits(bind.target, directory):
                    points.make(bind.target, directory)
                _check(mount(str(bind.source).encode(), bind.target.encode(), None, MS_BIND, None))
                if bind.read_only:
                    _check(mount(None, bind.target.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None))
            if setup.identity is not None and exposing:
                for path in setup.reachable:
                    points.expose(path, setup.identity)
    if setup.cwd is not None:
        os.chdir(setup.cwd)
    if setup.identity is not None and switch_user:
        become(setup.identity)


def preparing_container(network_namespace: Path | None, mounts: Sequence[BindMount] = (), *,
                        setup: ContainerSetup | None = None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child the container: ``setup`` when given, else a
    setup of ``network_namespace`` and ``mounts`` (each mount's target, such as
    /etc/resolv.conf or a volume's mount path, shows its source instead, in a mount namespace
    of the child's own). None when there is nothing to do."""
    if setup is None:
        setup = ContainerSetup(network_namespace=network_namespace, mounts=tuple(mounts))
    if setup == ContainerSetup():
        return None
    chosen = setup

    def enter() -> None:
        try:
            enter_container(chosen)
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
        mounts: Sequence[BindMount] = (), setup: ContainerSetup | None = None,
    ) -> ContainerProcess:
        """Start ``argv`` in its own session, inside ``network_namespace`` when given, with
        ``mounts`` bound in a mount namespace of its own (or as ``setup`` says: then its
        namespace and mounts are used, and ``cwd`` is entered after the mounts)."""
        check_start(cwd, network_namespace if setup is None else setup.network_namespace)
        if setup is None:
            setup = ContainerSetup(network_namespace=network_namespace, mounts=tuple(mounts))
        network_namespace, mounts = setup.network_namespace, setup.mounts
        setup = dataclasses.replace(setup, cwd=cwd)
        with open(log_file, "ab", buffering=0) as log:
            try:
                popen = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=preparing_container(None, setup=setup),
                )
            except FileNotFoundError:
                raise StartError(f'exec: "{argv[0]}": executable file not found in $PATH') from None
            except PermissionError:
                raise StartError(f'exec: "{argv[0]}": permission denied') from None
            except OSError as error:
                raise StartError(f'exec: "{argv[0]}": {error.strerror}') from None
            except subprocess.SubprocessError:
                raise StartError(f"could not enter the pod's namespaces (network {network_namespace}, "
                                 f"mounts {[m.target for m in mounts]}) or become its user: the container's "
                                 "log says why") from None
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

            # A descriptor closed elsewhere without ``remove_reader`` leaves its number in the
            # selector's table; registering a pidfd that reuses the number would then only
            # update that table, never epoll, and the exit would go unseen.
            loop.remove_reader(pidfd)
            loop.add_reader(pidfd, on_exit)
        return self._exit

    def gone(self, start_ticks: int | None) -> bool:
        """Whether the process has ended (or is a zombie), judged from /proc: the backstop for
        an exit that was never reported. ``start_ticks`` tells a reused pid apart."""
        now = process_start_ticks(self.pid)
        return now is None or (start_ticks is not None and start_ticks != 0 and now != start_ticks)

    def settle_unreported_exit(self) -> None:
        """Resolve ``wait()`` for a process found gone whose exit was not reported: with its
        status when it is this agent's child, else unknown."""
        future = self.wait()
        if future.done():
            return
        code: int | None = None
        if self._popen is not None:
            code = self._popen.poll()
        future.set_result(code)

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
