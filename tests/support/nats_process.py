"""Run the real ``nats-server`` (JetStream, file storage) on a free loopback port, for tests.

:class:`NatsServer` starts the cached binary (``localcluster.binaries``) with its store in a
directory the test owns, waits until its monitoring endpoint answers ``/healthz?js-enabled-only=true``,
and can be stopped and started again on the same port and store (a restart keeps what was
stored). Side effects: starts and stops a process, writes under ``store_dir``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from localcluster import binaries
from tests.support.ports import free_port


class NatsServer:
    def __init__(self, store_dir: Path, *, port: int | None = None, name: str = "nats-0",
                 cluster_port: int | None = None, routes: tuple[int, ...] = ()) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.name = name
        self.cluster_port = cluster_port
        """With it, a member of a cluster: ``routes`` are the other members' cluster ports."""
        self.routes = routes
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        binary = binaries.ensure_nats_server()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = (self.store_dir / "nats.log").open("ab")
        config = self.store_dir / "nats.conf"
        config.write_text("max_payload: 8MB\n")
        cluster: list[str] = []
        if self.cluster_port is not None:
            cluster = ["--cluster_name", "knserve", "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
                       "--routes", ",".join(f"nats://127.0.0.1:{port}" for port in self.routes)]
        self.process = subprocess.Popen(
            [str(binary), "--config", str(config), "--jetstream", "--store_dir", str(self.store_dir / "js"),
             "--server_name", self.name, "--addr", "127.0.0.1", "--port", str(self.port),
             "--http_port", str(self.monitor_port), *cluster],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_healthy(timeout)

    def start_background(self) -> None:
        """Start without waiting (cluster members wait for each other)."""
        self.start(timeout=0)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        if timeout <= 0:
            return
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true",
                                            timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start; see {self.store_dir / 'nats.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: what a crash looks like."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
