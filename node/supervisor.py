"""One container's life on the node: resolve, start, probe, restart with back-off, stop.

``ContainerSupervisor.run`` is the loop the kubelet runs per container: resolve what to run
(command or image map, environment), start the process, run its startup, liveness and
readiness probes on their timers, record each exit (exit code, reason, times), and restart
it under the pod's ``restartPolicy`` with crash back-off (``CrashLoopBackOff`` while held
back). ``stop`` runs the ``preStop`` hook, sends SIGTERM to the process group and SIGKILL
after the grace period. A supervisor created after an agent restart adopts the process its
record file names if that process still runs, and otherwise records it as exited.

Side effects: processes, probe traffic, record and log files; it reports changes by calling
``PodWorker.notify``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node import envvars, images
from node.backoff import RestartBackoff, should_restart
from node.cgroups import ContainerCgroups, remove_pod_cgroups
from node.handlers import run_action
from node.probes import (
    ProbeConfigError,
    ProbeKind,
    ProbeSpec,
    ProbeTracker,
    action_from,
    container_probes,
)
from node.processes import (
    ContainerProcess,
    ContainerSetup,
    Identity,
    ProcessRecord,
    StartError,
    exit_code_and_signal,
    read_json,
    write_json_atomically,
)
from node.security import IdentityRefused, container_identity
from node.status import (
    CONTAINER_ID_SCHEME,
    REASON_CONFIG_ERROR,
    REASON_CONTAINER_CREATING,
    REASON_CRASH_LOOP,
    REASON_IMAGE_NOT_MAPPED,
    REASON_OOM_KILLED,
    REASON_UNKNOWN,
    ContainerSnapshot,
    ContainerState,
    Running,
    Terminated,
    Waiting,
)
from node.volumes import container_mounts
from node.zygote import ZygoteUnavailable

if TYPE_CHECKING:
    from node.pod import PodWorker

log = logging.getLogger(__name__)

CONFIG_RETRY_SECONDS = 5.0
MINIMUM_GRACE_AFTER_HOOK = 2.0
# How often the pid of every running container is checked in /proc, in case its exit was not
# reported (a zygote that is stuck, a lost notification): the node then still converges.
LIVENESS_CHECK_SECONDS = 1.0
# How long an exit seen that way waits for the real report (which carries the exit code).
UNREPORTED_EXIT_GRACE_SECONDS = 1.0
_MINIMUM_PROBE_PERIOD = 0.05


class WaitingForConfig(Exception):
    """The container cannot start yet; ``reason`` and the message go into its waiting state."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _wall(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def _terminated_from_json(raw: dict[str, Any]) -> Terminated:
    started = raw.get("started_at")
    return Terminated(
        exit_code=int(raw["exit_code"]),
        reason=str(raw["reason"]),
        finished_at=_wall(float(raw["finished_at"])),
        started_at=_wall(float(started)) if started is not None else None,
        signal=raw.get("signal"),
        message=str(raw.get("message", "")),
        container_id=str(raw.get("container_id", "")),
    )


def _terminated_to_json(terminated: Terminated) -> dict[str, Any]:
    return {
        "exit_code": terminated.exit_code,
        "reason": terminated.reason,
        "finished_at": terminated.finished_at.timestamp(),
        "started_at": terminated.started_at.timestamp() if terminated.started_at else None,
        "signal": terminated.signal,
        "message": terminated.message,
        "container_id": terminated.container_id,
    }


class ContainerSupervisor:
    def __init__(self, pod: PodWorker, container: dict[str, Any], *, init: bool = False) -> None:
        self.pod = pod
        self.ctx = pod.ctx
        self.spec = container
        self.name = str(container["name"])
        self.image = str(container.get("image", ""))
        self.init = init
        self.state: ContainerState = Waiting(REASON_CONTAINER_CREATING)
        self.last_terminated: Terminated | None = None
        self.restart_count = 0
        self.ready = False
        self.started = False
        self.container_id = ""
        self.done = False
        self.process: ContainerProcess | None = None
        self.env: dict[str, str] = {}
        self.cwd: Path = self.ctx.layout.work_dir(pod.uid)
        self.identity: Identity | None = None
        self.cgroups: ContainerCgroups | None = None
        self.limits_note = ""  # what of the container's resources is not enforced, if anything
        self.backoff = RestartBackoff()
        self.directory = self.ctx.layout.container_dir(pod.uid, self.name)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stopping = asyncio.Event()
        self._kill_reason: str | None = None
        self._kill_requested = asyncio.Event()
        self._startup_passed = asyncio.Event()
        self._started_at_wall = 0.0
        self._start_ticks: int | None = None
        self._finished_at_monotonic: float | None = None
        self._restore_ready = False
        try:
            self.probe_specs = container_probes(container)
            self.probe_error = ""
        except ProbeConfigError as error:
            self.probe_specs = {}
            self.probe_error = str(error)
        self.trackers = {kind: ProbeTracker.start(spec) for kind, spec in self.probe_specs.items()}
        self._pending_exit = self._recover()

    # --- reading the state -------------------------------------------------------------------

    @property
    def record_file(self) -> Path:
        return self.directory / "process.json"

    @property
    def last_exit_file(self) -> Path:
        return self.directory / "last.json"

    def _protected_paths(self) -> list[Path]:
        """What volumes must not hide: the node's state and the Python (and knserve's own code)
        the containers run from."""
        return [self.ctx.layout.root.resolve(), Path(sys.prefix).resolve(), Path(__file__).resolve().parents[1],
                *(Path(p).resolve() for p in sys.path if p and Path(p).is_dir())]

    def snapshot(self) -> ContainerSnapshot:
        return ContainerSnapshot(
            name=self.name,
            image=self.image,
            state=self.state,
            last_terminated=self.last_terminated,
            restart_count=self.restart_count,
            ready=self.ready,
            started=self.started,
            container_id=self.container_id,
            limits_note=self.limits_note,
        )

    def log_file(self, *, previous: bool = False) -> Path | None:
        count = self.restart_count - 1 if previous else self.restart_count
        if count < 0:
            return None
        path = self.ctx.layout.log_file(self.pod.uid, self.name, count)
        return path if path.exists() else None

    @property
    def running(self) -> bool:
        return self.process is not None

    def assume_completed(self) -> None:
        """An init container of a pod that already got past its init phase."""
        self.done = True
        finished, self._pending_exit = self._pending_exit or self.last_terminated, None
        if finished is not None and finished.exit_code == 0:
            self.state, self.last_terminated = finished, None
        else:
            now = self.ctx.clock.now()
            self.state = Terminated.from_exit(0, finished_at=now, started_at=None)

    # --- the loop ------------------------------------------------------------------------------

    def _restart_policy(self) -> str:
        policy = str((self.pod.pod.get("spec") or {}).get("restartPolicy", "Always"))
        if self.init and policy == "Always":
            return "OnFailure"  # an init container that succeeded is never run again
        return policy

    async def run(self) -> None:
        """Run the container until it is done for good or ``stop`` is called."""
        pending_exit, self._pending_exit = self._pending_exit, None
        try:
            while not self._stopping.is_set():
                if pending_exit is None:
                    if self.process is None:
                        launched = await self._launch_safely()
                        if launched is None:
                            continue
                        if isinstance(launched, Terminated):
                            pending_exit = launched
                        elif self._stopping.is_set() and self.process is not None:
                            # ``stop`` came while the process was starting: stop it as ``stop`` would have.
                            await self._kill(self.process, self.pod.termination_grace_period(), pre_stop=False)
                    if pending_exit is None:
                        pending_exit = await self._supervise_safely()
                self._record_exit(pending_exit)
                exit_code = pending_exit.exit_code
                pending_exit = None
                if self._stopping.is_set():
                    break
                if not should_restart(self._restart_policy(), exit_code):
                    self.done = True
                    break
                await self._wait_before_restart()
        finally:
            self.ready = False
            self.pod.notify()

    def _recover(self) -> Terminated | None:
        """Pick up where an earlier agent left: adopt a live process or note its exit."""
        last = read_json(self.last_exit_file)
        if last is not None:
            self.restart_count = int(last.get("restart_count", 0))
            if last.get("terminated"):
                self.last_terminated = _terminated_from_json(last["terminated"])
        raw = read_json(self.record_file)
        if raw is None:
            # No process: it never started, or its exit was recorded (it waited to restart,
            # finished for good, or the agent stopped it): carry on from that exit.
            pending, self.last_terminated = self.last_terminated, None
            return pending
        record = ProcessRecord.from_json(raw)
        self.restart_count = record.restart_count
        self.env = dict(raw.get("env") or {})
        self.cwd = Path(raw.get("cwd") or self.cwd)
        self.container_id = f"{CONTAINER_ID_SCHEME}{self.pod.uid}/{self.name}/{record.pid}"
        self._started_at_wall = record.started_at
        self._start_ticks = record.start_ticks
        if record.still_running():
            self.process = ContainerProcess(record.pid)
            self.state = Running(_wall(record.started_at))
            self.started = ProbeKind.STARTUP not in self.probe_specs
            if self.started:
                self._startup_passed.set()
            previous = self.pod.previous_container_status(self.name, init=self.init)
            self._restore_ready = bool(previous.get("ready"))
            # ready at once, as it was: a status written before the run loop takes over must
            # not take an adopted pod out of its endpoints for a moment
            self.ready = self._restore_ready
            self.backoff.note_start(self.ctx.clock.monotonic())
            log.info("adopted %s container %s (pid %d)", self.pod.key, self.name, record.pid)
            return None
        # The process ended while no agent watched it; the shutdown record may know how.
        self.record_file.unlink(missing_ok=True)
        if last is not None and last.get("pid") == record.pid and last.get("terminated"):
            return _terminated_from_json(last["terminated"])
        now = self.ctx.clock.now()
        return Terminated(
            exit_code=255,
            reason=REASON_UNKNOWN,
            finished_at=now,
            started_at=_wall(record.started_at),
            message="The container's process ended while the node agent was not running.",
            container_id=self.container_id,
        )

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped first; True when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=max(seconds, 0.0))
        return self._stopping.is_set()

    async def _wait_before_restart(self) -> None:
        if isinstance(self.state, Terminated):
            self.last_terminated = self.state
        now = self.ctx.clock.monotonic()
        finished = self._finished_at_monotonic if self._finished_at_monotonic is not None else now
        delay = self.backoff.restart_at(finished) - now
        if delay > 0:
            self.state = Waiting(
                REASON_CRASH_LOOP,
                f"back-off {self.backoff.current:g}s restarting failed container={self.name} "
                f"pod={self.pod.name}_{self.pod.namespace}({self.pod.uid})",
            )
            self.pod.notify()
            if await self._sleep(delay):
                return
        self.backoff.record_restart(finished_at=finished, now=self.ctx.clock.monotonic())
        self.restart_count += 1

    def _record_exit(self, terminated: Terminated) -> None:
        self.state = terminated
        self.ready = False
        self.started = False
        self._startup_passed.clear()
        self._finished_at_monotonic = self.ctx.clock.monotonic()
        pid = self.process.pid if self.process is not None else None
        self.process = None
        write_json_atomically(
            self.last_exit_file,
            {"restart_count": self.restart_count, "pid": pid, "terminated": _terminated_to_json(terminated)},
        )
        self.record_file.unlink(missing_ok=True)
        self.pod.notify()

    async def _resolve(self) -> tuple[list[str], dict[str, str], Path]:
        entries, problems = await self.ctx.images.entries()
        entrypoint = images.lookup(entries, self.image)
        try:
            self.identity = container_identity(self.pod.pod, self.spec,
                                               image_user=entrypoint.user if entrypoint is not None else None)
        except IdentityRefused as refused:
            raise WaitingForConfig(REASON_CONFIG_ERROR, str(refused)) from None
        argv = images.command_line(self.spec, entrypoint)
        if argv is None:
            message = (
                f'image "{self.image}" has no command on this node: set the container\'s command, or map the '
                f"image to one in ConfigMap {self.ctx.images.namespace}/{self.ctx.images.name}"
            )
            if problems and not self.spec.get("command"):
                message += " (unreadable entries there: " + "; ".join(problems) + ")"
            raise WaitingForConfig(REASON_IMAGE_NOT_MAPPED, message)
        references = envvars.referenced_objects(self.spec)
        config_maps = {
            name: await self.ctx.api.get_config_map_data(self.pod.namespace, name) for name in references.config_maps
        }
        secrets: dict[str, dict[str, str] | None] = {}
        for name in references.secrets:
            secret = await self.ctx.api.get_secret(self.pod.namespace, name)
            secrets[name] = envvars.secret_strings(secret) if secret is not None else None
        try:
            env = envvars.resolve_environment(
                self.spec,
                self.pod.pod,
                pod_ip=self.pod.pod_ip,
                host_ip=self.ctx.settings.host_ip,
                config_maps=config_maps,
                secrets=secrets,
                node_variables=self.pod.node_variables(),
            )
        except envvars.ContainerConfigError as error:
            raise WaitingForConfig(REASON_CONFIG_ERROR, str(error)) from None
        argv = envvars.expand_command_line(argv, env)
        working_dir = self.spec.get("workingDir")
        cwd = Path(working_dir) if working_dir else self.ctx.layout.work_dir(self.pod.uid)
        return argv, {**self.ctx.settings.base_env, **env}, cwd

    async def _launch_safely(self) -> Running | Terminated | None:
        """``_launch``, with a failure of the node's own (a bug, a full disk) logged and retried
        instead of ending this container's supervision silently."""
        try:
            return await self._launch()
        except Exception:
            log.exception("%s container %s: starting it failed; trying again", self.pod.key, self.name)
            await self._sleep(CONFIG_RETRY_SECONDS)
            return None

    async def _supervise_safely(self) -> Terminated:
        """``_supervise`` until it answers: a failure of the node's own is logged and the process
        watched again, so its exit is never lost with the task that watched it."""
        while True:
            try:
                return await self._supervise()
            except Exception:
                log.exception("%s container %s: watching pid %s failed; watching it again", self.pod.key, self.name,
                              self.process.pid if self.process is not None else "?")
                await asyncio.sleep(LIVENESS_CHECK_SECONDS)

    async def _launch(self) -> Running | Terminated | None:
        """Start the process: its Running state, a Terminated one if it could not, None to retry."""
        try:
            argv, env, cwd = await self._resolve()
        except WaitingForConfig as waiting:
            if self.state != Waiting(waiting.reason, waiting.message):
                log.info("%s container %s waits: %s", self.pod.key, self.name, waiting.message)
            self.state = Waiting(waiting.reason, waiting.message)
            self.pod.notify()
            await self._sleep(CONFIG_RETRY_SECONDS)
            return None
        except Exception as error:  # the API server failed us: retry like any sync
            log.warning("%s container %s: could not resolve its configuration: %s", self.pod.key, self.name, error)
            await self._sleep(CONFIG_RETRY_SECONDS)
            return None
        if self._stopping.is_set():
            return None
        self.env, self.cwd = env, cwd
        log_file = self.ctx.layout.log_file(self.pod.uid, self.name, self.restart_count)
        log_file.write_bytes(b"")
        now_wall = self.ctx.clock.now()
        mounts = [*self.pod.files, *container_mounts(self.spec, self.pod.volumes, self._protected_paths())]
        scratch = self.directory / "root"  # where a private root is built, if a mount point is missing
        scratch.mkdir(exist_ok=True)
        setup = ContainerSetup(network_namespace=self.pod.network_namespace, mounts=tuple(mounts), scratch=scratch,
                               identity=self.identity, cgroups=tuple(self._cgroup_files()),
                               reachable=tuple(self._reachable_paths(cwd)))
        try:
            process = await self._start_process(argv, env, cwd, log_file, setup)
        except StartError as error:
            return Terminated(128, "StartError", finished_at=now_wall, started_at=now_wall, message=str(error))
        self.process = process
        self._started_at_wall = now_wall.timestamp()
        self.container_id = f"{CONTAINER_ID_SCHEME}{self.pod.uid}/{self.name}/{process.pid}"
        self._start_ticks = process.start_ticks()
        record = ProcessRecord(
            pid=process.pid,
            start_ticks=self._start_ticks or 0,
            started_at=self._started_at_wall,
            restart_count=self.restart_count,
            log_file=str(log_file),
        )
        write_json_atomically(self.record_file, {**record.to_json(), "env": env, "cwd": str(cwd), "argv": argv})
        self.backoff.note_start(self.ctx.clock.monotonic())
        self._remove_old_logs()
        running = Running(now_wall)
        self.state = running
        self.started = ProbeKind.STARTUP not in self.probe_specs
        if self.started:
            self._startup_passed.set()
        log.info("started %s container %s (pid %d): %s", self.pod.key, self.name, process.pid, argv)
        self.pod.notify()
        return running

    async def _start_process(self, argv: list[str], env: dict[str, str], cwd: Path, log_file: Path,
                             setup: ContainerSetup) -> ContainerProcess:
        """Fork it from the zygote when it serves this command line, else exec it."""
        zygote = self.ctx.zygote
        if zygote is not None and zygote.serves(argv, env):
            try:
                return await zygote.spawn(argv, env=env, cwd=cwd, log_file=log_file, setup=setup)
            except ZygoteUnavailable as unavailable:
                log.info("%s container %s is exec'd: %s", self.pod.key, self.name, unavailable)
        return ContainerProcess.spawn(argv, env=env, cwd=cwd, log_file=log_file, setup=setup)

    def _reachable_paths(self, cwd: Path) -> list[Path]:
        """What a container running as another user than root must reach on the host: the
        Python installation and knserve's code it may run from (an image's own files), its
        working directory and its service-account credentials."""
        if self.identity is None or self.identity.uid == 0:
            return []
        paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(__file__).resolve().parents[1], cwd]
        if self.pod.credentials is not None:
            paths.append(self.pod.credentials.directory)
        return list(dict.fromkeys(paths))

    def _cgroup_files(self) -> list[Path]:
        """The container's cgroups (made on its first start): the files its process joins."""
        if self.cgroups is None:
            try:
                cgroups = ContainerCgroups(self.pod.uid, self.name, self.spec.get("resources") or {})
            except ValueError as error:
                self.limits_note = f"resources not enforced: {error}"
                return []
            if not cgroups.wanted:
                return []
            self.cgroups = cgroups
        files, self.limits_note = self.cgroups.create()
        if self.limits_note:
            log.warning("%s container %s: %s", self.pod.key, self.name, self.limits_note)
        return files

    def remove_cgroups(self) -> None:
        if self.cgroups is not None:
            self.cgroups.remove()

    def in_container(self) -> ContainerSetup | None:
        """How an exec probe or hook enters the running container (None: it is not running)."""
        if self.process is None:
            return None
        return ContainerSetup(join_pid=self.process.pid, cwd=self.cwd, identity=self.identity)

    def _remove_old_logs(self) -> None:
        keep = {f"{self.restart_count}.log", f"{self.restart_count - 1}.log"}
        for path in self.directory.glob("*.log"):
            if path.name not in keep:
                path.unlink(missing_ok=True)

    async def _supervise(self) -> Terminated:
        """Probe the running process until it exits (or a probe has it killed)."""
        assert self.process is not None
        process = self.process
        exited = process.wait()
        self._kill_requested.clear()
        self._kill_reason = None
        trackers = {kind: ProbeTracker.start(spec) for kind, spec in self.probe_specs.items()}
        if self._restore_ready and ProbeKind.READINESS in trackers:
            trackers[ProbeKind.READINESS].passing = True
        self.trackers = trackers
        self.ready = self._restore_ready or (self.started and ProbeKind.READINESS not in trackers)
        self._restore_ready = False
        if self.ready:
            self.pod.notify()
        probe_tasks = [
            asyncio.create_task(self._probe_loop(spec), name=f"probe {self.pod.key}/{self.name} {kind.value}")
            for kind, spec in self.probe_specs.items()
        ]
        kill_wait: asyncio.Future[Any] = asyncio.ensure_future(self._kill_requested.wait())
        liveness = asyncio.create_task(self._watch_liveness(process), name=f"liveness {self.pod.key}/{self.name}")
        exit_wait: asyncio.Future[Any] = exited
        try:
            await asyncio.wait({exit_wait, kill_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done() and self._kill_requested.is_set():
                log.info("%s container %s: %s", self.pod.key, self.name, self._kill_reason)
                await self._kill(process, self._probe_grace())
            code = await exited
        finally:
            kill_wait.cancel()
            liveness.cancel()
            for task in probe_tasks:
                task.cancel()
            await asyncio.gather(*probe_tasks, kill_wait, liveness, return_exceptions=True)
        exit_code, signal_number = exit_code_and_signal(code)
        finished = self.ctx.clock.now()
        started = _wall(self._started_at_wall) if self._started_at_wall else None
        if code is None:
            return Terminated(
                exit_code=exit_code, reason=REASON_UNKNOWN, finished_at=finished, started_at=started,
                message="The exit status of the container's process is not known (it was adopted after a node "
                        "agent restart, or its exit was never reported).",
                container_id=self.container_id,
            )
        if self.cgroups is not None and self.cgroups.oom_killed():
            return Terminated(exit_code=exit_code, reason=REASON_OOM_KILLED, finished_at=finished, started_at=started,
                              signal=signal_number, container_id=self.container_id)
        message = self._kill_reason or ""
        if not message and exit_code != 0 and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = self._log_tail()
        return Terminated.from_exit(
            exit_code, finished_at=finished, started_at=started, signal=signal_number,
            container_id=self.container_id, message=message,
        )

    def _log_tail(self) -> str:
        """What a kubelet takes as the termination message under FallbackToLogsOnError: the log's
        last 80 lines, at most 2048 bytes."""
        path = self.log_file()
        if path is None:
            return ""
        with contextlib.suppress(OSError), open(path, "rb") as log_handle:
            log_handle.seek(max(0, path.stat().st_size - 2048))
            lines = log_handle.read().decode(errors="replace").splitlines()[-80:]
            return "\n".join(lines).strip()
        return ""

    async def _watch_liveness(self, process: ContainerProcess) -> None:
        """Settle the process's exit if /proc shows it gone but no report came."""
        exited = process.wait()
        while not exited.done():
            await asyncio.sleep(LIVENESS_CHECK_SECONDS)
            if exited.done() or not process.gone(self._start_ticks):
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), UNREPORTED_EXIT_GRACE_SECONDS)
            if not exited.done():
                log.warning("%s container %s: process %d is gone but its exit was not reported; recording it",
                            self.pod.key, self.name, process.pid)
                process.settle_unreported_exit()

    def _probe_grace(self) -> float:
        for kind in (ProbeKind.LIVENESS, ProbeKind.STARTUP):
            spec = self.probe_specs.get(kind)
            if spec is not None and spec.termination_grace_period is not None:
                return spec.termination_grace_period
        return self.pod.termination_grace_period()

    def _mark_ready(self, ready: bool) -> None:
        if self.ready != ready:
            self.ready = ready
            self.pod.notify()

    async def _probe_loop(self, spec: ProbeSpec) -> None:
        kind = spec.kind
        tracker = self.trackers[kind]
        if kind is not ProbeKind.STARTUP:
            await self._startup_passed.wait()
        elapsed = self.ctx.clock.now().timestamp() - self._started_at_wall
        await asyncio.sleep(max(0.0, spec.initial_delay - elapsed))
        while True:
            try:
                passed, message = await asyncio.wait_for(
                    run_action(
                        spec.action,
                        pod_ip=self.pod.pod_ip,
                        network_namespace=self.pod.network_namespace,
                        env=self.env,
                        cwd=self.cwd,
                        timeout=spec.timeout,
                        session=self.ctx.probe_session,
                        container=self.in_container(),
                    ),
                    timeout=spec.timeout + 1.0,
                )
            except TimeoutError:
                passed, message = False, f"probe timed out after {spec.timeout:g}s"
            changed = tracker.record(passed, message)
            if kind is ProbeKind.READINESS:
                self._mark_ready(tracker.passing)
            elif kind is ProbeKind.STARTUP:
                if tracker.passing:
                    self.started = True
                    self._startup_passed.set()
                    self._mark_ready(ProbeKind.READINESS not in self.probe_specs)
                    self.pod.notify()
                    return
                if changed and tracker.gave_up:
                    self._request_kill(f"Container {self.name} failed startup probe, will be restarted: {message}")
                    return
            elif kind is ProbeKind.LIVENESS and tracker.gave_up:
                self._request_kill(f"Container {self.name} failed liveness probe, will be restarted: {message}")
                return
            await asyncio.sleep(max(spec.period, _MINIMUM_PROBE_PERIOD))

    def _request_kill(self, reason: str) -> None:
        self._kill_reason = reason
        self._kill_requested.set()

    async def _run_pre_stop(self, grace: float) -> None:
        hook = ((self.spec.get("lifecycle") or {}).get("preStop")) or {}
        if not hook:
            return
        if hook.get("sleep") is not None:
            await asyncio.sleep(min(float(hook["sleep"].get("seconds", 0)), grace))
            return
        try:
            action = action_from(hook, self.spec)
        except ProbeConfigError as error:
            log.warning("%s container %s: preStop hook not run: %s", self.pod.key, self.name, error)
            return
        try:
            passed, message = await asyncio.wait_for(
                run_action(
                    action, pod_ip=self.pod.pod_ip, network_namespace=self.pod.network_namespace, env=self.env,
                    cwd=self.cwd, timeout=grace, session=self.ctx.probe_session, container=self.in_container(),
                ),
                timeout=max(grace, 0.1),
            )
        except TimeoutError:
            passed, message = False, f"did not finish within {grace:g}s"
        if not passed:
            log.warning("%s container %s: preStop hook failed: %s", self.pod.key, self.name, message)

    async def _kill(self, process: ContainerProcess, grace: float, *, pre_stop: bool = True) -> None:
        started = self.ctx.clock.monotonic()
        if pre_stop:
            await self._run_pre_stop(grace)
            remaining = grace - (self.ctx.clock.monotonic() - started)
            if (self.spec.get("lifecycle") or {}).get("preStop"):
                remaining = max(remaining, MINIMUM_GRACE_AFTER_HOOK)
        else:
            remaining = grace
        await process.stop(max(remaining, 0.0))

    async def stop(self, grace: float, *, pre_stop: bool = True) -> None:
        """Stop for good: preStop, SIGTERM, SIGKILL after ``grace``; returns once it exited."""
        self._stopping.set()
        process = self.process
        if process is not None:
            await self._kill(process, grace, pre_stop=pre_stop)


def remove_tree(path: Path) -> None:
    """Delete a pod's directory (logs, credentials, records) and what is left of its cgroups
    (the directory is named after the pod's UID)."""
    shutil.rmtree(path, ignore_errors=True)
    remove_pod_cgroups(path.name)


__all__ = ["ContainerSupervisor", "WaitingForConfig", "remove_tree"]
