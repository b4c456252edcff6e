"""Container probes: their settings, the action they run and the result they track.

``ProbeSpec.from_probe`` reads a Kubernetes probe (httpGet, tcpSocket, exec, grpc) with the
API defaults (period 10 s, timeout 1 s, success 1, failure 3) and resolves named ports
against the container's ports. ``ProbeTracker`` is the state machine the kubelet keeps per
probe: readiness and startup start failing, liveness starts passing, and the result flips
only after ``successThreshold`` passes or ``failureThreshold`` failures in a row.
``http_status_passes`` is the kubelet's rule for HTTP answers. Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any


class ProbeKind(enum.Enum):
    READINESS = "readiness"
    LIVENESS = "liveness"
    STARTUP = "startup"


class ActionKind(enum.Enum):
    HTTP_GET = "httpGet"
    TCP_SOCKET = "tcpSocket"
    EXEC = "exec"
    GRPC = "grpc"


@dataclasses.dataclass(frozen=True)
class ProbeAction:
    """What a probe (or a lifecycle hook) does, with ports resolved to numbers."""

    kind: ActionKind
    host: str | None = None  # None: the pod IP
    port: int = 0
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    service: str | None = None  # grpc


class ProbeConfigError(ValueError):
    """A probe or hook cannot be run as written; the message says which part and why."""


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    """A probe port: a number, a numeric string, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for declared in container.get("ports") or []:
        if declared.get("name") == text:
            return int(declared["containerPort"])
    raise ProbeConfigError(f'port "{text}" is not one of the container\'s named ports')


def action_from(handler: Mapping[str, Any], container: Mapping[str, Any]) -> ProbeAction:
    """The action of a probe or lifecycle handler (``httpGet``, ``tcpSocket``, ``exec``, ``grpc``)."""
    if handler.get("httpGet") is not None:
        http = handler["httpGet"]
        headers = tuple((h["name"], h.get("value", "")) for h in http.get("httpHeaders") or [])
        return ProbeAction(
            ActionKind.HTTP_GET,
            host=http.get("host") or None,
            port=resolve_port(http.get("port", 80), container),
            path=http.get("path") or "/",
            scheme=(http.get("scheme") or "HTTP").upper(),
            headers=headers,
        )
    if handler.get("tcpSocket") is not None:
        tcp = handler["tcpSocket"]
        return ProbeAction(ActionKind.TCP_SOCKET, host=tcp.get("host") or None, port=resolve_port(tcp.get("port"), container))
    if handler.get("exec") is not None:
        command = tuple(handler["exec"].get("command") or [])
        if not command:
            raise ProbeConfigError("exec needs a command")
        return ProbeAction(ActionKind.EXEC, command=command)
    if handler.get("grpc") is not None:
        grpc = handler["grpc"]
        return ProbeAction(ActionKind.GRPC, port=int(grpc.get("port", 0)), service=grpc.get("service"))
    raise ProbeConfigError("a probe needs one of httpGet, tcpSocket, exec or grpc")


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    kind: ProbeKind
    action: ProbeAction
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period: float | None = None

    @classmethod
    def from_probe(cls, kind: ProbeKind, probe: Mapping[str, Any], container: Mapping[str, Any]) -> ProbeSpec:
        def positive(field: str, default: float) -> float:
            value = probe.get(field)
            return float(value) if value else default

        success = int(positive("successThreshold", 1))
        if kind is not ProbeKind.READINESS:
            success = 1  # the API server enforces 1 for liveness and startup
        grace = probe.get("terminationGracePeriodSeconds")
        return cls(
            kind=kind,
            action=action_from(probe, container),
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=positive("periodSeconds", 10.0),
            timeout=positive("timeoutSeconds", 1.0),
            success_threshold=success,
            failure_threshold=int(positive("failureThreshold", 3)),
            termination_grace_period=float(grace) if grace is not None else None,
        )


def container_probes(container: Mapping[str, Any]) -> dict[ProbeKind, ProbeSpec]:
    """The probes a container declares, by kind."""
    fields = {
        ProbeKind.STARTUP: "startupProbe",
        ProbeKind.LIVENESS: "livenessProbe",
        ProbeKind.READINESS: "readinessProbe",
    }
    return {
        kind: ProbeSpec.from_probe(kind, container[field], container)
        for kind, field in fields.items()
        if container.get(field)
    }


@dataclasses.dataclass
class ProbeTracker:
    """Consecutive results of one probe and the verdict they add up to."""

    spec: ProbeSpec
    passing: bool = False
    successes: int = 0
    failures: int = 0
    last_message: str = ""

    @classmethod
    def start(cls, spec: ProbeSpec) -> ProbeTracker:
        return cls(spec=spec, passing=spec.kind is ProbeKind.LIVENESS)

    def record(self, success: bool, message: str = "") -> bool:
        """Add one result; True when the verdict changed."""
        self.last_message = message
        if success:
            self.successes += 1
            self.failures = 0
            if not self.passing and self.successes >= self.spec.success_threshold:
                self.passing = True
                return True
        else:
            self.failures += 1
            self.successes = 0
            if self.passing and self.failures >= self.spec.failure_threshold:
                self.passing = False
                return True
            if self.spec.kind is ProbeKind.STARTUP and self.failures >= self.spec.failure_threshold:
                return True  # startup gave up: the container is restarted
        return False

    @property
    def gave_up(self) -> bool:
        """A startup probe that failed ``failureThreshold`` times, or a failing liveness probe."""
        if self.spec.kind is ProbeKind.LIVENESS:
            return not self.passing
        if self.spec.kind is ProbeKind.STARTUP:
            return not self.passing and self.failures >= self.spec.failure_threshold
        return False


def http_status_passes(status: int) -> bool:
    """The kubelet counts 200-399 as success."""
    return 200 <= status < 400
