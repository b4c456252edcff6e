"""Pod status from container snapshots: phase, conditions and container statuses."""

from __future__ import annotations

import datetime

import pytest

from node.status import (
    ContainerSnapshot,
    Running,
    Terminated,
    Waiting,
    build_pod_status,
    container_status_json,
    pod_phase,
)

T0 = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
T1 = T0 + datetime.timedelta(seconds=30)


def running(name: str = "app", *, ready: bool = True) -> ContainerSnapshot:
    return ContainerSnapshot(name=name, image="img", state=Running(T0), ready=ready, started=True)


def waiting(name: str = "app", reason: str = "ContainerCreating") -> ContainerSnapshot:
    return ContainerSnapshot(name=name, image="img", state=Waiting(reason))


def exited(code: int, name: str = "app") -> ContainerSnapshot:
    return ContainerSnapshot(
        name=name, image="img", state=Terminated.from_exit(code, finished_at=T1, started_at=T0)
    )


def crash_looping(name: str = "app") -> ContainerSnapshot:
    return ContainerSnapshot(
        name=name, image="img", state=Waiting("CrashLoopBackOff", "back-off 10s"),
        last_terminated=Terminated.from_exit(3, finished_at=T1, started_at=T0), restart_count=1,
    )


@pytest.mark.parametrize(
    ("policy", "snapshots", "want"),
    [
        pytest.param("Always", [waiting()], "Pending", id="creating"),
        pytest.param("Always", [running(), waiting("b")], "Pending", id="one still creating"),
        pytest.param("Always", [running()], "Running", id="running"),
        pytest.param("Always", [crash_looping()], "Running", id="crash looping counts as running"),
        pytest.param("Always", [exited(0)], "Running", id="always restarts even success"),
        pytest.param("Never", [exited(0), exited(0, "b")], "Succeeded", id="all succeeded"),
        pytest.param("Never", [exited(0), exited(1, "b")], "Failed", id="one failed, never restarts"),
        pytest.param("OnFailure", [exited(0)], "Succeeded", id="on failure: success is final"),
        pytest.param("OnFailure", [crash_looping()], "Running", id="on failure: restarting"),
    ],
)
def test_phase(policy: str, snapshots: list[ContainerSnapshot], want: str) -> None:
    assert pod_phase(policy, snapshots) == want


def test_terminal_phases_stay() -> None:
    assert pod_phase("Always", [running()], previous_phase="Succeeded") == "Succeeded"


def test_uninitialized_pod_is_pending() -> None:
    assert pod_phase("Always", [running()], initialized=False) == "Pending"


def pod(**status: object) -> dict:
    return {"metadata": {"name": "p"}, "spec": {"restartPolicy": "Always"}, "status": status}


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def test_ready_pod_status() -> None:
    status = build_pod_status(
        pod(), [running()], pod_ip="10.244.0.3", host_ip="10.244.0.1", start_time=T0, now=T1
    )
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.244.0.3"
    assert status["podIPs"] == [{"ip": "10.244.0.3"}]
    assert status["hostIP"] == "10.244.0.1"
    assert status["startTime"] == "2026-01-02T03:04:05Z"
    assert {kind: c["status"] for kind, c in conditions(status).items()} == {
        "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True",
    }
    assert conditions(status)["Ready"]["reason"] is None  # null clears an earlier reason in the patch


def test_unready_container_is_named() -> None:
    status = build_pod_status(
        pod(), [running(), running("sidecar", ready=False)], pod_ip="10.244.0.3", host_ip="10.244.0.1",
        start_time=T0, now=T1,
    )
    ready = conditions(status)["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "ContainersNotReady", "containers with unready status: [sidecar]",
    )


def test_transition_time_kept_while_unchanged() -> None:
    before = {"type": "Ready", "status": "True", "lastTransitionTime": "2025-12-31T00:00:00Z"}
    status = build_pod_status(
        pod(conditions=[before, {"type": "Custom", "status": "True"}]), [running()],
        pod_ip="10.244.0.3", host_ip="10.244.0.1", start_time=T0, now=T1,
    )
    assert conditions(status)["Ready"]["lastTransitionTime"] == "2025-12-31T00:00:00Z"
    assert conditions(status)["ContainersReady"]["lastTransitionTime"] == "2026-01-02T03:04:35Z"
    assert conditions(status)["Custom"] == {"type": "Custom", "status": "True"}  # not ours: kept


def test_readiness_gate_holds_ready() -> None:
    gated = {"metadata": {}, "spec": {"readinessGates": [{"conditionType": "example.com/gate"}]}, "status": {}}
    status = build_pod_status(gated, [running()], pod_ip="10.244.0.3", host_ip="10.244.0.1", start_time=T0, now=T1)
    assert conditions(status)["ContainersReady"]["status"] == "True"
    assert conditions(status)["Ready"]["reason"] == "ReadinessGatesNotReady"


def test_container_status_of_a_crash_loop() -> None:
    assert container_status_json(crash_looping()) == {
        "name": "app",
        "image": "img",
        "imageID": "",
        "ready": False,
        "restartCount": 1,
        "started": False,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
        "lastState": {
            "terminated": {
                "exitCode": 3, "reason": "Error",
                "startedAt": "2026-01-02T03:04:05Z", "finishedAt": "2026-01-02T03:04:35Z",
            }
        },
    }


def test_killed_by_signal_reports_128_plus_signal() -> None:
    terminated = Terminated.from_exit(143, finished_at=T1, started_at=T0, signal=15)
    assert container_status_json(
        ContainerSnapshot(name="app", image="img", state=terminated)
    )["state"]["terminated"]["signal"] == 15


def test_limits_the_node_cannot_enforce_are_a_false_condition() -> None:
    unlimited = ContainerSnapshot(name="app", image="img", state=Running(T0), ready=True, started=True,
                                  limits_note="memory limit not enforced (/sys/fs/cgroup/memory: Read-only file system)")
    status = build_pod_status(pod(), [unlimited], pod_ip="10.244.0.5", host_ip="10.244.0.1", start_time=T0, now=T1)
    condition = next(c for c in status["conditions"] if c["type"] == "knserve.dev/ResourceLimits")
    assert (condition["status"], condition["reason"]) == ("False", "NotEnforced")
    assert condition["message"] == "container app: memory limit not enforced (/sys/fs/cgroup/memory: Read-only file system)"
    # Once they are enforced (a restart on a node that can), the condition goes.
    later = build_pod_status({**pod(), "status": status}, [running("app")], pod_ip="10.244.0.5", host_ip="10.244.0.1",
                             start_time=T0, now=T1)
    assert "knserve.dev/ResourceLimits" not in {c["type"] for c in later["conditions"]}
