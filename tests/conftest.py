"""Shared fixtures: one real local Kubernetes per test run, and a namespace per test.

The control plane (etcd, kube-apiserver, kube-controller-manager) and the node agent start
once per session from the cached binaries, in a temporary state directory on free ports,
and are stopped when the session ends, leaving no process behind.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import binaries
from localcluster.controlplane import LocalCluster, Ports
from localcluster.stack import kubectl_binary

BIN_DIR = Path(sys.executable).parent


def kubectl_path() -> str:
    return kubectl_binary()


@dataclasses.dataclass
class Cluster:
    local: LocalCluster

    @property
    def kubeconfig(self) -> Path:
        return self.local.kubeconfig

    @property
    def server(self) -> str:
        return self.local.server

    @property
    def state_dir(self) -> Path:
        return self.local.state_dir

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PATH": f"{BIN_DIR}:{os.environ.get('PATH', '')}"}

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [kubectl_path(), *args], env=self.env, input=input, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    found = binaries.binaries()
    if not found.all_present():
        found = binaries.ensure_binaries(progress=lambda message: print(f"==> {message}", file=sys.stderr))
    state = tmp_path_factory.mktemp("cluster")
    local = LocalCluster(state, found, ports=Ports.free())
    try:
        local.start(progress=lambda message: None, node=True)
        yield Cluster(local)
    finally:
        local.stop(progress=lambda message: None)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    # Pods are refused until the service-account controller has made the namespace's "default".
    deadline = time.monotonic() + 30
    while cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"namespace {name} never got its default service account"
        time.sleep(0.1)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
