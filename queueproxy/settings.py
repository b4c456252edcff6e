"""The queue-proxy's settings: the environment the controller sets, parsed into frozen records.

Names follow Knative's queue-proxy (constants from ``knserve.networking``); a few
``QUEUE_*`` extras let tests and the local node agent run many queue-proxies side by
side. Parsing is pure: ``Settings.from_env(mapping)`` reads only the mapping it is given
and raises ``SettingsError`` with one sentence per bad variable. The records are NamedTuples:
as immutable as frozen dataclasses, at a tenth of the cost to define (start-up pays it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from knserve import networking

# Port overrides beyond Knative's names, so many queue-proxies can share a machine.
ENV_QUEUE_ADMIN_PORT: Final = "QUEUE_ADMIN_PORT"
ENV_AUTOSCALING_STATS_PORT: Final = "AUTOSCALING_STATS_PORT"
ENV_USER_METRICS_PORT: Final = "USER_METRICS_PORT"
# Where the app listens inside the pod (Knative always uses 127.0.0.1).
ENV_USER_HOST: Final = "USER_HOST"
# Connection hygiene for clients of port 8012.
ENV_HEADER_READ_TIMEOUT_SECONDS: Final = "QUEUE_HEADER_READ_TIMEOUT_SECONDS"
ENV_KEEPALIVE_TIMEOUT_SECONDS: Final = "QUEUE_KEEPALIVE_TIMEOUT_SECONDS"
ENV_MAX_HEADER_BYTES: Final = "QUEUE_MAX_HEADER_BYTES"

DEFAULT_REVISION_TIMEOUT_SECONDS: Final = 300.0
DEFAULT_DRAIN_QUIET_PERIOD_SECONDS: Final = 30.0
MAX_CONTAINER_CONCURRENCY: Final = 1000
QUEUE_DEPTH_PER_SLOT: Final = 10  # Knative: 10 waiting per concurrency slot
AGGRESSIVE_PROBE_INTERVAL_SECONDS: Final = 0.025


class SettingsError(ValueError):
    """The environment is not usable; the message names each bad variable and what it wants."""


class ProbeSpec(NamedTuple):
    """The readiness probe the queue-proxy runs against the app (a Kubernetes Probe, trimmed).

    ``kind`` is "http", "tcp" or "exec". ``period_seconds == 0`` means aggressive probing:
    every 25 ms until the app first answers, like Knative.
    """

    kind: str
    port: int
    host: str = "127.0.0.1"
    path: str = "/"
    scheme: str = "http"
    http_headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    period_seconds: float = 0.0
    timeout_seconds: float = 1.0
    initial_delay_seconds: float = 0.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @property
    def aggressive(self) -> bool:
        return self.period_seconds <= 0


class Settings(NamedTuple):
    user_port: int = networking.DEFAULT_USER_PORT
    user_host: str = "127.0.0.1"
    user_port_name: str = networking.QUEUE_HTTP_PORT_NAME
    container_concurrency: int = 0
    revision_timeout_seconds: float = DEFAULT_REVISION_TIMEOUT_SECONDS
    response_start_timeout_seconds: float = 0.0
    idle_timeout_seconds: float = 0.0
    readiness_probe: ProbeSpec | None = None
    namespace: str = ""
    service: str = ""
    configuration: str = ""
    revision: str = ""
    pod: str = ""
    pod_ip: str = ""
    serving_port: int = networking.QUEUE_HTTP_PORT
    admin_port: int = networking.QUEUE_ADMIN_PORT
    stats_port: int = networking.AUTOSCALING_STATS_PORT
    metrics_port: int = networking.USER_METRICS_PORT
    drain_quiet_period_seconds: float = DEFAULT_DRAIN_QUIET_PERIOD_SECONDS
    header_read_timeout_seconds: float = 60.0
    keepalive_timeout_seconds: float = 900.0
    max_header_bytes: int = 64 * 1024

    @property
    def bind_host(self) -> str:
        """The pod IP when the controller set one, else every interface."""
        return self.pod_ip or "0.0.0.0"

    @property
    def h2c(self) -> bool:
        return self.user_port_name == networking.QUEUE_H2C_PORT_NAME

    @property
    def queue_depth(self) -> int:
        return QUEUE_DEPTH_PER_SLOT * self.container_concurrency

    @property
    def effective_probe(self) -> ProbeSpec:
        """The configured probe, or Knative's default: a TCP connect to the user port, aggressively."""
        if self.readiness_probe is not None:
            return self.readiness_probe
        return ProbeSpec(kind="tcp", port=self.user_port, host=self.user_host)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        reader = _EnvReader(env)
        user_port = reader.port(networking.ENV_USER_PORT, networking.DEFAULT_USER_PORT)
        user_host = reader.text(ENV_USER_HOST, "127.0.0.1")
        settings = cls(
            user_port=user_port,
            user_host=user_host,
            user_port_name=reader.text(networking.ENV_USER_PORT_NAME, networking.QUEUE_HTTP_PORT_NAME),
            container_concurrency=reader.integer(
                networking.ENV_CONTAINER_CONCURRENCY, 0, minimum=0, maximum=MAX_CONTAINER_CONCURRENCY
            ),
            revision_timeout_seconds=reader.seconds(
                networking.ENV_REVISION_TIMEOUT_SECONDS, DEFAULT_REVISION_TIMEOUT_SECONDS
            ),
            response_start_timeout_seconds=reader.seconds(networking.ENV_REVISION_RESPONSE_START_TIMEOUT_SECONDS, 0.0),
            idle_timeout_seconds=reader.seconds(networking.ENV_REVISION_IDLE_TIMEOUT_SECONDS, 0.0),
            readiness_probe=reader.probe(
                networking.ENV_SERVING_READINESS_PROBE, user_port=user_port, user_host=user_host
            ),
            namespace=reader.text(networking.ENV_SERVING_NAMESPACE, ""),
            service=reader.text(networking.ENV_SERVING_SERVICE, ""),
            configuration=reader.text(networking.ENV_SERVING_CONFIGURATION, ""),
            revision=reader.text(networking.ENV_SERVING_REVISION, ""),
            pod=reader.text(networking.ENV_SERVING_POD, ""),
            pod_ip=reader.text(networking.ENV_SERVING_POD_IP, ""),
            serving_port=reader.port(networking.ENV_QUEUE_SERVING_PORT, networking.QUEUE_HTTP_PORT),
            admin_port=reader.port(ENV_QUEUE_ADMIN_PORT, networking.QUEUE_ADMIN_PORT),
            stats_port=reader.port(ENV_AUTOSCALING_STATS_PORT, networking.AUTOSCALING_STATS_PORT),
            metrics_port=reader.port(ENV_USER_METRICS_PORT, networking.USER_METRICS_PORT),
            drain_quiet_period_seconds=reader.seconds(
                networking.ENV_DRAIN_QUIET_PERIOD_SECONDS, DEFAULT_DRAIN_QUIET_PERIOD_SECONDS
            ),
            header_read_timeout_seconds=reader.seconds(ENV_HEADER_READ_TIMEOUT_SECONDS, 60.0),
            keepalive_timeout_seconds=reader.seconds(ENV_KEEPALIVE_TIMEOUT_SECONDS, 900.0),
            max_header_bytes=reader.integer(ENV_MAX_HEADER_BYTES, 64 * 1024, minimum=1024, maximum=1 << 24),
        )
        reader.raise_errors()
        return settings


class _EnvReader:
    """Reads typed values, collecting every error so one run reports them all."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._errors: list[str] = []

    def raise_errors(self) -> None:
        if self._errors:
            raise SettingsError("invalid queue-proxy environment: " + "; ".join(self._errors))

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name, "").strip()
        return value or default

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self._errors.append(f"{name}={raw!r} is not a whole number")
            return default
        if not minimum <= value <= maximum:
            self._errors.append(f"{name}={value} is outside {minimum}..{maximum}")
            return default
        return value

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, minimum=0, maximum=65535)

    def seconds(self, name: str, default: float) -> float:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self._errors.append(f"{name}={raw!r} is not a number of seconds")
            return default
        if value < 0 or value != value:
            self._errors.append(f"{name}={raw!r} must be zero or more seconds")
            return default
        return value

    def probe(self, name: str, *, user_port: int, user_host: str) -> ProbeSpec | None:
        raw = self._env.get(name, "").strip()
        if not raw:
            return None
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as error:
            self._errors.append(f"{name} is not JSON ({error.msg} at offset {error.pos})")
            return None
        try:
            return parse_probe(document, user_port=user_port, user_host=user_host)
        except SettingsError as error:
            self._errors.append(f"{name}: {error}")
            return None


def parse_probe(document: Any, *, user_port: int, user_host: str = "127.0.0.1") -> ProbeSpec:
    """A Kubernetes Probe object (as the controller serialises it) to a ``ProbeSpec``.

    A named or missing port means the user port: the controller rewrites probe ports to
    the container's port, and inside the pod the app is always reached on loopback.
    """
    if not isinstance(document, dict):
        raise SettingsError("a probe must be a JSON object with httpGet, tcpSocket or exec")
    timing = {
        "period_seconds": _number(document, "periodSeconds", 0.0),
        "timeout_seconds": _number(document, "timeoutSeconds", 1.0) or 1.0,
        "initial_delay_seconds": _number(document, "initialDelaySeconds", 0.0),
        "success_threshold": int(_number(document, "successThreshold", 1) or 1),
        "failure_threshold": int(_number(document, "failureThreshold", 3) or 3),
    }
    if isinstance(document.get("httpGet"), dict):
        action = document["httpGet"]
        headers = tuple(
            (str(item.get("name", "")), str(item.get("value", "")))
            for item in action.get("httpHeaders") or ()
            if isinstance(item, dict) and item.get("name")
        )
        scheme = str(action.get("scheme") or "HTTP").lower()
        if scheme not in ("http", "https"):
            raise SettingsError(f"httpGet.scheme {scheme!r} must be HTTP or HTTPS")
        path = str(action.get("path") or "/")
        return ProbeSpec(
            kind="http",
            port=_probe_port(action.get("port"), user_port),
            host=user_host,
            path=path if path.startswith("/") else "/" + path,
            scheme=scheme,
            http_headers=headers,
            **timing,  # type: ignore[arg-type]
        )
    if isinstance(document.get("tcpSocket"), dict):
        action = document["tcpSocket"]
        return ProbeSpec(kind="tcp", port=_probe_port(action.get("port"), user_port), host=user_host, **timing)  # type: ignore[arg-type]
    if isinstance(document.get("exec"), dict):
        command = document["exec"].get("command") or []
        if not isinstance(command, list) or not command:
            raise SettingsError("exec.command must be a non-empty list of strings")
        return ProbeSpec(kind="exec", port=user_port, command=tuple(str(part) for part in command), **timing)  # type: ignore[arg-type]
    raise SettingsError("a probe needs one of httpGet, tcpSocket or exec")


def _number(document: dict[str, Any], key: str, default: float) -> float:
    value = document.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SettingsError(f"{key} must be a number of zero or more, not {value!r}")
    return float(value)


def _probe_port(value: Any, user_port: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    if isinstance(value, str) and value.isdigit() and 0 < int(value) < 65536:
        return int(value)
    return user_port
