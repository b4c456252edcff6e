"""A pre-imported Python for knserve's own containers: fork instead of exec.

Every pod runs a ``knserve queue-proxy`` next to its app. Started as a new process, a
queue-proxy spends ~85 ms of CPU on a small machine before it serves, ~70 of them importing
asyncio and the proxy, once per pod: the largest single cost of waking many revisions at
once. The node agent keeps one zygote instead: a Python process that imported those modules
once and forks a child per container (a few ms).

A forked child ends up as an exec'd container would: it leads a session of its own, its
stdin is /dev/null and its stdout and stderr the container's log, it enters the pod's network
namespace and mounts (``processes.preparing_container``), and it takes the container's
working directory and environment; ``/proc/<pid>/cmdline`` and ``environ`` show the
container's argv and environment (``prctl(PR_SET_MM_MAP)``; ``ps`` and tools that read them see
the container, not the zygote). Then it runs the command's ``main()`` and exits with its
status. The zygote is the child's parent: it reports each exit code to the agent.

Only a command line that would exec this installation's own ``knserve`` script with a
subcommand the zygote preloaded is forked (``Zygote.serves``); anything else, and anything
while the zygote is not up, is exec'd as before. If the zygote dies its children keep running
(like an exec'd container's when the agent restarts) and the agent waits for them by pid.
When a knserve module it imported has changed on disk, the zygote answers the next request
with ``reloading`` (that container is exec'd) and execs itself afresh: same pid, so the
children it forked stay its own and their exits are still reported.

Wire: a ``SOCK_SEQPACKET`` pair, one JSON message per packet. Agent -> zygote:
``{"id", "argv", "env", "cwd", "log", "setup"}`` (``setup``: ``ContainerSetup.to_json``); zygote -> agent:
``{"id", "pid"}``, ``{"id", "error"}`` or ``{"id", "reloading"}``, ``{"ready": pid}`` once it
serves, and ``{"exited": pid, "code": n}`` (negative: the signal that ended it).

Side effects: the zygote process and its children; signals only through ``ContainerProcess``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import importlib
import itertools
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from node.processes import (
    BindMount,
    ContainerProcess,
    ContainerSetup,
    StartError,
    become,
    check_start,
    enter_container,
)

log = logging.getLogger("knserve.node.zygote")


class ZygoteUnavailable(Exception):
    """The zygote is not running (or went away mid-request): exec the container instead."""


# knserve subcommands started from the zygote, and the modules it imports for them up front.
PRELOADED: dict[str, tuple[str, ...]] = {
    "queue-proxy": ("queueproxy.__main__", "queueproxy.server", "uvloop"),
    # the function runtime: a function pod's own container forks as fast as its queue-proxy
    "function": ("functions.runtime", "functions.loader", "functions.styles", "functions.deps"),
}
MAX_MESSAGE = 1 << 20
OWN_PACKAGES = frozenset({"knserve", "kube", "serving", "queueproxy", "activator", "autoscaler", "node", "samples",
                          "functions"})
SCRIPT = "knserve"

# A zygote that has not answered a fork request by then is taken as stuck: that container is
# exec'd, and so are the next ones until the zygote speaks again; a child it forks for the
# abandoned request after all is killed at once.
REPLY_TIMEOUT_SECONDS = 5.0

PR_SET_NAME = 15
PR_SET_MM = 35
PR_SET_MM_MAP = 14


# The zygote's answer to a request, and where the child's exit will be reported (None when
# no child was started).
Reply = asyncio.Future[tuple[dict[str, Any], "asyncio.Future[int | None] | None"]]


def own_script() -> Path:
    """This installation's ``knserve`` console script (beside the interpreter)."""
    return Path(sys.executable).parent / SCRIPT


# --- the agent's side --------------------------------------------------------------------------
class Zygote:
    """The agent's handle on its zygote process: start it, fork containers from it."""

    def __init__(self, commands: Sequence[str] = tuple(PRELOADED)) -> None:
        self.commands = frozenset(commands)
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._ready = False
        self._stuck = False
        self._ids = itertools.count(1)
        self._replies: dict[int, Reply] = {}
        self._exits: dict[int, asyncio.Future[int | None]] = {}
        self._script = own_script()

    def serves(self, argv: Sequence[str], env: dict[str, str]) -> bool:
        """True when ``argv`` would exec this installation's knserve with a preloaded subcommand
        (and the zygote is up to fork it)."""
        if not self._ready or self._stuck or len(argv) < 2 or argv[1] not in self.commands:
            return False
        found = shutil.which(argv[0], path=env.get("PATH", os.defpath)) if "/" not in argv[0] else argv[0]
        try:
            return found is not None and Path(found).resolve() == self._script.resolve()
        except OSError:
            return False

    def start(self) -> None:
        """Start the zygote process; it serves once it has imported its modules."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "node.zygote", str(theirs.fileno()), *sorted(self.commands)],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, start_new_session=True,
        )
        theirs.close()
        ours.setblocking(False)
        self._socket = ours
        asyncio.get_running_loop().add_reader(ours.fileno(), self._read)

    def _read(self) -> None:
        assert self._socket is not None
        while True:
            try:
                packet = self._socket.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                packet = b""
            if not packet:
                self._lost()
                return
            self._stuck = False
            message = json.loads(packet)
            if message.get("reloading"):
                self._ready = False  # until the reloaded zygote says it is ready
            if "ready" in message:
                self._ready = True
                log.info("zygote ready (pid %d): forks %s", message["ready"], ", ".join(sorted(self.commands)))
            elif "exited" in message:
                finished = self._exits.pop(int(message["exited"]), None)
                if finished is not None and not finished.done():
                    finished.set_result(message["code"])
            else:
                exit_future: asyncio.Future[int | None] | None = None
                if "pid" in message:
                    # Registered here, not in ``spawn``: the child's exit may be in this same read.
                    exit_future = asyncio.get_running_loop().create_future()
                    self._exits[int(message["pid"])] = exit_future
                reply = self._replies.pop(int(message["id"]), None)
                if reply is not None and not reply.done():
                    reply.set_result((message, exit_future))

    def _lost(self) -> None:
        """The zygote is gone: its children run on; wait for them by pid (exit code unknown)."""
        if self._socket is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._socket.fileno())
        self._socket.close()
        self._socket = None
        self._ready = False
        log.warning("the zygote exited; knserve's containers are exec'd until it is back")
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(ZygoteUnavailable("the zygote exited while starting the container"))
        self._replies.clear()
        for pid, exit_future in self._exits.items():
            fallback = ContainerProcess(pid).wait()
            fallback.add_done_callback(functools.partial(_settle, exit_future))
        self._exits.clear()
        if self._process is not None:
            self._process.poll()
        loop.call_later(1.0, self._restart)

    def _restart(self) -> None:
        if self._socket is None:
            with contextlib.suppress(OSError):
                self.start()

    async def spawn(
        self, argv: list[str], *, env: dict[str, str], cwd: Path, log_file: Path, network_namespace: Path | None = None,
        mounts: Sequence[BindMount] = (), setup: ContainerSetup | None = None,
    ) -> ContainerProcess:
        """Fork ``argv`` (see ``serves``) as a container process (``setup``, when given, in
        place of ``network_namespace`` and ``mounts``)."""
        if setup is None:
            setup = ContainerSetup(network_namespace=network_namespace, mounts=tuple(mounts))
        setup = dataclasses.replace(setup, cwd=cwd)
        check_start(cwd, setup.network_namespace)
        if self._socket is None:
            raise ZygoteUnavailable("the zygote is not running")
        request_id = next(self._ids)
        reply: Reply = asyncio.get_running_loop().create_future()
        self._replies[request_id] = reply
        try:
            self._send({
                "id": request_id, "argv": argv, "env": env, "cwd": str(cwd), "log": str(log_file),
                "setup": setup.to_json(),
            })
        except OSError as error:
            self._replies.pop(request_id, None)
            raise ZygoteUnavailable(f"the zygote is not reachable: {error}") from None
        try:
            answer, exit_future = await asyncio.wait_for(asyncio.shield(reply), REPLY_TIMEOUT_SECONDS)
        except TimeoutError:
            self._stuck = True
            reply.add_done_callback(_kill_abandoned_child)
            log.warning("the zygote did not answer within %gs; containers are exec'd until it does",
                        REPLY_TIMEOUT_SECONDS)
            raise ZygoteUnavailable("the zygote did not answer") from None
        if answer.get("reloading"):
            raise ZygoteUnavailable("knserve's code changed on disk; the zygote reloads it")
        if "error" in answer or exit_future is None:
            raise StartError(answer.get("error") or "the zygote started nothing")
        return ContainerProcess(int(answer["pid"]), reported_exit=exit_future)

    def _send(self, message: dict[str, Any]) -> None:
        assert self._socket is not None
        self._socket.setblocking(True)  # one packet, into a local socket's buffer: brief at most
        try:
            self._socket.send(json.dumps(message).encode())
        finally:
            self._socket.setblocking(False)

    def stop(self) -> None:
        """Stop the zygote (its running children are left alone)."""
        if self._socket is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None
        self._ready = False
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)  # it exits when its socket closes


# --- the zygote's side -------------------------------------------------------------------------
def _kill_abandoned_child(reply: Reply) -> None:
    """A late answer to a request the agent gave up on: its child must not run."""
    if reply.cancelled() or reply.exception() is not None:
        return
    answer, _ = reply.result()
    if "pid" in answer:
        log.warning("the zygote forked pid %d after the agent gave up on it; killing it", answer["pid"])
        ContainerProcess(int(answer["pid"])).signal_group(signal.SIGKILL)


def _settle(exit_future: asyncio.Future[int | None], _waited: object) -> None:
    """The zygote is gone: its child's exit is learned by pid, with no status to report."""
    if not exit_future.done():
        exit_future.set_result(None)


class _MmMap(ctypes.Structure):
    """``struct prctl_mm_map`` (linux/prctl.h)."""

    _fields_ = [*((name, ctypes.c_uint64) for name in (
        "start_code", "end_code", "start_data", "end_data", "start_brk", "brk", "start_stack",
        "arg_start", "arg_end", "env_start", "env_end")),
        ("auxv", ctypes.c_void_p), ("auxv_size", ctypes.c_uint32), ("exe_fd", ctypes.c_uint32)]


def _show_as(argv: Sequence[str], env: dict[str, str]) -> None:
    """Make /proc/self/cmdline, environ and comm show ``argv`` and ``env`` (best effort:
    ``PR_SET_MM_MAP`` needs a kernel with checkpoint/restore support)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.sbrk.restype = ctypes.c_void_p
    name = ctypes.create_string_buffer(Path(argv[0]).name[:15].encode())
    libc.prctl(PR_SET_NAME, ctypes.addressof(name), 0, 0, 0)
    arguments = b"".join(word.encode() + b"\0" for word in argv)
    environment = b"".join(f"{key}={value}".encode() + b"\0" for key, value in env.items())
    blocks = ctypes.create_string_buffer(arguments, len(arguments)), ctypes.create_string_buffer(environment,
                                                                                              len(environment))
    _kept.extend(blocks)  # the kernel reads them for as long as the process lives
    # After the ")" of /proc/self/stat: field n of proc(5) is at index n - 3.
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    mm = _MmMap(
        start_code=int(fields[23]), end_code=int(fields[24]), start_stack=int(fields[25]),
        start_data=int(fields[42]), end_data=int(fields[43]), start_brk=int(fields[44]),
        arg_start=ctypes.addressof(blocks[0]), arg_end=ctypes.addressof(blocks[0]) + len(arguments),
        env_start=ctypes.addressof(blocks[1]), env_end=ctypes.addressof(blocks[1]) + len(environment),
        auxv=None, auxv_size=0, exe_fd=0xFFFFFFFF,
    )
    mm.brk = libc.sbrk(0) or 0  # last: nothing may move the heap's end between this and the prctl
    libc.prctl(PR_SET_MM, PR_SET_MM_MAP, ctypes.addressof(mm), ctypes.sizeof(mm), 0)


_kept: list[Any] = []


def _become_container(request: dict[str, Any], status_pipe: int) -> None:
    """In the forked child: turn into the container, then run it; never returns."""
    try:
        os.setsid()
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null)
        os.close(log_fd)
        setup = ContainerSetup.from_json(request["setup"])
        enter_container(setup, switch_user=False)
        os.environ.clear()
        os.environ.update(request["env"])
        argv = list(request["argv"])
        _show_as(argv, request["env"])  # while still root: it needs privileges a user lacks
        if setup.identity is not None:
            become(setup.identity)
        sys.argv = [str(own_script()), *argv[1:]]
        os.closerange(3, status_pipe)
        os.closerange(status_pipe + 1, 65536)
    except BaseException as error:  # noqa: BLE001 - reported to the agent as a start error
        with contextlib.suppress(OSError):
            os.write(status_pipe, f"{type(error).__name__}: {error}".encode()[:4000])
        os._exit(127)
    os.close(status_pipe)  # started: the zygote hears EOF
    code = 1
    try:
        from knserve.cli import main

        code = main(argv[1:])
    except SystemExit as leaving:  # as the interpreter turns it into an exit status
        if leaving.code is None or isinstance(leaving.code, int):
            code = leaving.code or 0
        else:
            print(leaving.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - as an exec'd Python would: the traceback, exit 1
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            import atexit

            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    os._exit(code & 0xFF)


def _fork(request: dict[str, Any]) -> dict[str, Any]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _become_container(request, write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as status:
        failure = status.read()
    if failure:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        return {"id": request["id"], "error": failure.decode(errors="replace")}
    return {"id": request["id"], "pid": pid}


def _source_stamps() -> dict[str, int]:
    """Modification times of the knserve modules this process imported."""
    stamps: dict[str, int] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and name.split(".", 1)[0] in OWN_PACKAGES:
            with contextlib.suppress(OSError):
                stamps[path] = os.stat(path).st_mtime_ns
    return stamps


def _report_exits(channel: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        channel.send(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def _reload(channel: socket.socket, commands: Sequence[str]) -> None:
    """Become a fresh zygote in place (same pid, so its children stay its own to wait for)."""
    os.set_inheritable(channel.fileno(), True)
    os.execv(sys.executable, [sys.executable, "-m", "node.zygote", str(channel.fileno()), *commands])


def serve(channel: socket.socket, commands: Sequence[str]) -> None:
    """The zygote's loop: fork on request, report exits, end when the agent hangs up."""
    from knserve import cli

    for command in commands:
        for module in (cli.COMMANDS[command][0], *PRELOADED.get(command, ())):
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
    imported = _source_stamps()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    channel.send(json.dumps({"ready": os.getpid()}).encode())
    _report_exits(channel)  # children that ended while an earlier image of this process reloaded
    while True:
        readable, _, _ = select.select([channel.fileno(), wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
            _report_exits(channel)
        if channel.fileno() in readable:
            packet = channel.recv(MAX_MESSAGE)
            if not packet:
                return
            request = json.loads(packet)
            if _source_stamps() != imported:
                # knserve's code changed on disk: this container is exec'd, later ones are
                # forked from the new code.
                channel.send(json.dumps({"id": request["id"], "reloading": True}).encode())
                _reload(channel, commands)
            channel.send(json.dumps(_fork(request)).encode())


def main(argv: list[str]) -> int:
    channel = socket.socket(fileno=int(argv[0]))
    try:
        serve(channel, argv[1:])
    except (BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
