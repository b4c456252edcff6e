"""Inside the cluster, a Route is reached by its cluster-local name (``status.address``), as
workloads calling each other do: cluster DNS resolves the Route's placeholder Service to the
internal ingress, whose Service IP leads to Envoy's internal listener."""

from __future__ import annotations

import json
import time

from tests.e2e.conftest import EXAMPLES

CALLER = """
import sys, time, urllib.request
for url in sys.argv[1:]:
    for attempt in range(60):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                print("answer", url, response.status, response.read().decode().strip(), flush=True)
                break
        except Exception as error:
            print("retry", url, error, flush=True)
            time.sleep(0.5)
time.sleep(3600)
"""


def caller_pod(namespace: str, urls: list[str]) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "caller", "namespace": namespace},
        "spec": {"containers": [{"name": "caller", "image": "knserve.dev/tests/caller",
                                 "command": ["python3", "-c", CALLER, *urls]}]},
    }


def test_a_pod_reaches_a_route_by_its_cluster_local_names(stack, namespace):
    stack.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "hello.yaml"))
    service = stack.wait_ready("ksvc", "hello", namespace)
    address = service["status"]["address"]["url"]
    assert address == f"http://hello.{namespace}.svc.cluster.local"

    urls = [address, f"http://hello.{namespace}/"]
    stack.kubectl("apply", "-f", "-", input=json.dumps(caller_pod(namespace, urls)))
    deadline = time.monotonic() + 60
    answers: list[str] = []
    logs = ""
    while time.monotonic() < deadline:
        logs = stack.kubectl("logs", "caller", "-n", namespace, check=False).stdout
        answers = [line for line in logs.splitlines() if line.startswith("answer ")]
        if len(answers) == len(urls):
            break
        time.sleep(0.5)
    assert answers == [f"answer {url} 200 Hello World!" for url in urls], logs
