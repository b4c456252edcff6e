"""The node agent against a real API server: pods run as processes, the way kubectl shows it."""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

APP = Path(__file__).parent / "http_app.py"
POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what}; last seen: {last!r}")


def get_json(cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def apply(cluster, *objects: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def container_status(pod: dict) -> dict:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return statuses[0]


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def app_container(**extra: Any) -> dict:
    return {
        "name": "app",
        "image": "example.test/http-app:v1",
        "command": [sys.executable, str(APP)],
        "env": [{"name": "PORT", "value": "8080"}, *extra.pop("env", [])],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
        **extra,
    }


def web_deployment(namespace: str, marker: Path) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [app_container(env=[{"name": "SIGTERM_FILE", "value": str(marker)}])],
                },
            },
        },
    }


def service(namespace: str, name: str, selector: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def ready_pods(cluster, namespace: str, selector: str, count: int) -> list[dict]:
    def check() -> list[dict] | None:
        pods = [p for p in get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"]
                if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in pods if is_ready(p)]
        return ready if len(ready) == count and len(pods) == count else None

    return wait_for(f"{count} ready pods with {selector}", check)


def endpoints(cluster, namespace: str, service_name: str) -> dict[str, bool]:
    """Address -> ready, over the service's EndpointSlices."""
    slices = get_json(cluster, "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service_name}")
    found = {}
    for endpoint_slice in slices["items"]:
        for endpoint in endpoint_slice.get("endpoints") or []:
            for address in endpoint["addresses"]:
                found[address] = bool(endpoint.get("conditions", {}).get("ready"))
    return found


def test_deployment_runs_ready_pods_with_their_own_ips(cluster, namespace, tmp_path):
    marker = tmp_path / "sigterm.txt"
    apply(cluster, web_deployment(namespace, marker), service(namespace, "web", {"app": "web"}))
    pods = ready_pods(cluster, namespace, "app=web", 2)
    ips = {pod["status"]["podIP"] for pod in pods}
    assert len(ips) == 2
    assert all(ipaddress.ip_address(ip) in POD_NETWORK for ip in ips)
    assert {pod["status"]["phase"] for pod in pods} == {"Running"}

    # Both pods listen on 0.0.0.0:8080 at once, each in its own network namespace.
    for pod in pods:
        name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
        assert http_get(f"http://{ip}:8080/") == f"hello from {name}\n"
        logs = cluster.kubectl("logs", name, "-n", namespace).stdout
        assert f"listening on {ip}:8080" in logs
        assert "request GET /" in logs

    wait_for("both pods as ready endpoints", lambda: endpoints(cluster, namespace, "web") == {ip: True for ip in ips})

    # A deleted pod gets a replacement; the old one was sent SIGTERM.
    doomed = pods[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", doomed, "-n", namespace, "--wait=true", "--timeout=60s")
    replacement = ready_pods(cluster, namespace, "app=web", 2)
    assert doomed not in {p["metadata"]["name"] for p in replacement}
    assert doomed in marker.read_text().split()

    # Scaling to zero stops every process.
    cluster.kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=0")
    cluster.kubectl("wait", "--for=delete", "pod", "-l", "app=web", "-n", namespace, "--timeout=60s", timeout=90)
    stopped = set(marker.read_text().split())
    assert {p["metadata"]["name"] for p in replacement} <= stopped
    for pod in replacement:
        with pytest.raises(OSError):
            http_get(f"http://{pod['status']['podIP']}:8080/")


SIDECAR = """
import os, socket, time, urllib.request
for attempt in range(100):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8080/", timeout=2) as response:
            print("sidecar got:", response.read().decode().strip(), flush=True)
        break
    except OSError:
        time.sleep(0.2)
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect((os.environ["KUBERNETES_SERVICE_HOST"], int(os.environ["KUBERNETES_SERVICE_PORT"])))
print("my address:", probe.getsockname()[0], flush=True)
time.sleep(3600)
"""


def test_containers_of_a_pod_share_localhost_and_the_pod_ip(cluster, namespace):
    apply(cluster, {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pair", "namespace": namespace, "labels": {"app": "pair"}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            app_container(),
            {
                "name": "sidecar", "image": "example.test/sidecar", "command": [sys.executable, "-c", SIDECAR],
                # Passes only inside the pod's network namespace, where the app listens on localhost.
                "readinessProbe": {"periodSeconds": 1, "exec": {"command": [
                    sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 8080), timeout=1)",
                ]}},
            },
        ]},
    })
    pod = wait_for("the pair running", lambda: is_ready(p := get_json(cluster, "pod", "pair", "-n", namespace)) and p)
    ip = pod["status"]["podIP"]
    assert ipaddress.ip_address(ip) in POD_NETWORK
    assert pod["status"]["hostIP"] == str(ipaddress.ip_network(f"{ip}/24", strict=False).network_address + 1)

    def sidecar_log() -> str | None:
        text = cluster.kubectl("logs", "pair", "-c", "sidecar", "-n", namespace).stdout
        return text if "my address:" in text else None

    assert wait_for("the sidecar's report", sidecar_log).splitlines() == [
        "sidecar got: hello from pair", f"my address: {ip}",
    ]


def test_host_network_pod_uses_the_node_address(cluster, namespace):
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    container = app_container(env=[])
    container["env"] = [{"name": "PORT", "value": str(port)}]
    container["ports"] = [{"containerPort": port, "hostPort": port}]
    container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 1}
    apply(cluster, {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hosted", "namespace": namespace, "labels": {"app": "hosted"}},
        "spec": {"hostNetwork": True, "terminationGracePeriodSeconds": 1, "containers": [container]},
    })
    pod = ready_pods(cluster, namespace, "app=hosted", 1)[0]
    node = get_json(cluster, "node", pod["spec"]["nodeName"])
    internal = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert pod["status"]["podIP"] == pod["status"]["hostIP"] == internal
    assert ipaddress.ip_address(internal) in POD_NETWORK
    assert http_get(f"http://{internal}:{port}/") == "hello from hosted\n"


def test_crashing_container_is_restarted_with_back_off(cluster, namespace):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "crasher", "namespace": namespace},
        "spec": {"containers": [{
            "name": "app", "image": "example.test/crasher",
            "command": [sys.executable, "-c", "print('boom', flush=True); raise SystemExit(3)"],
        }]},
    }
    apply(cluster, pod)

    def crash_looping() -> dict | None:
        status = container_status(get_json(cluster, "pod", "crasher", "-n", namespace))
        waiting = status.get("state", {}).get("waiting", {})
        return status if status.get("restartCount", 0) >= 1 and waiting.get("reason") == "CrashLoopBackOff" else None

    status = wait_for("CrashLoopBackOff", crash_looping)
    terminated = status["lastState"]["terminated"]
    assert terminated["exitCode"] == 3
    assert terminated["reason"] == "Error"
    assert "back-off 10s restarting failed container=app" in status["state"]["waiting"]["message"]
    assert cluster.kubectl("logs", "crasher", "-n", namespace, "--previous").stdout == "boom\n"
    table = cluster.kubectl("get", "pod", "crasher", "-n", namespace).stdout
    assert "CrashLoopBackOff" in table


def test_failing_readiness_probe_keeps_a_pod_out_of_ready_endpoints(cluster, namespace):
    def pod(name: str, *, healthy: bool) -> dict:
        env = [] if healthy else [{"name": "UNHEALTHY", "value": "1"}]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "probe"}},
            "spec": {"containers": [app_container(env=env)]},
        }

    apply(cluster, pod("healthy", healthy=True), pod("sick", healthy=False), service(namespace, "probe", {"app": "probe"}))
    healthy = wait_for("the healthy pod ready", lambda: is_ready(p := get_json(cluster, "pod", "healthy", "-n", namespace)) and p)
    sick = wait_for(
        "the sick pod running",
        lambda: (p := get_json(cluster, "pod", "sick", "-n", namespace))["status"].get("phase") == "Running" and p,
    )
    found = wait_for(
        "both endpoints listed",
        lambda: len(e := endpoints(cluster, namespace, "probe")) == 2 and e,
    )
    assert found == {healthy["status"]["podIP"]: True, sick["status"]["podIP"]: False}
    ready = {c["type"]: c for c in get_json(cluster, "pod", "sick", "-n", namespace)["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False"
    assert ready["message"] == "containers with unready status: [app]"


def test_container_without_command_or_mapping_waits_with_a_reason(cluster, namespace):
    unmapped = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "unmapped", "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/example/not-mapped:v1"}]},
    }
    neighbour = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "neighbour", "namespace": namespace, "labels": {"app": "neighbour"}},
        "spec": {"containers": [app_container()]},
    }
    apply(cluster, unmapped, neighbour)

    def waiting() -> dict | None:
        state = container_status(get_json(cluster, "pod", "unmapped", "-n", namespace)).get("state", {})
        return state.get("waiting") if state.get("waiting", {}).get("reason") == "ImageNotMapped" else None

    reason = wait_for("ImageNotMapped", waiting)
    assert '"ghcr.io/example/not-mapped:v1"' in reason["message"]
    assert "knserve-images" in reason["message"]
    ready_pods(cluster, namespace, "app=neighbour", 1)
    assert get_json(cluster, "pod", "unmapped", "-n", namespace)["status"]["phase"] == "Pending"


def test_image_map_runs_an_image_without_command(cluster, namespace):
    image = f"example.test/{namespace}/http-app"
    if cluster.kubectl("get", "namespace", "knative-serving", check=False).returncode != 0:
        cluster.kubectl("create", "namespace", "knative-serving", check=False)
    if cluster.kubectl("get", "configmap", "knserve-images", "-n", "knative-serving", check=False).returncode != 0:
        cluster.kubectl("create", "configmap", "knserve-images", "-n", "knative-serving", check=False)
    entry = json.dumps({"image": image, "command": [sys.executable], "args": [str(APP)]})
    cluster.kubectl("patch", "configmap", "knserve-images", "-n", "knative-serving", "--type=merge",
                    "-p", json.dumps({"data": {f"test-{namespace}": entry}}))
    container = app_container()
    del container["command"]
    container["image"] = f"{image}:v1@sha256:{'0' * 64}"
    apply(cluster, {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "mapped", "namespace": namespace, "labels": {"app": "mapped"}},
        "spec": {"containers": [container]},
    })
    pod = ready_pods(cluster, namespace, "app=mapped", 1)[0]
    assert http_get(f"http://{pod['status']['podIP']}:8080/") == "hello from mapped\n"


def test_service_account_gets_what_its_role_allows_and_403_for_the_rest(cluster, namespace):
    from tests.conftest import kubectl_path

    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    cluster.kubectl("create", "rolebinding", "reader", "--role=pod-reader",
                    f"--serviceaccount={namespace}:reader", "-n", namespace)
    script = (
        "import subprocess, sys\n"
        f"kubectl = {kubectl_path()!r}\n"
        "for resource in ('pods', 'secrets'):\n"
        "    done = subprocess.run([kubectl, 'get', resource, '-o', 'name'], capture_output=True, text=True)\n"
        "    print(resource, done.returncode, (done.stdout + done.stderr).strip(), flush=True)\n"
    )
    apply(cluster, {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client", "namespace": namespace},
        "spec": {
            "serviceAccountName": "reader",
            "restartPolicy": "Never",
            "containers": [{"name": "app", "image": "example.test/client", "command": [sys.executable, "-c", script]}],
        },
    })
    wait_for("the client pod to finish",
             lambda: get_json(cluster, "pod", "client", "-n", namespace)["status"].get("phase") == "Succeeded")
    lines = cluster.kubectl("logs", "client", "-n", namespace).stdout.splitlines()
    pods_line = next(line for line in lines if line.startswith("pods "))
    secrets_line = next(line for line in lines if line.startswith("secrets "))
    assert pods_line.startswith("pods 0 ") and "pod/client" in pods_line
    assert secrets_line.startswith("secrets 1 ")
    assert f'User "system:serviceaccount:{namespace}:reader" cannot list resource "secrets"' in secrets_line
    assert "Forbidden" in secrets_line


def test_logs_follow_ends_with_the_container(cluster, namespace):
    script = "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second', flush=True)\n"
    apply(cluster, {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "talker", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "app", "image": "example.test/talker", "command": [sys.executable, "-c", script]}],
        },
    })
    wait_for("the talker to run",
             lambda: container_status(get_json(cluster, "pod", "talker", "-n", namespace)).get("state", {}).get("running"))
    followed = cluster.kubectl("logs", "-f", "talker", "-n", namespace, timeout=30).stdout
    assert followed == "first\nsecond\n"
    assert cluster.kubectl("logs", "talker", "-n", namespace, "--tail=1").stdout == "second\n"
    status = wait_for("Succeeded", lambda: (p := get_json(cluster, "pod", "talker", "-n", namespace))["status"].get("phase") == "Succeeded" and p)
    terminated = container_status(status)["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
