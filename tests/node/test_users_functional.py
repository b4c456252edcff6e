"""Users on the process node: a container runs as the user and groups its securityContext (or
its image) names, and a pod that asks for what the node cannot honour says so in its status."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.node.test_node_functional import apply, container_status, get_json, wait_for

SHELL_REPORT = "id -u; id -g; id -G; touch /knserve-scratch/written && echo wrote; exec sleep 3600"


def shell_pod(namespace: str, name: str, *, pod_context: dict | None = None, container_context: dict | None = None,
              image: str = "example.test/shell", script: str = SHELL_REPORT) -> dict:
    container: dict = {"name": "app", "image": image, "command": ["/bin/sh", "-c", script],
                       "volumeMounts": [{"name": "scratch", "mountPath": "/knserve-scratch"}]}
    if container_context is not None:
        container["securityContext"] = container_context
    spec: dict = {"terminationGracePeriodSeconds": 1, "containers": [container],
                  "volumes": [{"name": "scratch", "emptyDir": {}}]}
    if pod_context is not None:
        spec["securityContext"] = pod_context
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def report(cluster, namespace: str, name: str) -> list[str]:
    def lines() -> list[str] | None:
        found = cluster.kubectl("logs", name, "-n", namespace, check=False).stdout.splitlines()
        return found if len(found) >= 4 else None

    return wait_for(f"the report of {name}", lines)


def process_ids(pid: int) -> tuple[str, str]:
    """The real uid and gid of ``pid`` as /proc shows them on the host."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return status["Uid"].split()[0], status["Gid"].split()[0]


def test_container_runs_as_the_user_and_groups_of_its_security_context(cluster, namespace):
    pod = shell_pod(namespace, "as-user", pod_context={"runAsUser": 1111, "supplementalGroups": [3333], "fsGroup": 4444},
                    container_context={"runAsUser": 1234, "runAsGroup": 2345})
    apply(cluster, pod)

    lines = report(cluster, namespace, "as-user")
    assert lines[:2] == ["1234", "2345"]  # the container's own context wins over the pod's
    assert set(lines[2].split()) == {"2345", "3333", "4444"}
    assert lines[3] == "wrote"  # an emptyDir is writable for the user, as on a kubelet
    running = get_json(cluster, "pod", "as-user", "-n", namespace)
    pid = int(container_status(running)["containerID"].rsplit("/", 1)[1])
    assert process_ids(pid) == ("1234", "2345")  # not root on the host either


def test_image_map_user_is_the_default_and_runs_as_non_root(cluster, namespace):
    image = f"example.test/{namespace}/non-root"
    if cluster.kubectl("get", "namespace", "knative-serving", check=False).returncode != 0:
        cluster.kubectl("create", "namespace", "knative-serving", check=False)
    if cluster.kubectl("get", "configmap", "knserve-images", "-n", "knative-serving", check=False).returncode != 0:
        cluster.kubectl("create", "configmap", "knserve-images", "-n", "knative-serving", check=False)
    entry = json.dumps({"image": image, "command": ["/bin/sh", "-c", SHELL_REPORT], "user": "65534:65534"})
    cluster.kubectl("patch", "configmap", "knserve-images", "-n", "knative-serving", "--type=merge",
                    "-p", json.dumps({"data": {f"test-{namespace}": entry}}))
    try:
        pod = shell_pod(namespace, "image-user", image=image, container_context={"runAsNonRoot": True})
        del pod["spec"]["containers"][0]["command"]
        apply(cluster, pod)
        lines = report(cluster, namespace, "image-user")
        assert lines[:3] == ["65534", "65534", "65534"]
    finally:
        cluster.kubectl("patch", "configmap", "knserve-images", "-n", "knative-serving", "--type=merge",
                        "-p", json.dumps({"data": {f"test-{namespace}": None}}))


def test_run_as_non_root_without_a_user_is_refused_in_the_pod_status(cluster, namespace):
    apply(cluster, shell_pod(namespace, "would-be-root", pod_context={"runAsNonRoot": True}),
          shell_pod(namespace, "explicit-root", container_context={"runAsNonRoot": True, "runAsUser": 0}))

    def waiting(name: str) -> dict | None:
        state = container_status(get_json(cluster, "pod", name, "-n", namespace)).get("state") or {}
        return state.get("waiting") if (state.get("waiting") or {}).get("reason") == "CreateContainerConfigError" else None

    refused = wait_for("the refusal", lambda: waiting("would-be-root"))
    assert refused["message"].startswith("container has runAsNonRoot and image will run as root"), refused
    assert "container: app" in refused["message"]
    explicit = wait_for("the refusal of runAsUser 0", lambda: waiting("explicit-root"))
    assert explicit["message"].startswith("container's runAsUser breaks non-root policy"), explicit
    assert cluster.kubectl("logs", "would-be-root", "-n", namespace, check=False).stdout == ""


def test_non_root_container_runs_the_nodes_python_and_reads_its_own_token(cluster, namespace):
    script = ("import os, pathlib; print(os.getuid(), flush=True); "
              "token = pathlib.Path('/var/run/secrets/kubernetes.io/serviceaccount/token').read_text(); "
              "print(len(token.split('.')), flush=True); "
              "print(oct(os.stat('/var/run/secrets/kubernetes.io/serviceaccount/token').st_mode & 0o777), flush=True); "
              "import time; time.sleep(3600)")
    apply(cluster, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "python-user", "namespace": namespace},
                    "spec": {"terminationGracePeriodSeconds": 1, "securityContext": {"runAsUser": 1234},
                             "containers": [{"name": "app", "image": "example.test/python",
                                             "command": [sys.executable, "-c", script]}]}})

    def lines() -> list[str] | None:
        found = cluster.kubectl("logs", "python-user", "-n", namespace, check=False).stdout.split()
        return found if len(found) >= 3 else None

    assert wait_for("the report", lines) == ["1234", "3", "0o600"]  # its token, and only its user may read it


def test_queue_proxy_forked_by_the_zygote_runs_as_its_user_and_serves(cluster, namespace):
    env = {"USER_PORT": "8080", "SERVING_POD": "qp-user", "SERVING_NAMESPACE": namespace}
    apply(cluster, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "qp-user", "namespace": namespace},
                    "spec": {"terminationGracePeriodSeconds": 1,
                             "containers": [{"name": "queue-proxy", "image": "example.test/queue-proxy",
                                             "command": [str(Path(sys.executable).parent / "knserve"), "queue-proxy"],
                                             "securityContext": {"runAsUser": 2222, "runAsGroup": 2222},
                                             "env": [{"name": k, "value": v} for k, v in env.items()]}]}})

    def running() -> dict | None:
        pod = get_json(cluster, "pod", "qp-user", "-n", namespace)
        return pod if "running" in (container_status(pod).get("state") or {}) else None

    pod = wait_for("the queue-proxy running", running)
    pid = int(container_status(pod)["containerID"].rsplit("/", 1)[1])
    assert process_ids(pid) == ("2222", "2222")
    request = urllib.request.Request(f"http://{pod['status']['podIP']}:8012/", headers={"K-Network-Probe": "queue"})

    def answer() -> int | None:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code  # 503: it serves, its app (none here) is not ready
        except OSError:
            return None

    assert wait_for("the queue-proxy to answer its probe", answer) in (200, 503)
