"""knserve installed from config/ on a containerd node, its images built here: every component
becomes ready, and a Knative Service of a local image answers through Envoy, also after it
scaled to zero."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

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


def _get_through_envoy(real: ContainerdCluster, host: str) -> str:
    envoy = json.loads(_kubectl(real, "-n", "knative-serving", "get", "pods", "-l",
                                "app.kubernetes.io/component=ingress", "-o", "json"))["items"]
    address = next(p["status"]["podIP"] for p in envoy if p["status"].get("podIP"))
    request = urllib.request.Request(f"http://{address}:8080/", headers={"Host": host})
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
