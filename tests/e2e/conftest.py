"""The whole stack as users get it: the local cluster plus knserve's controller, activator,
autoscaler and Envoy, started once per test run; tests drive it with kubectl and HTTP."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.stack import LocalStack
from tests.conftest import Cluster


@dataclasses.dataclass
class Stack:
    cluster: Cluster
    local: LocalStack

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.local.ports.ingress}"

    @functools.cached_property
    def ingress_internal(self) -> str:
        return f"http://{self.local.node_ip()}:{self.local.ports.ingress_internal}"

    def kubectl(self, *args: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.cluster.kubectl(*args, **kwargs)

    def apply(self, manifest: dict | str, namespace: str) -> None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        self.kubectl("apply", "-n", namespace, "-f", "-", input=text)

    def get(self, kind: str, name: str, namespace: str) -> dict:
        return json.loads(self.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)

    def wait_ready(self, kind: str, name: str, namespace: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            current = self.get(kind, name, namespace)
            status = current.get("status", {})
            ready = [c for c in status.get("conditions", []) if c.get("type") == "Ready"]
            if (ready and ready[0].get("status") == "True"
                    and status.get("observedGeneration") == current["metadata"]["generation"]):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{kind}/{name} not Ready after {timeout}s: {json.dumps(status, indent=1)}")
            time.sleep(0.2)

    def request(self, host: str, path: str = "/", *, internal: bool = False, timeout: float = 30,
                headers: dict[str, str] | None = None) -> tuple[int, str]:
        base = self.ingress_internal if internal else self.ingress
        request = urllib.request.Request(base + path, headers={"Host": host, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_answer(self, host: str, want_status: int = 200, timeout: float = 60, **kwargs) -> str:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        last: tuple[int, str] | None = None
        while time.monotonic() < deadline:
            try:
                last = self.request(host, **kwargs)
            except OSError as error:
                last = (0, str(error))
            if last[0] == want_status:
                return last[1]
            time.sleep(0.2)
        raise AssertionError(f"{host} never answered {want_status}; last answer {last}")


@pytest.fixture(scope="session")
def stack(cluster: Cluster) -> Iterator[Stack]:
    local = LocalStack(cluster.local)
    try:
        local.start(progress=lambda message: None)
        yield Stack(cluster, local)
    finally:
        local.stop(progress=lambda message: None)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
