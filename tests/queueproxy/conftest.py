"""Fixtures for the queue-proxy tests: a real app process and real queue-proxy processes.

``app`` starts tests/queueproxy/app.py once per module; ``queue_proxy(**env)`` starts a
``python -m queueproxy`` pointed at it on free loopback ports and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]


def wait_for_port(port: int, *, timeout: float = 10.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def http_get(port: int, path: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """A minimal blocking GET (Connection: close) returning (status, body)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@dataclasses.dataclass
class AppProcess:
    port: int
    process: subprocess.Popen[bytes]


@dataclasses.dataclass
class QueueProxyProcess:
    process: subprocess.Popen[bytes]
    serving_port: int
    admin_port: int
    stats_port: int
    metrics_port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_peak_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM in /proc status")

    def in_flight(self) -> float:
        _, body = http_get(self.metrics_port, "/metrics")
        for line in body.decode().splitlines():
            if line.startswith("revision_in_flight_requests"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError("no revision_in_flight_requests in /metrics")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)


def start_app(tmp_path: Path, extra_env: dict[str, str] | None = None) -> AppProcess:
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.queueproxy.app", str(port)], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=(tmp_path / f"app-{port}.log").open("wb"),
    )
    wait_for_port(port, process=process)
    return AppProcess(port=port, process=process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    started = start_app(tmp_path_factory.mktemp("app"))
    yield started
    stop(started.process)


@pytest.fixture
def queue_proxy(app: AppProcess, tmp_path: Path) -> Iterator[Callable[..., QueueProxyProcess]]:
    started: list[QueueProxyProcess] = []

    def start(*, user_port: int | None = None, wait_ready: bool = True, **env: str) -> QueueProxyProcess:
        ports = {name: free_port() for name in ("serving", "admin", "stats", "metrics")}
        log_path = tmp_path / f"queue-proxy-{ports['serving']}.log"
        full_env = {
            **os.environ,
            "USER_PORT": str(user_port if user_port is not None else app.port),
            "QUEUE_SERVING_PORT": str(ports["serving"]),
            "QUEUE_ADMIN_PORT": str(ports["admin"]),
            "AUTOSCALING_STATS_PORT": str(ports["stats"]),
            "USER_METRICS_PORT": str(ports["metrics"]),
            "SERVING_POD_IP": "127.0.0.1",
            "SERVING_POD": "pod-under-test",
            "DRAIN_QUIET_PERIOD_SECONDS": "1",
            "QUEUE_LOG_LEVEL": "DEBUG",
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "queueproxy"], cwd=REPO, env=full_env,
            stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        )
        proxy = QueueProxyProcess(process, ports["serving"], ports["admin"], ports["stats"], ports["metrics"],
                                  log_path)
        started.append(proxy)
        wait_for_port(ports["metrics"], process=process)
        if wait_ready:
            deadline = time.monotonic() + 10
            while http_get(ports["serving"], "/", headers={"K-Network-Probe": "queue"})[0] != 200:
                if time.monotonic() > deadline:
                    raise TimeoutError("queue-proxy never reported the app ready:\n" + proxy.log())
                time.sleep(0.02)
        return proxy

    yield start
    for proxy in started:
        stop(proxy.process)
