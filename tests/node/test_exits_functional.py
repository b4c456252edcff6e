"""The node notices every exit: a container whose process is gone never shows as running and
never holds its pod in Terminating, even when the exit is never reported to the agent (here:
the queue-proxy forked by a zygote that is stuck, so its exit status never arrives)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from tests.node.test_node_functional import apply, container_status, get_json, wait_for
from tests.node.test_restart_functional import alive, container_pid, start_agent

KNSERVE = str(Path(sys.executable).parent / "knserve")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def live_children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def queue_proxy_pod(namespace: str, node: str, name: str = "exits") -> dict:
    env = {"USER_PORT": "8080", "SERVING_POD": name, "SERVING_NAMESPACE": namespace,
           "DRAIN_QUIET_PERIOD_SECONDS": "0"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "queue-proxy", "image": "example.test/queue-proxy",
                                     "command": [KNSERVE, "queue-proxy"],
                                     "env": [{"name": k, "value": v} for k, v in env.items()]}]}}


def test_pod_whose_process_exited_unreported_is_deleted_anyway(cluster, namespace, tmp_path):
    node = f"exits-{namespace}"
    log = tmp_path / "agent.log"
    agent = start_agent(cluster, node, tmp_path / "state", log)
    zygote = None
    try:
        wait_for("the agent's zygote", lambda: log.exists() and "zygote ready" in log.read_text())
        apply(cluster, queue_proxy_pod(namespace, node))
        running = wait_for("the queue-proxy running", lambda: "running" in (container_status(
            p := get_json(cluster, "pod", "exits", "-n", namespace)).get("state") or {}) and p)
        pid = container_pid(running)
        zygote = parent_of(pid)
        assert zygote != agent.pid and parent_of(zygote) == agent.pid  # forked by the agent's zygote

        uid = running["metadata"]["uid"]
        # Opened now: the log stays readable once the pod's directory is removed.
        with open(tmp_path / "state" / "pods" / uid / "containers" / "queue-proxy" / "0.log") as container_log:
            os.kill(zygote, signal.SIGSTOP)  # stuck: it can neither reap its child nor report the exit
            cluster.kubectl("delete", "pod", "exits", "-n", namespace, "--wait=false")
            wait_for("the queue-proxy to drain and exit", lambda: not alive(pid), timeout=30)
            wait_for("the pod to be gone", lambda: cluster.kubectl(
                "get", "pod", "exits", "-n", namespace, check=False).returncode != 0, timeout=30)
            assert "drained; exiting" in container_log.read()
        assert "exit was not reported" in log.read_text()

        # A pod started while the zygote is stuck still starts (exec'd, after a short wait).
        apply(cluster, queue_proxy_pod(namespace, node, "meanwhile"))
        meanwhile = wait_for("the second queue-proxy running", lambda: "running" in (container_status(
            p := get_json(cluster, "pod", "meanwhile", "-n", namespace)).get("state") or {}) and p, timeout=60)
        assert parent_of(container_pid(meanwhile)) != zygote
        os.kill(zygote, signal.SIGCONT)
        # What the zygote forks for the request the agent gave up on (unless it reloads its
        # code instead) does not live.
        wait_for("no live child of the zygote", lambda: live_children(zygote) == [], timeout=30)
    finally:
        if zygote is not None:
            os.kill(zygote, signal.SIGCONT)
        agent.terminate()
        agent.wait(timeout=30)
        cluster.kubectl("delete", "node", node, "--wait=false", check=False)
