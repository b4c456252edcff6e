"""Service networking on the local node: pods reach Services by name and Service IP, with the
Service's port mapping, only ever at ready endpoints; headless Services resolve to their pods."""

from __future__ import annotations

import json
import time

from tests.node.test_node_functional import app_container, apply, get_json, is_ready, service, wait_for

CLIENT = """
import os, socket, sys, time, urllib.request
for target in sys.argv[1:]:
    time.sleep(float(os.environ.get("PAUSE", "0")))
    kind, _, what = target.partition("=")
    for attempt in range(40):
        try:
            if kind == "dns":
                print("dns", what, sorted({a[4][0] for a in socket.getaddrinfo(what, 80, socket.AF_INET)}), flush=True)
            else:
                with urllib.request.urlopen(what, timeout=5) as response:
                    print("http", what, response.read().decode().strip(), flush=True)
            break
        except Exception as error:
            print("retry", target, repr(error), flush=True)
            time.sleep(0.5)
time.sleep(3600)
"""


def client(namespace: str, name: str, targets: list[str], pause: float = 0.0) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "client", "image": "example.test/client", "command": [
            "python3", "-c", CLIENT, *targets], "env": [{"name": "PAUSE", "value": str(pause)}]}]},
    }


def results(cluster, namespace: str, pod: str, count: int) -> list[str]:
    def done() -> list[str] | None:
        logs = cluster.kubectl("logs", pod, "-n", namespace, check=False).stdout
        lines = [line for line in logs.splitlines() if line.startswith(("dns ", "http "))]
        return lines if len(lines) == count else None

    return wait_for(f"{pod}'s answers", done, timeout=60)


def test_pods_reach_a_service_by_name_and_ip_with_its_port_mapping(cluster, namespace):
    web = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": namespace,
                                                           "labels": {"app": "web"}},
           "spec": {"containers": [app_container()]}}
    apply(cluster, web, service(namespace, "web", {"app": "web"}))  # port 80 -> 8080
    wait_for("web ready", lambda: is_ready(get_json(cluster, "pod", "web", "-n", namespace)))
    cluster_ip = get_json(cluster, "service", "web", "-n", namespace)["spec"]["clusterIP"]

    targets = [f"dns=web.{namespace}.svc.cluster.local", f"http=http://web.{namespace}.svc.cluster.local/",
               "http=http://web/", f"http=http://{cluster_ip}/"]
    apply(cluster, client(namespace, "client", targets))
    assert results(cluster, namespace, "client", len(targets)) == [
        f"dns web.{namespace}.svc.cluster.local ['{cluster_ip}']",
        f"http http://web.{namespace}.svc.cluster.local/ hello from web",
        "http http://web/ hello from web",
        f"http http://{cluster_ip}/ hello from web",
    ]


def test_a_headless_service_resolves_to_its_ready_pods(cluster, namespace):
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                                             "labels": {"app": "db"}},
             "spec": {"containers": [app_container()]}} for name in ("db-0", "db-1")]
    headless = service(namespace, "db", {"app": "db"})
    headless["spec"]["clusterIP"] = "None"
    apply(cluster, *pods, headless)
    addresses = sorted(wait_for(f"{p['metadata']['name']} ready", lambda p=p: (
        found := get_json(cluster, "pod", p["metadata"]["name"], "-n", namespace)) and is_ready(found)
        and found["status"]["podIP"]) for p in pods)
    # Give the EndpointSlice controller a moment to list both.
    wait_for("both endpoints", lambda: len(json.loads(cluster.kubectl(
        "get", "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=db", "-o", "json").stdout)
        ["items"][0].get("endpoints") or []) == 2)
    # Like any cluster DNS, the node's follows the EndpointSlices a moment later: ask until both appear.
    wanted = f"dns db.{namespace}.svc.cluster.local {addresses}"
    targets = [f"dns=db.{namespace}.svc.cluster.local"] * 40
    apply(cluster, client(namespace, "resolver", targets, pause=0.5))

    def answered() -> bool:
        logs = cluster.kubectl("logs", "resolver", "-n", namespace, check=False).stdout
        return wanted in logs.splitlines()

    wait_for("both pods in the headless Service's answer", answered, timeout=60)


def test_a_service_without_ready_endpoints_resolves_but_serves_nothing(cluster, namespace):
    apply(cluster, service(namespace, "nobody", {"app": "nobody"}))
    time.sleep(0.5)
    apply(cluster, client(namespace, "hopeful", [f"http=http://nobody.{namespace}.svc.cluster.local/"]))

    def gave_an_error() -> str | None:
        logs = cluster.kubectl("logs", "hopeful", "-n", namespace, check=False).stdout
        retries = [line for line in logs.splitlines() if line.startswith("retry ")]
        return retries[0] if retries else None

    first = wait_for("the client's first error", gave_an_error, timeout=60)
    # The name resolves (the Service exists); the connection is closed without an answer.
    assert "Name or service not known" not in first and "NXDOMAIN" not in first, first
