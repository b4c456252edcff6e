"""Pod status as the kubelet writes it, built from what the node knows about each container.

``ContainerSnapshot`` is one container's runtime view (state, last termination, restarts,
ready, started); ``build_pod_status`` turns the snapshots of a pod into the ``status`` the
API shows: ``phase``, ``conditions`` (PodScheduled, Initialized, ContainersReady, Ready, with
transition times kept while a condition does not change), ``podIP``/``podIPs``, ``hostIP``,
``startTime`` and ``containerStatuses``, and, when a container's resource limits cannot be
enforced on this node, the condition ``knserve.dev/ResourceLimits`` (False, ``NotEnforced``,
naming what is not). Pure: the caller passes ``now``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence

from kube.objects import JSON

# Waiting reasons, as the kubelet names them (plus ImageNotMapped for the local image map).
REASON_CONTAINER_CREATING = "ContainerCreating"
REASON_CRASH_LOOP = "CrashLoopBackOff"
REASON_CONFIG_ERROR = "CreateContainerConfigError"
REASON_CREATE_ERROR = "CreateContainerError"
REASON_IMAGE_NOT_MAPPED = "ImageNotMapped"
REASON_POD_INITIALIZING = "PodInitializing"
# Termination reasons.
REASON_COMPLETED = "Completed"
REASON_ERROR = "Error"
REASON_OOM_KILLED = "OOMKilled"
REASON_UNKNOWN = "Unknown"

CONTAINER_ID_SCHEME = "knserve://"
RESOURCE_LIMITS_CONDITION = "knserve.dev/ResourceLimits"
REASON_LIMITS_NOT_ENFORCED = "NotEnforced"


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes ``metav1.Time``."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Running:
    started_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    finished_at: datetime.datetime
    started_at: datetime.datetime | None = None
    signal: int | None = None
    message: str = ""
    container_id: str = ""

    @classmethod
    def from_exit(
        cls,
        exit_code: int,
        *,
        finished_at: datetime.datetime,
        started_at: datetime.datetime | None,
        signal: int | None = None,
        container_id: str = "",
        message: str = "",
    ) -> Terminated:
        reason = REASON_COMPLETED if exit_code == 0 else REASON_ERROR
        return cls(exit_code, reason, finished_at, started_at, signal, message, container_id)


ContainerState = Waiting | Running | Terminated


@dataclasses.dataclass(frozen=True)
class ContainerSnapshot:
    name: str
    image: str
    state: ContainerState
    last_terminated: Terminated | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""
    limits_note: str = ""  # what of its resource limits this node does not enforce


def state_json(state: ContainerState | None) -> JSON:
    if state is None:
        return {}
    if isinstance(state, Waiting):
        waiting: JSON = {"reason": state.reason}
        if state.message:
            waiting["message"] = state.message
        return {"waiting": waiting}
    if isinstance(state, Running):
        return {"running": {"startedAt": timestamp(state.started_at)}}
    terminated: JSON = {"exitCode": state.exit_code, "reason": state.reason, "finishedAt": timestamp(state.finished_at)}
    if state.started_at is not None:
        terminated["startedAt"] = timestamp(state.started_at)
    if state.signal is not None:
        terminated["signal"] = state.signal
    if state.message:
        terminated["message"] = state.message
    if state.container_id:
        terminated["containerID"] = state.container_id
    return {"terminated": terminated}


def container_status_json(snapshot: ContainerSnapshot) -> JSON:
    status: JSON = {
        "name": snapshot.name,
        "image": snapshot.image,
        "imageID": "",
        "ready": snapshot.ready,
        "restartCount": snapshot.restart_count,
        "started": snapshot.started,
        "state": state_json(snapshot.state),
        "lastState": state_json(snapshot.last_terminated),
    }
    if snapshot.container_id:
        status["containerID"] = snapshot.container_id
    return status


def pod_phase(
    restart_policy: str,
    snapshots: Sequence[ContainerSnapshot],
    *,
    initialized: bool = True,
    previous_phase: str | None = None,
) -> str:
    """The pod phase by the kubelet's rules; Succeeded and Failed are final."""
    if previous_phase in ("Succeeded", "Failed"):
        return previous_phase
    if not initialized:
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for snapshot in snapshots:
        if isinstance(snapshot.state, Running):
            running += 1
        elif isinstance(snapshot.state, Terminated):
            stopped += 1
            if snapshot.state.exit_code == 0:
                succeeded += 1
        elif snapshot.last_terminated is not None:
            stopped += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(
    kind: str,
    status: bool,
    *,
    now: datetime.datetime,
    previous: Mapping[str, JSON],
    reason: str = "",
    message: str = "",
) -> JSON:
    value = "True" if status else "False"
    before = previous.get(kind)
    if before is not None and before.get("status") == value and before.get("lastTransitionTime"):
        transition = before["lastTransitionTime"]
    else:
        transition = timestamp(now)
    # Empty reason and message are written as null: in the strategic-merge patch the node
    # writes, null removes what an earlier status said.
    return {
        "type": kind,
        "status": value,
        "lastProbeTime": None,
        "lastTransitionTime": transition,
        "reason": reason or None,
        "message": message or None,
    }


def build_pod_status(
    pod: JSON,
    snapshots: Sequence[ContainerSnapshot],
    *,
    pod_ip: str,
    host_ip: str,
    start_time: datetime.datetime,
    now: datetime.datetime,
    init_snapshots: Sequence[ContainerSnapshot] = (),
    initialized: bool = True,
) -> JSON:
    """The ``status`` the node writes for ``pod``; conditions others own are kept."""
    spec = pod.get("spec") or {}
    old_status = pod.get("status") or {}
    old_conditions = {c.get("type", ""): c for c in old_status.get("conditions") or []}
    phase = pod_phase(
        spec.get("restartPolicy", "Always"),
        snapshots,
        initialized=initialized,
        previous_phase=old_status.get("phase"),
    )
    unready = [s.name for s in snapshots if not s.ready]
    terminal = phase in ("Succeeded", "Failed")
    if terminal:
        containers_ready, ready_reason, ready_message = False, "PodCompleted", ""
    elif unready:
        containers_ready, ready_reason = False, "ContainersNotReady"
        ready_message = f"containers with unready status: [{' '.join(unready)}]"
    else:
        containers_ready, ready_reason, ready_message = True, "", ""
    pod_ready, pod_reason, pod_message = containers_ready, ready_reason, ready_message
    if pod_ready:
        gates = [g.get("conditionType", "") for g in spec.get("readinessGates") or []]
        missing = [g for g in gates if (old_conditions.get(g) or {}).get("status") != "True"]
        if missing:
            pod_ready, pod_reason = False, "ReadinessGatesNotReady"
            pod_message = "corresponding condition of pod readiness gate " + ", ".join(f'"{g}"' for g in missing) + " does not exist or is not True"
    unfinished_init = [s.name for s in init_snapshots if not (isinstance(s.state, Terminated) and s.state.exit_code == 0)]
    init_message = f"containers with incomplete status: [{' '.join(unfinished_init)}]" if not initialized else ""
    owned = {
        "PodScheduled": _condition("PodScheduled", True, now=now, previous=old_conditions),
        "Initialized": _condition(
            "Initialized", initialized, now=now, previous=old_conditions,
            reason="" if initialized else "ContainersNotInitialized", message=init_message,
        ),
        "ContainersReady": _condition(
            "ContainersReady", containers_ready, now=now, previous=old_conditions, reason=ready_reason, message=ready_message
        ),
        "Ready": _condition("Ready", pod_ready, now=now, previous=old_conditions, reason=pod_reason, message=pod_message),
    }
    notes = [f"container {s.name}: {s.limits_note}" for s in [*init_snapshots, *snapshots] if s.limits_note]
    if notes:
        owned[RESOURCE_LIMITS_CONDITION] = _condition(
            RESOURCE_LIMITS_CONDITION, False, now=now, previous=old_conditions, reason=REASON_LIMITS_NOT_ENFORCED,
            message="; ".join(notes),
        )
    conditions = list(owned.values()) + [
        c for kind, c in old_conditions.items() if kind not in owned and kind != RESOURCE_LIMITS_CONDITION
    ]
    status: JSON = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": old_status.get("startTime") or timestamp(start_time),
        "containerStatuses": [container_status_json(s) for s in snapshots],
    }
    if init_snapshots:
        status["initContainerStatuses"] = [container_status_json(s) for s in init_snapshots]
    return status
