"""Exec probes run inside their container, as a kubelet runs them: with the container's
environment, its volumes and its user, so a probe that reads them sees what the app sees."""

from __future__ import annotations

import uuid

from tests.node.test_node_functional import apply, container_status, get_json, is_ready, wait_for


def test_exec_readiness_probe_sees_the_containers_volume_env_and_user(cluster, namespace):
    volume = f"/knserve-probe-{uuid.uuid4().hex[:8]}"
    probe = f'test "$READY_WORD" = yes && test -f {volume}/ready && test "$(id -u)" = 4321'
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "exec-probe", "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsUser": 4321},
            "containers": [{
                "name": "app", "image": "example.test/shell",
                "command": ["/bin/sh", "-c", f"sleep 2; touch {volume}/ready; exec sleep 3600"],
                "env": [{"name": "READY_WORD", "value": "yes"}],
                "volumeMounts": [{"name": "state", "mountPath": volume}],
                "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", probe]}, "periodSeconds": 1},
            }],
            "volumes": [{"name": "state", "emptyDir": {}}],
        },
    }
    apply(cluster, pod)

    # A probe run outside the container (the host's files, the agent's user) would never pass.
    ready = wait_for("the exec probe to pass", lambda: is_ready(p := get_json(
        cluster, "pod", "exec-probe", "-n", namespace)) and p, timeout=60)
    assert container_status(ready)["ready"] is True


def test_exec_pre_stop_hook_runs_in_the_container(cluster, namespace):
    volume = f"/knserve-hook-{uuid.uuid4().hex[:8]}"
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "exec-hook", "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [{
                "name": "app", "image": "example.test/shell",
                # The app reports, on SIGTERM, what the hook left in the volume it shares with it.
                "command": ["/bin/sh", "-c",
                            f"trap 'cat {volume}/hook; exit 0' TERM; while true; do sleep 0.1; done"],
                "env": [{"name": "HOOK_WORD", "value": "from-the-container"}],
                "volumeMounts": [{"name": "state", "mountPath": volume}],
                "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", f'echo "$HOOK_WORD" > {volume}/hook']}}},
            }],
            "volumes": [{"name": "state", "emptyDir": {}}],
        },
    }
    apply(cluster, pod)
    wait_for("the container running", lambda: "running" in (container_status(get_json(
        cluster, "pod", "exec-hook", "-n", namespace)).get("state") or {}))
    log_file = None
    for path in cluster.state_dir.glob("node/pods/*/containers/app/0.log"):
        if path.parent.parent.parent.joinpath("pod.json").read_text().count('"exec-hook"'):
            log_file = path
    assert log_file is not None
    with open(log_file) as log:  # still readable once the pod's directory is removed
        cluster.kubectl("delete", "pod", "exec-hook", "-n", namespace, "--wait=false")
        words: list[str] = []

        def last_words() -> bool:
            words.append(log.read())
            return "from-the-container" in "".join(words)

        wait_for("the app's last words", last_words, timeout=30)
