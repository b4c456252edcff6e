"""Two containerd nodes: knserve's components and a revision's replicas spread over both, and
traffic reaches the pods of either node; the nodes reach each other only through the host's
veths, never anything off the machine."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request

from localcluster.realcluster import ContainerdCluster

SPREAD = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "spread", "namespace": "default"},
    "spec": {"template": {
        "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "4"}},
        "spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go:latest", "ports": [{"containerPort": 8080}]}]},
    }},
}


def _kubectl(real: ContainerdCluster, *args: str, input: str | None = None) -> str:
    result = real.kubectl(*args, input=input, timeout=200)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_a_revision_of_four_replicas_spreads_over_both_nodes_and_both_answer(two_nodes: ContainerdCluster) -> None:
    _kubectl(two_nodes, "-n", "knative-serving", "rollout", "status", "deployment/controller", "deployment/activator",
             "deployment/autoscaler", "deployment/envoy", "deployment/webhook", "--timeout=180s")
    _kubectl(two_nodes, "apply", "-f", "-", input=json.dumps(SPREAD))
    _kubectl(two_nodes, "wait", "ksvc/spread", "--for=condition=Ready", "--timeout=120s")
    pods = json.loads(_kubectl(two_nodes, "get", "pods", "-l", "serving.knative.dev/service=spread", "-o", "json"))
    assert {p["spec"]["nodeName"] for p in pods["items"]} == {"knserve-node-0", "knserve-node-1"}
    envoys = json.loads(_kubectl(two_nodes, "-n", "knative-serving", "get", "pods", "-l",
                                 "app.kubernetes.io/component=ingress", "-o", "json"))["items"]
    answers = []
    for envoy in envoys:
        for _ in range(4):
            request = urllib.request.Request(f"http://{envoy['status']['podIP']}:8080/",
                                             headers={"Host": "spread.default.example.com"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                answers.append(answer.read())
    assert answers == [b"Hello World!\n"] * 4 * len(envoys)


def test_nodes_route_each_other_but_nothing_else(two_nodes: ContainerdCluster) -> None:
    first, second = (node.addresses() for node in two_nodes.nodes)
    assert first is not None and second is not None
    pod_of_second = str(second.block.network_address + 2)

    def route(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net={second.namespace_path}", "ip", "route", "get", *args,
                               "from", pod_of_second, "iif", "cni0"], capture_output=True, text=True, check=False)

    assert f"via {second.host_address}" in route(str(first.block.network_address + 5)).stdout
    # An address off the machine (TEST-NET-3, never routed on purpose) has no route out of a node.
    off_machine = route("203.0.113.9")
    assert off_machine.returncode != 0 and "unreachable" in off_machine.stderr
    assert subprocess.run(["sysctl", "-n", "net.ipv4.conf.all.forwarding"], check=False, capture_output=True,
                          text=True).stdout.strip() == "0"


def _steady_load(address: str, host: str, *, until: threading.Event, limit: float) -> tuple[int, dict[str, int]]:
    """Four clients sending requests back to back until ``until`` is set (at most ``limit`` s):
    the answered count and the failures by kind."""
    answered = 0
    failures: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + limit

    def client() -> None:
        nonlocal answered
        while not until.is_set() and time.monotonic() < deadline:
            failure = None
            try:
                request = urllib.request.Request(f"http://{address}:8080/", headers={"Host": host})
                with urllib.request.urlopen(request, timeout=10) as answer:
                    if answer.read() != b"Hello World!\n":
                        failure = "unexpected body"
            except (urllib.error.URLError, OSError) as error:
                failure = type(error).__name__
            with lock:
                if failure is None:
                    answered += 1
                else:
                    failures[failure] = failures.get(failure, 0) + 1
            time.sleep(0.01)

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    return answered, failures


def test_draining_a_node_under_steady_load_fails_no_request(two_nodes: ContainerdCluster) -> None:
    steady = json.loads(json.dumps(SPREAD))
    steady["metadata"]["name"] = "steady"
    _kubectl(two_nodes, "apply", "-f", "-", input=json.dumps(steady))
    _kubectl(two_nodes, "wait", "ksvc/steady", "--for=condition=Ready", "--timeout=120s")
    envoys = json.loads(_kubectl(two_nodes, "-n", "knative-serving", "get", "pods", "-l",
                                 "app.kubernetes.io/component=ingress", "-o", "json"))["items"]
    kept = envoys[0]
    drained = ({"knserve-node-0", "knserve-node-1"} - {kept["spec"]["nodeName"]}).pop()
    done = threading.Event()
    result: list[tuple[int, dict[str, int]]] = []
    load = threading.Thread(target=lambda: result.append(
        _steady_load(kept["status"]["podIP"], "steady.default.example.com", until=done, limit=150)))
    load.start()
    try:
        time.sleep(3)
        _kubectl(two_nodes, "drain", drained, "--ignore-daemonsets", "--delete-emptydir-data",
                 "--timeout=90s")
        _kubectl(two_nodes, "wait", "ksvc/steady", "--for=condition=Ready", "--timeout=60s")
        time.sleep(5)
        # read while the node is still cordoned: once uncordoned, a pod the autoscaler adds may go there
        pods = json.loads(_kubectl(two_nodes, "get", "pods", "-l", "serving.knative.dev/service=steady",
                                   "-o", "json"))["items"]
    finally:
        done.set()
        load.join()
        two_nodes.kubectl("uncordon", drained)
    answered, failures = result[0]
    print(f"drain under load: {answered} answered, failures {failures}")
    assert failures == {} and answered > 100
    assert {p["spec"]["nodeName"] for p in pods} == {kept["spec"]["nodeName"]}
