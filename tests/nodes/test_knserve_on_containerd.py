"""knserve installed from config/ on a containerd node, its images built here: every component
becomes ready, a Knative Service of a local image answers through Envoy, also after it scaled
to zero, and the examples' walk-throughs (examples/canary by hand, examples/progressive by
itself under load) run unchanged on containers."""

from __future__ import annotations

import collections
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
import yaml

from localcluster import binaries, images, nodesetup
from localcluster.controlplane import Ports
from localcluster.realcluster import ContainerdCluster, RealNodesControlPlane

REPOSITORY = Path(__file__).resolve().parents[2]
HELLO_SOURCE = Path(__file__).parent / "hello_httpd.c"
HELLO_IMAGE = "knserve.local/hello-httpd:1"
HELLO_SERVICE = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "hello", "namespace": "default"},
    "spec": {"template": {
        "metadata": {"annotations": {"autoscaling.knative.dev/window": "6s"}},
        "spec": {"containers": [{"image": HELLO_IMAGE, "ports": [{"containerPort": 8080}]}]},
    }},
}


@pytest.fixture(scope="module")
def knserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerdCluster]:
    nodesetup.ensure_packages()
    control_plane = RealNodesControlPlane(tmp_path_factory.mktemp("knserve-containerd") / "state",
                                          binaries.ensure_binaries(), ports=Ports.free())
    real = ContainerdCluster(control_plane, binaries.ensure_node_binaries(), nodes=1)
    try:
        real.start(progress=lambda _: None)
        real.start_addons(progress=lambda _: None)
        real.install_knserve(REPOSITORY, progress=lambda _: None)
        real.import_everywhere(images.static_program_image(HELLO_IMAGE, HELLO_SOURCE,
                                                           tmp_path_factory.mktemp("images"), exposed_ports=[8080]))
        yield real
    finally:
        real.stop(progress=lambda _: None)


def _kubectl(real: ContainerdCluster, *args: str, input: str | None = None, timeout: float = 180) -> str:
    result = real.kubectl(*args, input=input, timeout=timeout)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def _envoy_address(real: ContainerdCluster) -> str:
    """The Envoy pod's IP: the ingress on containerd nodes (port 8080; no host route to Service IPs)."""
    envoy = json.loads(_kubectl(real, "-n", "knative-serving", "get", "pods", "-l",
                                "app.kubernetes.io/component=ingress", "-o", "json"))["items"]
    return str(next(p["status"]["podIP"] for p in envoy if p["status"].get("podIP")))


def _get_through_envoy(real: ContainerdCluster, host: str, *, path: str = "/") -> str:
    request = urllib.request.Request(f"http://{_envoy_address(real)}:8080{path}", headers={"Host": host})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(answer.read().decode())


def test_every_component_of_config_becomes_ready(knserve: ContainerdCluster) -> None:
    deployments = _kubectl(knserve, "-n", "knative-serving", "get", "deployments", "-o", "name").split()
    assert {"deployment.apps/controller", "deployment.apps/activator", "deployment.apps/autoscaler",
            "deployment.apps/envoy"} <= set(deployments)
    _kubectl(knserve, "-n", "knative-serving", "rollout", "status", *deployments, "statefulset/nats", "--timeout=180s",
             timeout=200)
    pods = json.loads(_kubectl(knserve, "-n", "knative-serving", "get", "pods", "-o", "json"))["items"]
    runtimes = {c["containerID"].split(":")[0] for p in pods for c in p["status"]["containerStatuses"]}
    assert runtimes == {"containerd"}


def test_knative_service_of_a_local_image_answers_through_envoy_and_after_scale_to_zero(
        knserve: ContainerdCluster) -> None:
    _kubectl(knserve, "apply", "-f", "-", input=json.dumps(HELLO_SERVICE))
    _kubectl(knserve, "wait", "ksvc/hello", "--for=condition=Ready", "--timeout=120s")
    assert _get_through_envoy(knserve, "hello.default.example.com").startswith("hello from hello-00001-deployment-")
    deadline = time.monotonic() + 240
    while _kubectl(knserve, "get", "pods", "-l", "serving.knative.dev/service=hello", "-o", "name").strip():
        assert time.monotonic() < deadline, "hello did not scale to zero"
        time.sleep(2)
    assert _get_through_envoy(knserve, "hello.default.example.com").startswith("hello from hello-00001-deployment-")


def test_the_hello_example_runs_unchanged_with_its_latest_tag_from_the_local_registry(
        knserve: ContainerdCluster) -> None:
    example = REPOSITORY / "examples" / "hello.yaml"
    assert ":latest" in example.read_text()
    _kubectl(knserve, "create", "namespace", "examples")
    _kubectl(knserve, "apply", "-n", "examples", "-f", str(example))
    name = yaml.safe_load(example.read_text())["metadata"]["name"]
    _kubectl(knserve, "-n", "examples", "wait", f"ksvc/{name}", "--for=condition=Ready", "--timeout=120s")
    assert _get_through_envoy(knserve, f"{name}.examples.example.com") == "Hello World!\n"
    # as config/README.md finds the ingress on a cloud: the LoadBalancer Service's address, port 80
    ingress = _kubectl(knserve, "-n", "knative-serving", "get", "service", "knserve-ingress", "-o",
                       "jsonpath={.status.loadBalancer.ingress[0].ip}").strip()
    assert ingress == knserve.loadbalancer_address()
    request = urllib.request.Request(f"http://{ingress}/", headers={"Host": f"{name}.examples.example.com"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.read() == b"Hello World!\n"
    pods = json.loads(_kubectl(knserve, "-n", "examples", "get", "pods", "-l", f"serving.knative.dev/service={name}",
                               "-o", "json"))
    [status] = [c for p in pods["items"] for c in p["status"]["containerStatuses"] if c["name"] == "user-container"]
    assert status["image"].endswith("helloworld-go:latest")
    pulls = [line for line in (knserve.cluster.state_dir / "logs" / "registry.log").read_text().splitlines()
             if "/manifests/latest" in line]
    assert pulls and all(line.endswith(" 200") for line in pulls)


def test_pods_run_as_their_images_user_under_containerd(knserve: ContainerdCluster) -> None:
    pods = json.loads(_kubectl(knserve, "-n", "knative-serving", "get", "pods", "-l",
                               "app.kubernetes.io/component=controller", "-o", "json"))["items"]
    address = knserve.nodes[0].addresses()
    assert pods and address is not None
    container = pods[0]["status"]["containerStatuses"][0]["containerID"].split("//")[1]
    info = json.loads(knserve.nodes[0].ctr("containers", "info", container).stdout)
    assert info["Spec"]["process"]["user"]["uid"] == 65532


CONTRACT = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "contract", "namespace": "default"},
    "spec": {"template": {"spec": {"containers": [{
        "image": "knserve.dev/samples/autoscale:latest",
        "ports": [{"containerPort": 8080}],
        "securityContext": {"runAsUser": 1234, "readOnlyRootFilesystem": True},
        "resources": {"limits": {"memory": "96Mi"}},
    }]}}},
}


def _contract_pod(knserve: ContainerdCluster) -> str:
    _kubectl(knserve, "apply", "-f", "-", input=json.dumps(CONTRACT))
    _kubectl(knserve, "wait", "ksvc/contract", "--for=condition=Ready", "--timeout=120s")
    return _kubectl(knserve, "get", "pods", "-l", "serving.knative.dev/service=contract", "-o",
                    "jsonpath={.items[0].metadata.name}").strip()


def test_run_as_user_and_a_read_only_root_filesystem_hold_in_the_container(knserve: ContainerdCluster) -> None:
    pod = _contract_pod(knserve)
    uid = knserve.kubectl("exec", pod, "-c", "user-container", "--", "python3", "-c", "import os; print(os.getuid())")
    assert uid.stdout.strip() == "1234", uid.stderr
    write = knserve.kubectl("exec", pod, "-c", "user-container", "--", "python3", "-c", "open('/written', 'w')")
    assert write.returncode != 0 and "Read-only file system" in write.stderr + write.stdout


def test_going_over_the_memory_limit_ends_in_oomkilled(knserve: ContainerdCluster) -> None:
    pod = _contract_pod(knserve)
    with pytest.raises(urllib.error.HTTPError):
        _get_through_envoy(knserve, "contract.default.example.com", path="/?bloat=300")
    deadline = time.monotonic() + 60
    while True:
        statuses = json.loads(_kubectl(knserve, "get", "pod", pod, "-o", "json"))["status"]["containerStatuses"]
        [user] = [s for s in statuses if s["name"] == "user-container"]
        terminated = user.get("lastState", {}).get("terminated") or user.get("state", {}).get("terminated")
        if terminated:
            assert terminated["reason"] == "OOMKilled"
            return
        assert time.monotonic() < deadline, f"no termination recorded: {user}"
        time.sleep(1)


def test_an_image_no_registry_has_is_reported_on_the_revision(knserve: ContainerdCluster) -> None:
    missing = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
               "metadata": {"name": "missing", "namespace": "default"},
               "spec": {"template": {"spec": {"containers": [{"image": "knserve.local/missing:1"}]}}}}
    _kubectl(knserve, "apply", "-f", "-", input=json.dumps(missing))
    deadline = time.monotonic() + 120
    while True:
        revisions = json.loads(_kubectl(knserve, "get", "revisions", "-l", "serving.knative.dev/service=missing",
                                        "-o", "json"))["items"]
        ready = [c for r in revisions for c in r.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        if ready and ready[0]["status"] == "False":
            assert ready[0]["reason"] == "ContainerMissing"
            # The kubelet's pull error (ErrImagePull, then ImagePullBackOff), as Knative words it.
            assert ready[0]["message"].startswith('Unable to fetch image "knserve.local/missing:1"')
            assert "not found" in ready[0]["message"]
            return
        assert time.monotonic() < deadline, f"the revision never reported the missing image: {ready}"
        time.sleep(1)


def _apply_example(real: ContainerdCluster, namespace: str, path: str) -> None:
    _kubectl(real, "apply", "-n", namespace, "-f", str(REPOSITORY / "examples" / path))


def _patch_example(real: ContainerdCluster, namespace: str, service: str, path: str) -> None:
    _kubectl(real, "patch", "-n", namespace, f"ksvc/{service}", "--type", "merge", "--patch-file",
             str(REPOSITORY / "examples" / path))


def _wait_settled(real: ContainerdCluster, namespace: str, service: str, *, timeout: float = 180) -> dict[str, Any]:
    """The Service once it is Ready for its newest generation (its Route then served by Envoy)."""
    deadline = time.monotonic() + timeout
    while True:
        ksvc = json.loads(_kubectl(real, "get", "-n", namespace, f"ksvc/{service}", "-o", "json"))
        ready = [c for c in ksvc.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        if ksvc.get("status", {}).get("observedGeneration") == ksvc["metadata"]["generation"] and ready \
                and ready[0]["status"] == "True":
            return dict(ksvc)
        assert time.monotonic() < deadline, f"{service} did not become Ready: {ksvc.get('status')}"
        time.sleep(0.5)


def _bodies(address: str, host: str, count: int) -> collections.Counter[str]:
    answers: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        request = urllib.request.Request(f"http://{address}:8080/", headers={"Host": host})
        with urllib.request.urlopen(request, timeout=30) as answer:
            answers[answer.read().decode()] += 1
    return answers


def test_the_canary_walk_through_runs_unchanged_on_containers(knserve: ContainerdCluster) -> None:
    """examples/canary/README.md step by step: 90/10 with tag URLs, 50/50, roll back, promote."""
    namespace, world, knative = "canary", "Hello World!\n", "Hello Knative!\n"
    host = f"hello.{namespace}.example.com"
    _kubectl(knserve, "create", "namespace", namespace)
    _apply_example(knserve, namespace, "canary/v1.yaml")
    _wait_settled(knserve, namespace, "hello")
    address = _envoy_address(knserve)
    assert _bodies(address, host, 5) == {world: 5}

    _apply_example(knserve, namespace, "canary/v2.yaml")
    ksvc = _wait_settled(knserve, namespace, "hello")
    assert {(t.get("tag"), t["revisionName"], t["percent"]) for t in ksvc["status"]["traffic"]} == {
        ("current", "hello-00001", 90), ("candidate", "hello-00002", 10)}
    split = _bodies(address, host, 200)
    assert set(split) == {world, knative} and 5 <= split[knative] <= 40, split
    assert _bodies(address, f"candidate-hello.{namespace}.example.com", 3) == {knative: 3}
    assert _bodies(address, f"current-hello.{namespace}.example.com", 3) == {world: 3}

    _patch_example(knserve, namespace, "hello", "canary/split-50-50.yaml")
    _wait_settled(knserve, namespace, "hello")
    half = _bodies(address, host, 200)
    assert set(half) == {world, knative} and 65 <= half[knative] <= 135, half

    _patch_example(knserve, namespace, "hello", "canary/rollback.yaml")
    _wait_settled(knserve, namespace, "hello")
    assert _bodies(address, host, 40) == {world: 40}
    assert _bodies(address, f"candidate-hello.{namespace}.example.com", 3) == {knative: 3}
    assert len(json.loads(_kubectl(knserve, "get", "-n", namespace, "revisions", "-o", "json"))["items"]) == 2

    _patch_example(knserve, namespace, "hello", "canary/promote.yaml")
    _wait_settled(knserve, namespace, "hello")
    assert _bodies(address, host, 40) == {knative: 40}
    assert _bodies(address, f"previous-hello.{namespace}.example.com", 3) == {world: 3}


class SteadyLoad:
    """Requests at a steady rate from a few threads; each answer kept with the time it came."""

    def __init__(self, address: str, host: str, *, threads: int = 4, per_thread_per_second: float = 12) -> None:
        self.url, self.host, self.pause = f"http://{address}:8080/", host, 1 / per_thread_per_second
        self.answers: list[tuple[float, int, str]] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                request = urllib.request.Request(self.url, headers={"Host": self.host})
                with urllib.request.urlopen(request, timeout=30) as answer:
                    self.answers.append((began, answer.status, answer.read().decode()))
            except urllib.error.HTTPError as error:
                self.answers.append((began, error.code, ""))
            except OSError as error:
                self.answers.append((began, 0, str(error)))
            self.stopping.wait(max(0.0, self.pause - (time.monotonic() - began)))

    def since(self, moment: float) -> list[tuple[float, int, str]]:
        return [answer for answer in list(self.answers) if answer[0] >= moment]

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=40)


def _wait_canary(real: ContainerdCluster, namespace: str, revision: str, phase: str, *,
                 timeout: float = 420) -> tuple[dict[str, Any], list[int]]:
    """status.canary once ``revision``'s analysis reached ``phase``; the shares it went through."""
    deadline, shares = time.monotonic() + timeout, list[int]()
    while True:
        ksvc = json.loads(_kubectl(real, "get", "-n", namespace, "ksvc/shop", "-o", "json"))
        canary = ksvc.get("status", {}).get("canary") or {}
        if canary.get("revisionName") == revision:
            if canary.get("phase") == "Progressing" and (not shares or shares[-1] != canary.get("percent")):
                shares.append(canary["percent"])
            if canary.get("phase") == phase:
                return ksvc, shares
        assert time.monotonic() < deadline, f"{revision} never reached {phase}: {json.dumps(canary)}"
        time.sleep(1)


def test_the_progressive_delivery_walk_through_runs_unchanged_on_containers(knserve: ContainerdCluster) -> None:
    """examples/progressive as the README walks it, under steady load (~45 requests/s): the broken
    version is rolled back at its first step by itself, the good one walks 5 -> 25 -> 50 -> 100."""
    namespace = "progressive"
    host = f"shop.{namespace}.example.com"
    _kubectl(knserve, "create", "namespace", namespace)
    _apply_example(knserve, namespace, "progressive/v1.yaml")
    ksvc = _wait_settled(knserve, namespace, "shop")
    assert (ksvc["status"]["canary"]["phase"], ksvc["status"]["canary"]["revisionName"]) == ("Promoted", "shop-00001")
    with SteadyLoad(_envoy_address(knserve), host) as load:
        time.sleep(3)
        _apply_example(knserve, namespace, "progressive/v2-broken.yaml")
        ksvc, shares = _wait_canary(knserve, namespace, "shop-00002", "RolledBack")
        assert shares == [5], shares
        [ready] = [c for c in ksvc["status"]["conditions"] if c["type"] == "Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "RolledBack")
        assert "error rate" in ksvc["status"]["canary"]["message"], ksvc["status"]["canary"]
        assert {t["revisionName"]: t["percent"] for t in ksvc["status"]["traffic"]}.get("shop-00001") == 100
        time.sleep(3)  # the rolled-back route reaches Envoy
        rolled_back = time.monotonic()
        time.sleep(5)
        after = load.since(rolled_back)
        assert after and {(status, body) for _, status, body in after} == {(200, "Hello v1!\n")}, after[:5]

        good = time.monotonic()
        _apply_example(knserve, namespace, "progressive/v3.yaml")
        ksvc, shares = _wait_canary(knserve, namespace, "shop-00003", "Promoted")
        assert shares == [5, 25, 50], shares
        during = load.since(good)
    failed = [answer for answer in during if answer[1] != 200]
    assert not failed, f"{len(failed)} of {len(during)} requests failed while v3 rolled out: {failed[:5]}"
    assert {body for _, _, body in during} == {"Hello v1!\n", "Hello v3!\n"}
    assert _bodies(_envoy_address(knserve), host, 20) == {"Hello v3!\n": 20}
