"""Fixtures for the sample apps: start one as a real process on a free port.

``start_sample("samples.helloworld", env={...})`` runs ``python -m samples.helloworld`` from
the repository root with ``PORT=0`` and returns a ``RunningSample`` once it logged the port
it listens on; every process is stopped with SIGTERM when its test ends.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on port (\d+)")
START_TIMEOUT_SECONDS = 20.0


@dataclasses.dataclass
class RunningSample:
    process: subprocess.Popen[str]
    port: int
    log_lines: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, *, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def launch(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {
        key: value for key, value in os.environ.items() if key not in ("TARGET", "FUNCTION_TARGET", "FUNCTION_CODE")
    }
    environment.update({"PORT": "0", "PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_listening(process: subprocess.Popen[str]) -> RunningSample:
    """Read the sample's log until it names its port; keep draining it afterwards."""
    assert process.stderr is not None
    stderr = process.stderr
    lines: list[str] = []
    found = threading.Event()
    port: list[int] = []

    def drain() -> None:
        for line in stderr:
            lines.append(line.rstrip("\n"))
            match = LISTENING.search(line)
            if match and not port:
                port.append(int(match.group(1)))
                found.set()
        found.set()

    threading.Thread(target=drain, name="sample log", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not found.wait(0.05):
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the sample did not start listening; its log: {lines}")
    if not port:
        process.wait(timeout=5)
        raise AssertionError(f"the sample exited with {process.returncode} before listening; its log: {lines}")
    return RunningSample(process, port[0], lines)


@pytest.fixture
def start_sample() -> Iterator[Callable[..., RunningSample]]:
    running: list[subprocess.Popen[str]] = []

    def start(module: str, *args: str, env: dict[str, str] | None = None) -> RunningSample:
        process = launch(module, *args, env=env)
        running.append(process)
        return wait_until_listening(process)

    yield start
    for process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
