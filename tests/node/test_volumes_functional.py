"""Volumes on the local node: containers of a pod share an emptyDir, read a ConfigMap and
their service account's token at the usual paths; the host's own view stays untouched."""

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
    # The mounts were the containers' own: on the host the mount points stay empty.
    try:
        assert list(Path(root, "shared").iterdir()) == []
        assert list(Path(root, "config").iterdir()) == []
    finally:
        cluster.kubectl("delete", "pod", "volumes", "-n", namespace, "--wait=false", check=False)
        for directory in (Path(root, "shared"), Path(root, "config"), Path(root)):
            with contextlib.suppress(OSError):
                directory.rmdir()
