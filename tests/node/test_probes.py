"""Probe settings with API defaults, named ports, and the pass/fail state machine."""

from __future__ import annotations

import pytest

from node.probes import (
    ActionKind,
    ProbeAction,
    ProbeConfigError,
    ProbeKind,
    ProbeSpec,
    ProbeTracker,
    container_probes,
    http_status_passes,
)

CONTAINER = {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}


def spec(kind: ProbeKind, **probe: object) -> ProbeSpec:
    return ProbeSpec.from_probe(kind, {"tcpSocket": {"port": 8080}, **probe}, CONTAINER)


def test_defaults_follow_the_api() -> None:
    probe = spec(ProbeKind.READINESS)
    assert (probe.initial_delay, probe.period, probe.timeout) == (0.0, 10.0, 1.0)
    assert (probe.success_threshold, probe.failure_threshold) == (1, 3)


def test_http_action_resolves_named_port_and_headers() -> None:
    probes = container_probes({
        **CONTAINER,
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http", "httpHeaders": [{"name": "K-Network-Probe", "value": "queue"}]},
            "periodSeconds": 2,
        },
    })
    assert probes[ProbeKind.READINESS].action == ProbeAction(
        ActionKind.HTTP_GET, port=8080, path="/ready", headers=(("K-Network-Probe", "queue"),)
    )
    assert probes[ProbeKind.READINESS].period == 2.0


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        pytest.param({"httpGet": {"port": "admin"}}, 'port "admin" is not one of the container\'s named ports', id="unknown port"),
        pytest.param({"exec": {"command": []}}, "exec needs a command", id="empty exec"),
        pytest.param({}, "a probe needs one of httpGet, tcpSocket, exec or grpc", id="no action"),
    ],
)
def test_bad_probes_are_sentences(probe: dict, message: str) -> None:
    with pytest.raises(ProbeConfigError) as raised:
        ProbeSpec.from_probe(ProbeKind.LIVENESS, probe, CONTAINER)
    assert str(raised.value) == message


def run(tracker: ProbeTracker, results: str) -> list[bool]:
    """Feed results ('+' pass, '-' fail); the verdict after each."""
    verdicts = []
    for result in results:
        tracker.record(result == "+")
        verdicts.append(tracker.passing)
    return verdicts


@pytest.mark.parametrize(
    ("kind", "settings", "results", "want"),
    [
        pytest.param(ProbeKind.READINESS, {}, "+-", [True, True], id="readiness: one failure is not enough"),
        pytest.param(ProbeKind.READINESS, {}, "+---", [True, True, True, False], id="readiness: three failures"),
        pytest.param(
            ProbeKind.READINESS, {"successThreshold": 2}, "+-++", [False, False, False, True],
            id="readiness: successes must be consecutive",
        ),
        pytest.param(ProbeKind.LIVENESS, {"failureThreshold": 2}, "-+--", [True, True, True, False], id="liveness"),
        pytest.param(ProbeKind.STARTUP, {}, "--+", [False, False, True], id="startup passes once"),
    ],
)
def test_tracker(kind: ProbeKind, settings: dict, results: str, want: list[bool]) -> None:
    assert run(ProbeTracker.start(spec(kind, **settings)), results) == want


def test_initial_verdicts() -> None:
    assert ProbeTracker.start(spec(ProbeKind.READINESS)).passing is False
    assert ProbeTracker.start(spec(ProbeKind.STARTUP)).passing is False
    assert ProbeTracker.start(spec(ProbeKind.LIVENESS)).passing is True


def test_startup_gives_up_after_failure_threshold() -> None:
    tracker = ProbeTracker.start(spec(ProbeKind.STARTUP, failureThreshold=2))
    assert tracker.record(False) is False
    assert tracker.record(False) is True
    assert tracker.gave_up


def test_liveness_gives_up_when_failing() -> None:
    tracker = ProbeTracker.start(spec(ProbeKind.LIVENESS, failureThreshold=1))
    assert not tracker.gave_up
    tracker.record(False, "HTTP probe failed with statuscode: 500")
    assert tracker.gave_up
    assert tracker.last_message == "HTTP probe failed with statuscode: 500"


@pytest.mark.parametrize(("status", "want"), [(199, False), (200, True), (302, True), (399, True), (400, False), (503, False)])
def test_http_status(status: int, want: bool) -> None:
    assert http_status_passes(status) is want
