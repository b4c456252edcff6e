"""Helpers for the controller's integration tests: the controller as a subprocess and kubectl
reads (polling is ``tests.support.eventually``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


class ControllerProcess:
    """The reconcilers alone (``knserve controller --reconcilers-only``: no xDS server, no
    webhook) in a subprocess, restartable (to test restart safety)."""

    def __init__(self, cluster: Any, log_path: Path) -> None:
        self.cluster = cluster
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "knserve.cli", "controller", "--reconcilers-only",
             "--kubeconfig", str(self.cluster.kubeconfig), "--log-level", "info"],
            cwd=REPO, env=self.cluster.env, stdout=log, stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "controller log:\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def get_json(cluster: Any, *args: str) -> Any:
    result = cluster.kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)


def condition(obj: Any, condition_type: str) -> dict[str, Any] | None:
    for found in ((obj or {}).get("status") or {}).get("conditions") or []:
        if found.get("type") == condition_type:
            return dict(found)
    return None


def is_ready(obj: Any) -> bool:
    ready = condition(obj, "Ready")
    return bool(ready and ready.get("status") == "True"
                and obj["status"].get("observedGeneration") == obj["metadata"].get("generation"))
