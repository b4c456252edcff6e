"""config-features: PodSpec fields behind a flag are refused while it is Disabled (Knative's
defaults), accepted once it is enabled or allowed; fields Knative never accepts stay refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from serving.apis.v1 import Service
from serving.apis.v1.service_defaults import default_service
from serving.apis.v1.service_validation import validate_service
from serving.config import ConfigSnapshot

IMAGE = "ghcr.io/knative/helloworld-go:latest"
SPEC = "spec.template.spec"


def hello(**spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"image": IMAGE, **spec.pop("container", {})}
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [container], **spec}}},
    }


def check(doc: dict[str, Any], features: dict[str, str] | None = None) -> str:
    config = ConfigSnapshot.from_configmaps({"config-features": features or {}})
    return str(validate_service(default_service(Service.model_validate(copy.deepcopy(doc)), config), config))


PVC = hello(volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            container={"volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]})
HOST_PATH = hello(volumes=[{"name": "h", "hostPath": {"path": "/tmp"}}],
                  container={"volumeMounts": [{"name": "h", "mountPath": "/h", "readOnly": True}]})
FIELD_REF = hello(container={"env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]})
AFFINITY = hello(affinity={"nodeAffinity": {}})
INIT = hello(initContainers=[{"name": "setup", "image": IMAGE}])
HOST_NETWORK = hello(hostNetwork=True)
POD_SECURITY = hello(securityContext={"runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}})
ADD_CAPS = hello(container={"securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}})
TWO = hello()
TWO["spec"]["template"]["spec"]["containers"].append({"image": IMAGE, "name": "sidecar"})
TWO["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]


@pytest.mark.parametrize(
    ("doc", "flag", "want"),
    [
        pytest.param(PVC, "kubernetes.podspec-persistent-volume-claim",
                     f"must not set the field(s): {SPEC}.volumes[0].persistentVolumeClaim", id="pvc"),
        pytest.param(HOST_PATH, "kubernetes.podspec-volumes-hostpath",
                     f"must not set the field(s): {SPEC}.volumes[0].hostPath", id="hostPath"),
        pytest.param(FIELD_REF, "kubernetes.podspec-fieldref",
                     f"must not set the field(s): {SPEC}.containers[0].env[0].valueFrom.fieldRef", id="fieldRef"),
        pytest.param(AFFINITY, "kubernetes.podspec-affinity", f"must not set the field(s): {SPEC}.affinity",
                     id="affinity"),
        pytest.param(INIT, "kubernetes.podspec-init-containers", f"must not set the field(s): {SPEC}.initContainers",
                     id="init containers"),
        pytest.param(HOST_NETWORK, "kubernetes.podspec-hostnetwork", f"must not set the field(s): {SPEC}.hostNetwork",
                     id="hostNetwork"),
        pytest.param(POD_SECURITY, "kubernetes.podspec-securitycontext",
                     f"must not set the field(s): {SPEC}.securityContext.runAsUser", id="pod securityContext"),
        pytest.param(ADD_CAPS, "kubernetes.containerspec-addcapabilities",
                     f"must not set the field(s): {SPEC}.containers[0].securityContext.capabilities.add",
                     id="capabilities add"),
        pytest.param(TWO, "multi-container", f"expected exactly one, got both: {SPEC}.containers", id="multi-container"),
    ],
)
def test_a_disabled_feature_is_refused_and_an_enabled_one_accepted(doc: dict[str, Any], flag: str, want: str) -> None:
    assert check(doc, {flag: "disabled"}) == want
    assert check(doc, {flag: "enabled"}) == ""
    assert check(doc, {flag: "allowed"}) == ""


@pytest.mark.parametrize("doc", [PVC, HOST_PATH, FIELD_REF, AFFINITY, INIT, HOST_NETWORK, POD_SECURITY, ADD_CAPS],
                         ids=["pvc", "hostPath", "fieldRef", "affinity", "init", "hostNetwork", "securityContext",
                              "capabilities add"])
def test_knatives_defaults_refuse_the_gated_fields(doc: dict[str, Any]) -> None:
    assert check(doc).startswith("must not set the field(s): ")


def test_multi_container_and_empty_dir_are_on_by_default() -> None:
    empty_dir = hello(volumes=[{"name": "scratch", "emptyDir": {}}],
                      container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]})
    assert (check(TWO), check(empty_dir)) == ("", "")


def test_privileged_is_always_refused() -> None:
    privileged = hello(container={"securityContext": {"privileged": True}})
    everything = {key: "enabled" for key in ConfigSnapshot().features.flags}
    want = f"must not set the field(s): {SPEC}.containers[0].securityContext.privileged"
    assert (check(privileged), check(privileged, everything)) == (want, want)


def test_writable_claim_mounts_need_persistent_volume_write() -> None:
    writable = hello(volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                     container={"volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": False}]})
    claims = {"kubernetes.podspec-persistent-volume-claim": "enabled"}
    assert check(writable, claims) == (
        f"volume mount should be readOnly for this type of volume: {SPEC}.containers[0].volumeMounts[0].readOnly")
    assert check(writable, {**claims, "kubernetes.podspec-persistent-volume-write": "enabled"}) == ""


def test_a_container_name_kubernetes_would_refuse_is_refused_at_admission() -> None:
    got = check(hello(container={"name": "&Invalid"}))
    assert got.startswith(f"invalid value: &Invalid: {SPEC}.containers[0].name\n")
    assert "a lowercase RFC 1123 label must consist of" in got
