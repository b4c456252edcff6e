"""Background processes with pid files: start once, find again, stop for sure.

``knserve local up`` returns while etcd, the API server and the rest keep running, and a
later ``knserve local down`` (another process) must find and stop them. Each process has a
pid file and a log file in the state directory; a pid file only counts while its process is
alive and still runs the same program, so a stale or reused pid is never signalled.

Side effects: spawns processes in their own session, writes pid and log files, sends signals;
``answers`` makes an HTTP request (a health check).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: tuple[str, ...]
    run_dir: Path
    log_dir: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    stop_timeout: float = 10.0
    marker: str | None = None
    """Text the process's command line must contain for its pid file to count (default: the program's name)."""
    pass_fds: tuple[int, ...] = ()
    """Open files the process inherits (a lock it holds for as long as it runs)."""

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def identity(self) -> str:
        return self.marker or Path(self.argv[0]).name


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def argv_of(pid: int) -> tuple[str, ...]:
    """The command line process ``pid`` was started with (empty if it is gone)."""
    try:
        return tuple(arg.decode(errors="replace") for arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1])
    except OSError:
        return ()


def running_pid(spec: ProcessSpec) -> int | None:
    """The pid of the live process the pid file names, or None."""
    try:
        pid = int(spec.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid <= 0 or _is_zombie(pid) or spec.identity not in _cmdline(pid):
        return None
    return pid


def start(spec: ProcessSpec) -> int:
    """Start the process unless it already runs; return its pid."""
    pid = running_pid(spec)
    if pid is not None:
        return pid
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    spec.log_dir.mkdir(parents=True, exist_ok=True)
    with spec.log_file.open("ab") as log:
        log.write(f"\n--- starting {spec.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        log.flush()
        process = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=spec.env,
            cwd=spec.cwd,
            start_new_session=True,
            pass_fds=spec.pass_fds,
        )
    spec.pid_file.write_text(f"{process.pid}\n")
    return process.pid


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _is_zombie(pid)


def stop(spec: ProcessSpec) -> bool:
    """SIGTERM, then SIGKILL after the spec's timeout. True if a process was stopped."""
    pid = running_pid(spec)
    spec.pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + spec.stop_timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while _alive(pid):
        time.sleep(0.02)
    return True


def log_tail(spec: ProcessSpec, lines: int = 20) -> str:
    try:
        return "\n".join(spec.log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class StartError(RuntimeError):
    """A component did not become healthy; the message carries its log's tail."""


def answers(url: str, expect: bytes | None = None) -> bool:
    """Whether ``url`` answers 200 within 2 s (and its body holds ``expect``, when given). A
    health check: an https server's certificate is not checked, only that it answers."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200 and (expect is None or expect in response.read()))
    except (urllib.error.URLError, OSError):
        return False


def wait_healthy(
    spec: ProcessSpec,
    pid: int,
    healthy: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
) -> None:
    """Wait until ``healthy()``; fail at once if the process ``pid`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise StartError(f"{spec.name} exited while starting (log: {spec.log_file}):\n{log_tail(spec)}")
        if healthy():
            return
        time.sleep(interval)
    raise StartError(f"{spec.name} was not healthy after {timeout:.0f}s (log: {spec.log_file}):\n{log_tail(spec)}")


def describe(argv: Sequence[str]) -> str:
    return " ".join(argv)
