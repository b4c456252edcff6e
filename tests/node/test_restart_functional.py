"""The node agent survives its own restarts: it adopts running processes (in their network
namespaces), and after a clean stop (SIGTERM), which removes the pod network, it starts the
pods again, with their IPs."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

from node.network import try_lock_block
from tests.node.test_node_functional import (
    app_container,
    apply,
    container_status,
    get_json,
    http_get,
    is_ready,
    wait_for,
)


def start_agent(cluster, node: str, state_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "knserve.cli", "node", f"--kubeconfig={cluster.kubeconfig}", f"--name={node}",
             f"--state-dir={state_dir}", "--no-bind-pending-pods"],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def container_pid(pod: dict) -> int:
    return int(container_status(pod)["containerID"].rsplit("/", 1)[1])


def network_leftovers(state_dir: Path) -> list[str]:
    """The bridge, veths and namespaces of the agent's block that still exist."""
    block = json.loads((state_dir / "allocations.json").read_text())["block"]
    third = block.split(".")[2]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    found = [name for name in names if name == f"kns{third}" or name.startswith(f"knsv{third}-")]
    found += [line.split()[0] for line in namespaces.splitlines() if line.startswith(f"knserve-{third}-")]
    return found


def make_orphaned_network() -> int:
    """A bridge and pod namespace of a free block, as a killed agent would leave them."""
    for third in range(200, 255):
        lock = try_lock_block(ipaddress.IPv4Network(f"10.244.{third}.0/24"))
        if lock is not None:
            lock.close()
            break
    else:
        raise AssertionError("no free block for the orphan")
    subprocess.run(["ip", "link", "add", f"kns{third}", "type", "bridge"], check=True)
    subprocess.run(["ip", "netns", "add", f"knserve-{third}-2"], check=True)
    return third


def orphan_leftovers(third: int) -> list[str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [f"kns{third}" for line in links.splitlines() if f": kns{third}:" in line] + [
        line.split()[0] for line in namespaces.splitlines() if line.startswith(f"knserve-{third}-")
    ]


def test_agent_restart_adopts_processes_and_a_clean_stop_restarts_them(cluster, namespace, tmp_path):
    node = f"adopt-{namespace}"
    state, log = tmp_path / "state", tmp_path / "agent.log"
    orphan = make_orphaned_network()
    agent = start_agent(cluster, node, state, log)
    try:
        wait_for("the orphaned pod network removed", lambda: orphan_leftovers(orphan) == [])
        apply(cluster, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "survivor", "namespace": namespace},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 3, "containers": [app_container()]},
        })
        first = wait_for("the pod ready", lambda: is_ready(p := get_json(cluster, "pod", "survivor", "-n", namespace)) and p)
        pid, ip = container_pid(first), first["status"]["podIP"]

        agent.kill()  # no chance to clean up: the process must live on and be adopted
        agent.wait()
        assert alive(pid)
        agent = start_agent(cluster, node, state, log)
        wait_for("the new agent to adopt the process", lambda: "adopted" in log.read_text())
        adopted = get_json(cluster, "pod", "survivor", "-n", namespace)
        assert (container_pid(adopted), container_status(adopted)["restartCount"], is_ready(adopted)) == (pid, 0, True)
        assert http_get(f"http://{ip}:8080/") == "hello from survivor\n"

        agent.terminate()  # a clean stop ends the pod's processes but leaves the pod
        assert agent.wait(timeout=30) == 0
        wait_for("the process to end", lambda: not alive(pid))
        assert network_leftovers(state) == []  # a stopped agent leaves no bridge or namespace
        assert get_json(cluster, "pod", "survivor", "-n", namespace)["metadata"]["name"] == "survivor"

        agent = start_agent(cluster, node, state, log)
        again = wait_for(
            "the pod restarted",
            lambda: (container_status(p := get_json(cluster, "pod", "survivor", "-n", namespace)).get("restartCount") == 1
                     and is_ready(p) and p),
        )
        assert container_pid(again) != pid
        assert again["status"]["podIP"] == ip
        assert http_get(f"http://{ip}:8080/") == "hello from survivor\n"

        cluster.kubectl("delete", "pod", "survivor", "-n", namespace, "--timeout=60s")
        wait_for("the restarted process to end", lambda: not alive(container_pid(again)))
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        cluster.kubectl("delete", "node", node, "--wait=false", check=False)
        subprocess.run(["ip", "link", "del", f"kns{orphan}"], capture_output=True)
        subprocess.run(["ip", "netns", "del", f"knserve-{orphan}-2"], capture_output=True)
    assert network_leftovers(state) == []
