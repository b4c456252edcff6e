"""The Revision's builders: whole Deployment, Service and PodAutoscaler objects."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from serving.apis.v1 import Revision
from serving.apis.v1.revision_defaults import default_revision
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.kmeta import DESIRED_HASH_ANNOTATION
from serving.reconciler.revision.resources.deployment import make_deployment, readiness_probe_json
from serving.reconciler.revision.resources.inherited import initial_scale
from serving.reconciler.revision.resources.names import deployment_name
from serving.reconciler.revision.resources.podautoscaler import make_pod_autoscaler
from serving.reconciler.revision.resources.service import make_kubernetes_service
from tests.support.factories import (
    container,
    revision,
    revision_of,
    with_annotations,
    with_labels,
)

UID = "revision-hello-00001-uid"
LABELS = {
    "app": "hello-00001",
    "serving.knative.dev/configuration": "hello",
    "serving.knative.dev/configurationGeneration": "1",
    "serving.knative.dev/service": "hello",
    "serving.knative.dev/revision": "hello-00001",
    "serving.knative.dev/revisionUID": UID,
}
OWNER = [{"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "name": "hello-00001", "uid": UID,
          "controller": True, "blockOwnerDeletion": True}]


def hello_revision(*options: Any, **container_fields: Any) -> Revision:
    obj = revision("hello-00001", revision_of("hello"), with_labels({"serving.knative.dev/service": "hello"}),
                   with_labels({"serving.knative.dev/routingState": "active"}),
                   with_annotations({"serving.knative.dev/routes": "hello"}), *options)
    fields = {"ports": [{"containerPort": 8080}], "env": [{"name": "TARGET", "value": "World"}], **container_fields}
    obj["spec"]["containers"] = [container(name="user-container", **fields)]
    return default_revision(Revision.model_validate(obj), ConfigSnapshot())


def env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def without_hash(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["annotations"].pop(DESIRED_HASH_ANNOTATION)
    return obj


WANT_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "hello-00001-deployment", "namespace": "default", "labels": LABELS, "annotations": {},
                 "ownerReferences": OWNER},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"serving.knative.dev/revisionUID": UID}},
        "progressDeadlineSeconds": 600,
        "template": {
            "metadata": {"labels": LABELS, "annotations": {}},
            "spec": {
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 300,
                "containers": [
                    {
                        "name": "user-container",
                        "image": "ghcr.io/knative/helloworld-go:latest",
                        "ports": [{"name": "user-port", "containerPort": 8080}],
                        "env": [env("TARGET", "World"), env("PORT", "8080"), env("K_REVISION", "hello-00001"),
                                env("K_CONFIGURATION", "hello"), env("K_SERVICE", "hello")],
                        "resources": {},
                        "lifecycle": {"preStop": {"httpGet": {"path": "/wait-for-drain", "port": 8022}}},
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                    },
                    {
                        "name": "queue-proxy",
                        "image": "ghcr.io/knserve/knserve:0.1.0",
                        "command": ["knserve", "queue-proxy"],
                        "ports": [
                            {"name": "http", "containerPort": 8012},
                            {"name": "http-queueadm", "containerPort": 8022},
                            {"name": "http-autometric", "containerPort": 9090},
                            {"name": "http-usermetric", "containerPort": 9091},
                        ],
                        "env": [
                            env("SERVING_NAMESPACE", "default"),
                            env("SERVING_SERVICE", "hello"),
                            env("SERVING_CONFIGURATION", "hello"),
                            env("SERVING_REVISION", "hello-00001"),
                            {"name": "SERVING_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "SERVING_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                            env("QUEUE_SERVING_PORT", "8012"),
                            env("USER_PORT", "8080"),
                            env("USER_PORT_NAME", "http"),
                            env("CONTAINER_CONCURRENCY", "0"),
                            env("REVISION_TIMEOUT_SECONDS", "300"),
                            env("REVISION_RESPONSE_START_TIMEOUT_SECONDS", "0"),
                            env("REVISION_IDLE_TIMEOUT_SECONDS", "0"),
                            env("SERVING_READINESS_PROBE", '{"successThreshold":1,"tcpSocket":{"port":8080}}'),
                        ],
                        "readinessProbe": {
                            "httpGet": {"path": "/", "port": 8012,
                                        "httpHeaders": [{"name": "K-Network-Probe", "value": "queue"}]},
                            "periodSeconds": 1,
                            "successThreshold": 1,
                        },
                        "resources": {"requests": {"cpu": "25m"}},
                    },
                ],
            },
        },
    },
}


def _patched(path: list[Any], value: Any) -> dict[str, Any]:
    want = copy.deepcopy(WANT_DEPLOYMENT)
    target: Any = want
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return want


USER = ["spec", "template", "spec", "containers", 0]
QUEUE = ["spec", "template", "spec", "containers", 1]


def _queue_env(name: str, value: str) -> dict[str, Any]:
    want = copy.deepcopy(WANT_DEPLOYMENT)
    for variable in want["spec"]["template"]["spec"]["containers"][1]["env"]:
        if variable["name"] == name:
            variable["value"] = value
    return want


def _initial_scale_3() -> dict[str, Any]:
    want = _patched(["spec", "replicas"], 3)
    annotations = {"autoscaling.knative.dev/initial-scale": "3"}
    want["metadata"]["annotations"] = annotations
    want["spec"]["template"]["metadata"]["annotations"] = annotations
    return want


def _h2c() -> dict[str, Any]:
    want = _queue_env("USER_PORT_NAME", "h2c")
    want["spec"]["template"]["spec"]["containers"][1]["ports"][0]["name"] = "h2c"
    return want


@pytest.mark.parametrize(
    ("rev", "config", "want"),
    [
        pytest.param(hello_revision(), ConfigSnapshot(), WANT_DEPLOYMENT, id="hello world"),
        pytest.param(
            hello_revision(with_annotations({"autoscaling.knative.dev/initial-scale": "3"})), ConfigSnapshot(),
            _initial_scale_3(), id="initial scale from the annotation",
        ),
        pytest.param(
            hello_revision(), ConfigSnapshot.from_configmaps({"config-deployment": {
                "queue-sidecar-image": "example.com/qp:1", "queue-sidecar-command": "python3 -m queueproxy",
                "progress-deadline": "30s"}}),
            _patched(["spec", "progressDeadlineSeconds"], 30)
            | {"spec": {**_patched(["spec", "progressDeadlineSeconds"], 30)["spec"], "template": {
                "metadata": WANT_DEPLOYMENT["spec"]["template"]["metadata"],
                "spec": {**WANT_DEPLOYMENT["spec"]["template"]["spec"], "containers": [
                    WANT_DEPLOYMENT["spec"]["template"]["spec"]["containers"][0],
                    {**WANT_DEPLOYMENT["spec"]["template"]["spec"]["containers"][1],
                     "image": "example.com/qp:1", "command": ["python3", "-m", "queueproxy"]},
                ]}}}},
            id="queue sidecar and progress deadline from config-deployment",
        ),
        pytest.param(
            hello_revision(ports=[{"name": "h2c", "containerPort": 8080}]), ConfigSnapshot(), _h2c(),
            id="h2c user port",
        ),
    ],
)
def test_make_deployment(rev: Revision, config: ConfigSnapshot, want: dict[str, Any]) -> None:
    assert without_hash(make_deployment(rev, config)) == want


def test_user_readiness_probe_moves_to_the_queue_proxy() -> None:
    rev = hello_revision(readinessProbe={"httpGet": {"path": "/healthz"}, "periodSeconds": 5})
    deployment = make_deployment(rev, ConfigSnapshot())
    user, queue = deployment["spec"]["template"]["spec"]["containers"]
    assert "readinessProbe" not in user
    probe = next(v["value"] for v in queue["env"] if v["name"] == "SERVING_READINESS_PROBE")
    assert json.loads(probe) == {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5,
                                 "successThreshold": 1, "failureThreshold": 3, "timeoutSeconds": 1}
    assert queue["readinessProbe"]["periodSeconds"] == 5


def test_default_probe_port_zero_follows_a_port_changed_later() -> None:
    """The defaulted probe is stored as port 0 (Knative's "the serving port"); a template that
    keeps it while its port moves to 8888 (``kn service update --port``) probes 8888."""
    created = hello_revision(ports=[]).to_dict()["spec"]["containers"][0]["readinessProbe"]
    assert created == {"tcpSocket": {"port": 0}, "successThreshold": 1}
    moved = hello_revision(ports=[{"containerPort": 8888}], readinessProbe=created)
    queue = make_deployment(moved, ConfigSnapshot())["spec"]["template"]["spec"]["containers"][1]
    probe = json.loads(next(v["value"] for v in queue["env"] if v["name"] == "SERVING_READINESS_PROBE"))
    assert probe == {"tcpSocket": {"port": 8888}, "successThreshold": 1}


def test_exec_readiness_probe_stays_on_the_user_container_and_the_queue_proxy_probes_tcp() -> None:
    exec_probe = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 2, "failureThreshold": 5}
    deployment = make_deployment(hello_revision(readinessProbe=exec_probe), ConfigSnapshot())
    user, queue = deployment["spec"]["template"]["spec"]["containers"]
    assert user["readinessProbe"]["exec"] == {"command": ["cat", "/tmp/ready"]}
    assert user["readinessProbe"]["periodSeconds"] == 2
    probe = json.loads(next(v["value"] for v in queue["env"] if v["name"] == "SERVING_READINESS_PROBE"))
    assert probe == {"tcpSocket": {"port": 8080}, "periodSeconds": 2, "successThreshold": 1, "failureThreshold": 5,
                     "timeoutSeconds": 1}


def test_desired_hash_ignores_replicas_and_follows_the_spec() -> None:
    first = make_deployment(hello_revision(), ConfigSnapshot())
    scaled = make_deployment(hello_revision(with_annotations({"autoscaling.knative.dev/initial-scale": "3"})),
                             ConfigSnapshot())
    other_image = make_deployment(hello_revision(), ConfigSnapshot.from_configmaps(
        {"config-deployment": {"queue-sidecar-image": "example.com/qp:2"}}))
    hash_of = lambda obj: obj["metadata"]["annotations"][DESIRED_HASH_ANNOTATION]  # noqa: E731
    assert hash_of(first) != hash_of(other_image)
    assert hash_of(first) != hash_of(scaled)  # the annotation itself changed, not the replicas
    assert first["spec"]["replicas"] == 1


@pytest.mark.parametrize(
    ("annotations", "config", "want"),
    [
        pytest.param({}, {}, 1, id="default"),
        pytest.param({"autoscaling.knative.dev/initial-scale": "0"}, {}, 1, id="zero not allowed"),
        pytest.param({"autoscaling.knative.dev/initial-scale": "0"}, {"allow-zero-initial-scale": "true"}, 0,
                     id="zero allowed"),
        pytest.param({"autoscaling.knative.dev/initialScale": "4"}, {}, 4, id="legacy key"),
        pytest.param({}, {"initial-scale": "2"}, 2, id="from config-autoscaler"),
    ],
)
def test_initial_scale(annotations: dict[str, str], config: dict[str, str], want: int) -> None:
    rev = hello_revision(*(with_annotations({k: v}) for k, v in annotations.items()))
    assert initial_scale(rev, ConfigSnapshot.from_configmaps({"config-autoscaler": config})) == want


def test_make_kubernetes_service() -> None:
    assert without_hash(make_kubernetes_service(hello_revision())) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hello-00001", "namespace": "default", "labels": LABELS, "annotations": {},
                     "ownerReferences": OWNER},
        "spec": {
            "type": "ClusterIP",
            "selector": {"serving.knative.dev/revision": "hello-00001"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8012, "protocol": "TCP"},
                {"name": "http-queueadm", "port": 8022, "targetPort": 8022, "protocol": "TCP"},
                {"name": "http-autometric", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
                {"name": "http-usermetric", "port": 9091, "targetPort": 9091, "protocol": "TCP"},
            ],
        },
    }


@pytest.mark.parametrize(
    ("routing_state", "want_reachability"),
    [pytest.param("active", "Reachable", id="active"), pytest.param("reserve", "Unreachable", id="reserve"),
     pytest.param("pending", None, id="pending")],
)
def test_make_pod_autoscaler(routing_state: str, want_reachability: str | None) -> None:
    rev = hello_revision(with_labels({"serving.knative.dev/routingState": routing_state}),
                         with_annotations({"autoscaling.knative.dev/target": "10"}))
    spec: dict[str, Any] = {
        "containerConcurrency": 0,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello-00001-deployment"},
        "protocolType": "http1",
    }
    if want_reachability:
        spec["reachability"] = want_reachability
    assert without_hash(make_pod_autoscaler(rev, ConfigSnapshot())) == {
        "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
        "kind": "PodAutoscaler",
        "metadata": {
            "name": "hello-00001", "namespace": "default", "labels": LABELS,
            "annotations": {"autoscaling.knative.dev/target": "10",
                            "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"},
            "ownerReferences": OWNER,
        },
        "spec": spec,
    }


def test_readiness_probe_json_defaults_to_tcp_on_the_user_port() -> None:
    from serving.apis.v1 import Container

    assert readiness_probe_json(Container(ports=[{"containerPort": 9000}])) == '{"tcpSocket":{"port":9000}}'


@pytest.mark.parametrize(
    ("revision_name", "want"),
    [
        pytest.param("hello-00001", "hello-00001-deployment", id="short"),
        pytest.param("a" * 60, "a" * 20 + "cc7ed669cf88f201c3297c6a91e1d18d-deployment", id="long"),
    ],
)
def test_deployment_name_fits_63_characters(revision_name: str, want: str) -> None:
    name = deployment_name(revision_name)
    assert name == want
    assert len(name) <= 63
