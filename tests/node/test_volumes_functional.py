"""Volumes on the local node: containers of a pod share an emptyDir, read a ConfigMap and
their service account's token at the usual paths; the host's own view stays untouched, and
mount points belong to their pod: a path one pod mounts as a directory another mounts as a
file, and neither appears on the host."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from tests.node.test_node_functional import apply, get_json, wait_for

WRITER = "import pathlib, time; pathlib.Path('/knserve-test/shared/greeting').write_text('hi'); time.sleep(3600)"
READER = """
import pathlib, time
while not pathlib.Path('/knserve-test/shared/greeting').exists():
    time.sleep(0.1)
print('shared', pathlib.Path('/knserve-test/shared/greeting').read_text(), flush=True)
print('config', pathlib.Path('/knserve-test/config/colour').read_text(), flush=True)
token = pathlib.Path('/var/run/secrets/kubernetes.io/serviceaccount/token').read_text()
print('token', len(token.split('.')), flush=True)
print('namespace', pathlib.Path('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read_text(), flush=True)
try:
    pathlib.Path('/knserve-test/config/colour').write_text('red')
    print('config writable', flush=True)
except OSError as error:
    print('config read-only', error.errno, flush=True)
time.sleep(3600)
"""


def test_containers_share_volumes_and_see_config_and_their_token(cluster, namespace):
    root = f"/knserve-test-{uuid.uuid4().hex[:8]}"
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
              "data": {"colour": "blue"}}

    def container(name: str, script: str) -> dict:
        return {"name": name, "image": "example.test/python", "command": ["python3", "-c", script.replace(
            "/knserve-test", root)], "volumeMounts": [
            {"name": "shared", "mountPath": f"{root}/shared"},
            {"name": "settings", "mountPath": f"{root}/config", "readOnly": True}]}

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "volumes", "namespace": namespace},
           "spec": {"containers": [container("writer", WRITER), container("reader", READER)],
                    "volumes": [{"name": "shared", "emptyDir": {}},
                                {"name": "settings", "configMap": {"name": "settings"}}]}}
    apply(cluster, config, pod)

    def reader_done() -> list[str] | None:
        logs = cluster.kubectl("logs", "volumes", "-c", "reader", "-n", namespace, check=False).stdout
        lines = logs.splitlines()
        return lines if len(lines) >= 5 else None

    lines = wait_for("the reader's report", reader_done, timeout=60)
    assert lines[:4] == ["shared hi", "config blue", "token 3", f"namespace {namespace}"]
    assert lines[4].startswith("config read-only"), lines
    pod_status = get_json(cluster, "pod", "volumes", "-n", namespace)["status"]
    assert all(s["state"].get("running") for s in pod_status["containerStatuses"]), pod_status
    # The mounts and their mount points were the pod's own: nothing of them on the host.
    try:
        assert not Path(root).exists()
    finally:
        cluster.kubectl("delete", "pod", "volumes", "-n", namespace, "--wait=false", check=False)
        for directory in (Path(root, "shared"), Path(root, "config"), Path(root)):
            with contextlib.suppress(OSError):
                directory.rmdir()


def _mounting_pod(namespace: str, name: str, script: str, mounts: list[dict], volumes: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": "example.test/shell", "command": ["/bin/sh", "-c", script],
                                     "volumeMounts": mounts}],
                     "volumes": volumes}}


def test_a_path_mounted_as_a_directory_in_one_pod_is_a_file_in_another(cluster, namespace):
    tag = uuid.uuid4().hex[:8]
    path = f"/knserve-test-{tag}/data"
    nested = f"/etc/knserve-test-{tag}/app.conf"  # below a directory the host has: /etc
    other = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", other)
    wait_for("the namespace's default service account",
             lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", other, check=False).returncode == 0)
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "files", "namespace": other},
              "data": {"data": "a file\n", "app.conf": "setting=1\n"}}
    as_directory = _mounting_pod(
        namespace, "as-directory",
        f"echo hi > {path}/note && cat {path}/note && test -d {path} && echo directory && sleep 3600",
        [{"name": "scratch", "mountPath": path}], [{"name": "scratch", "emptyDir": {}}])
    as_file = _mounting_pod(
        other, "as-file",
        f"cat {path} && cat {nested} && test -f /etc/passwd && echo etc-intact && sleep 3600",
        [{"name": "files", "mountPath": path, "subPath": "data"},
         {"name": "files", "mountPath": nested, "subPath": "app.conf", "readOnly": True}],
        [{"name": "files", "configMap": {"name": "files"}}])
    try:
        apply(cluster, as_directory)
        wait_for("the directory pod's output", lambda: cluster.kubectl(
            "logs", "as-directory", "-n", namespace, check=False).stdout.split() == ["hi", "directory"])
        apply(cluster, config, as_file)
        wait_for("the file pod's output", lambda: cluster.kubectl(
            "logs", "as-file", "-n", other, check=False).stdout.split() == ["a", "file", "setting=1", "etc-intact"])
        for pod_namespace, name in ((namespace, "as-directory"), (other, "as-file")):
            state = get_json(cluster, "pod", name, "-n", pod_namespace)["status"]["containerStatuses"][0]["state"]
            assert "running" in state, (name, state)
        assert not Path(path).parent.exists()
        assert not Path(nested).parent.exists()
    finally:
        cluster.kubectl("delete", "pod", "as-directory", "-n", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)
