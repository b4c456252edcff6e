"""`knserve local up/down` as a user relies on it: one set of processes, data kept across restarts."""

from __future__ import annotations

import os
import subprocess
import sys

from localcluster import binaries
from localcluster.controlplane import LocalCluster, Ports
from localcluster.processes import running_pid


def _knserve_local(state_dir, *args):
    return subprocess.run(
        [sys.executable, "-m", "knserve.cli", "local", "--state-dir", str(state_dir), *args],
        capture_output=True, text=True, timeout=180,
    )


def _pids(cluster: LocalCluster) -> dict[str, int | None]:
    return {row.name: row.pid for row in cluster.status()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_up_twice_keeps_one_set_and_down_up_keeps_objects(tmp_path):
    state = tmp_path / "state"
    # Free ports chosen up front; `up` keeps what the state directory records.
    LocalCluster(state, binaries.binaries(), ports=Ports.free())._prepare()
    cluster = LocalCluster(state, binaries.binaries())
    try:
        first = _knserve_local(state, "up")
        assert first.returncode == 0, first.stderr
        assert "export KUBECONFIG=" in first.stdout
        pids = _pids(cluster)
        assert all(pids.values()), pids

        second = _knserve_local(state, "up")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert _pids(cluster) == pids

        kubeconfig = _knserve_local(state, "kubeconfig").stdout.strip()
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")
        subprocess.run([kubectl, "create", "configmap", "keep-me", "--from-literal=a=b"], env=env, check=True,
                       capture_output=True)

        down = _knserve_local(state, "down")
        assert down.returncode == 0, down.stderr
        assert not any(_alive(pid) for pid in pids.values() if pid)
        assert _knserve_local(state, "status").returncode == 1

        again = _knserve_local(state, "up")
        assert again.returncode == 0, again.stderr
        kept = subprocess.run([kubectl, "get", "configmap", "keep-me", "-o", "jsonpath={.data.a}"], env=env,
                              capture_output=True, text=True)
        assert kept.stdout == "b", kept.stderr
    finally:
        _knserve_local(state, "down")
    assert all(running_pid(spec) is None for spec, _, _ in cluster._components(node=True))
