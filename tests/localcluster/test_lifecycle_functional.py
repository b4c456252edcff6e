"""`knserve local up/down` as a user relies on it: one set of processes, data kept across restarts."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

from localcluster import binaries, processes
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
    # The host keeps blocking the Service range after down: a process that outlived the
    # cluster still cannot send a Service IP off the machine.
    route = subprocess.run(["ip", "route", "get", "10.96.255.254"], capture_output=True, text=True)
    assert " via " not in route.stdout and "No route to host" in route.stderr, (route.stdout, route.stderr)


def _etcd_gateway(url: str, method: str, body: dict[str, str], context: ssl.SSLContext | None = None) -> dict:
    request = urllib.request.Request(f"{url}/v3/kv/{method}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        return dict(json.loads(response.read()))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_state_directory_from_before_etcd_had_tls_upgrades_in_place(tmp_path):
    state = tmp_path / "state"
    cluster = LocalCluster(state, binaries.binaries(), ports=Ports.free())
    ports = cluster.ports
    state.mkdir()
    (state / "cluster.json").write_text(json.dumps({"ports": dataclasses.asdict(ports)}))
    # etcd as earlier knserve ran it: plain HTTP, client and peer, no certificates anywhere.
    plain = f"http://127.0.0.1:{ports.etcd_client}"
    old_etcd = processes.ProcessSpec(name="etcd", argv=(
        str(cluster.binaries.etcd), "--name=knserve", f"--data-dir={state / 'etcd'}",
        f"--listen-client-urls={plain}", f"--advertise-client-urls={plain}",
        f"--listen-peer-urls=http://127.0.0.1:{ports.etcd_peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{ports.etcd_peer}",
        f"--initial-cluster=knserve=http://127.0.0.1:{ports.etcd_peer}", "--unsafe-no-fsync", "--log-level=warn",
    ), run_dir=state / "run", log_dir=state / "logs")
    pid = processes.start(old_etcd)
    try:
        processes.wait_healthy(old_etcd, pid, lambda: _answers(f"{plain}/health"), timeout=30)
        _etcd_gateway(plain, "put", {"key": _b64("/kept"), "value": _b64("from before")})
        assert not (state / "pki" / "etcd").exists()

        # `make up` with the old etcd still running: it is restarted with TLS.
        said: list[str] = []
        cluster.start(progress=said.append, node=False)
        assert "restarting etcd: it runs with other settings than this knserve gives it" in said
        assert processes.running_pid(cluster.etcd_spec()) not in (None, pid)
        found = _etcd_gateway(cluster.etcd_url, "range", {"key": _b64("/kept")}, cluster.etcd_client_context())
        assert base64.b64decode(found["kvs"][0]["value"]) == b"from before"
        members = cluster._etcd_call("/v3/cluster/member/list", {})["members"]
        assert [member["peerURLs"] for member in members] == [[f"https://127.0.0.1:{ports.etcd_peer}"]]
        assert not _answers(f"{plain}/health")
        assert _kubectl(cluster, "get", "--raw", "/readyz/etcd").stdout == "ok"
    finally:
        cluster.stop(progress=print)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _kubectl(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")
    return subprocess.run([kubectl, *args], env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
                          capture_output=True, text=True, timeout=60)
