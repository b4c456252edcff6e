"""Resource limits on the process node: a container over its memory limit is killed and shows
``OOMKilled`` as a kubelet reports it; a CPU limit is the quota of the container's cgroup."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.node.test_node_functional import apply, container_status, get_json, wait_for

# Each chunk is written, so it is resident: 32 of 16 MiB is far over a 64 MiB limit.
GREEDY = "import time; chunks = [b'x' * (16 << 20) for _ in range(32)]; print('survived', flush=True); time.sleep(3600)"
MODEST = "import time; chunk = b'x' * (8 << 20); print('fine', flush=True); time.sleep(3600)"


def python_pod(namespace: str, name: str, script: str, resources: dict, restart: str = "Never") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": "example.test/python",
                                     "command": [sys.executable, "-c", script], "resources": resources}]}}


def test_memory_limit_exceeded_ends_as_oom_killed(cluster, namespace):
    apply(cluster, python_pod(namespace, "greedy", GREEDY, {"limits": {"memory": "64Mi"}}),
          python_pod(namespace, "modest", MODEST, {"limits": {"memory": "64Mi"}}))

    def terminated() -> dict | None:
        return (container_status(get_json(cluster, "pod", "greedy", "-n", namespace)).get("state") or {}).get("terminated")

    ended = wait_for("the greedy container to be killed", terminated)
    assert (ended["reason"], ended["exitCode"]) == ("OOMKilled", 137), ended
    assert "survived" not in cluster.kubectl("logs", "greedy", "-n", namespace).stdout
    assert get_json(cluster, "pod", "greedy", "-n", namespace)["status"]["phase"] == "Failed"
    # The same limit leaves a container that stays below it alone.
    wait_for("the modest container's output", lambda: cluster.kubectl(
        "logs", "modest", "-n", namespace, check=False).stdout.strip() == "fine")
    assert "running" in container_status(get_json(cluster, "pod", "modest", "-n", namespace))["state"]


def test_oom_killed_container_restarts_with_it_as_last_state(cluster, namespace):
    apply(cluster, python_pod(namespace, "again", GREEDY, {"limits": {"memory": "64Mi"}}, restart="Always"))

    def last_state() -> dict | None:
        status = container_status(get_json(cluster, "pod", "again", "-n", namespace))
        return (status.get("lastState") or {}).get("terminated")

    last = wait_for("an OOMKilled last state", last_state)
    assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137), last


def test_cpu_limit_is_the_quota_of_the_containers_cgroup(cluster, namespace):
    apply(cluster, python_pod(namespace, "throttled", MODEST, {"limits": {"cpu": "250m"}, "requests": {"cpu": "100m"}}))

    def running_pid() -> int | None:
        status = container_status(get_json(cluster, "pod", "throttled", "-n", namespace))
        return int(status["containerID"].rsplit("/", 1)[1]) if "running" in (status.get("state") or {}) else None

    pid = wait_for("the container running", running_pid)
    cpu_line = next(line for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                    if "cpu" in line.split(":")[1].split(","))
    group = Path("/sys/fs/cgroup/cpu") / cpu_line.split(":", 2)[2].lstrip("/")
    assert (group / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert (group / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (group / "cpu.shares").read_text().strip() == "102"
    cluster.kubectl("delete", "pod", "throttled", "-n", namespace, "--timeout=60s")
    assert not group.exists()  # removed with the pod
