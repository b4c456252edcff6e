"""knserve installed from config/ on a containerd node, its images built here: every component
becomes ready, and a Knative Service of a local image answers through Envoy, also after it
scaled to zero."""

from __future__ import annotations

import json
import time
import urllib.error
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


def _get_through_envoy(real: ContainerdCluster, host: str, *, path: str = "/") -> str:
    envoy = json.loads(_kubectl(real, "-n", "knative-serving", "get", "pods", "-l",
                                "app.kubernetes.io/component=ingress", "-o", "json"))["items"]
    address = next(p["status"]["podIP"] for p in envoy if p["status"].get("podIP"))
    request = urllib.request.Request(f"http://{address}:8080{path}", headers={"Host": host})
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
