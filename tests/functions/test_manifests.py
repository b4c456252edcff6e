"""func.yaml, the source ConfigMap and the Knative Service `knserve func deploy` writes."""

from __future__ import annotations

import pytest

from functions import manifests
from functions.manifests import FunctionSpec, SpecError


@pytest.mark.parametrize(("document", "want"), [
    pytest.param({}, FunctionSpec(name="get-tax"), id="empty-takes-the-directory-name"),
    pytest.param(
        {"name": "tax", "style": "lambda", "handler": "handler:handler", "env": {"RATE": 0.047},
         "scale": {"min": 1, "max": 3}, "concurrency": 10, "timeout": 30},
        FunctionSpec(name="tax", style="lambda", handler="handler:handler", env={"RATE": "0.047"}, min_scale=1,
                     max_scale=3, concurrency=10, timeout_seconds=30),
        id="everything",
    ),
])
def test_read_spec(document, want):
    assert manifests.read_spec(document, default_name="get-tax") == want


@pytest.mark.parametrize(("document", "message"), [
    pytest.param({"name": "Get_Tax"}, "'Get_Tax' cannot name a function", id="name-kubernetes-refuses"),
    pytest.param({"name": "a" * 60}, "at most 50", id="name-too-long"),
    pytest.param({"style": "java"}, "style 'java' is not one of", id="unknown-style"),
    pytest.param({"scale": {"min": -1}}, "scale.min must be a whole number", id="negative-scale"),
    pytest.param({"concurency": 1}, "unknown field(s) concurency", id="typo"),
])
def test_read_spec_errors(document, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        manifests.read_spec(document, default_name="tax")


def test_source_config_map_is_named_by_content_and_immutable():
    spec = FunctionSpec(name="tax")
    files = {"handler.py": b"x = 1\n", "logo.png": b"\x89PNG\xff"}
    config_map = manifests.source_config_map(spec, "shop", files)
    assert config_map["metadata"]["name"] == f"tax-src-{manifests.source_digest(files)}"
    assert config_map["immutable"] is True
    assert config_map["data"] == {"handler.py": "x = 1\n"}
    assert config_map["binaryData"] == {"logo.png": "iVBOR/8="}
    changed = manifests.source_config_map(spec, "shop", {"handler.py": b"x = 2\n"})
    assert changed["metadata"]["name"] != config_map["metadata"]["name"]


def test_files_too_big_for_a_config_map_are_refused_with_the_largest_named():
    with pytest.raises(SpecError, match=r"at most 1000000.*largest: data.bin"):
        manifests.check_files({"handler.py": b"x", "data.bin": b"0" * 1_000_001})


def test_file_names_a_config_map_cannot_hold():
    with pytest.raises(SpecError, match="cannot go into a ConfigMap.*with space.py"):
        manifests.check_files({"with space.py": b""})


def test_function_service_locally():
    spec = FunctionSpec(name="tax", style="plain", handler="handler:main", env={"RATE": "0.047"}, min_scale=1,
                        max_scale=3, concurrency=10, timeout_seconds=30)
    service = manifests.function_service(spec, namespace="shop", config_map="tax-src-abc", deploy_id="d1",
                                         local_node=True)
    assert service == {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "tax", "namespace": "shop", "labels": {manifests.FUNCTION_LABEL: "tax"},
                     "annotations": {manifests.STYLE_ANNOTATION: "plain"}},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {manifests.DEPLOY_ANNOTATION: "d1", "autoscaling.knative.dev/min-scale": "1",
                                    "autoscaling.knative.dev/max-scale": "3"},
                    "labels": {manifests.FUNCTION_LABEL: "tax"},
                },
                "spec": {
                    "containers": [{
                        "image": manifests.RUNTIME_IMAGE,
                        "args": ["function"],
                        "env": [
                            {"name": "FUNCTION_DIR", "value": manifests.SOURCE_DIR},
                            {"name": "FUNCTION_DEPS_CACHE", "value": manifests.LOCAL_DEPS_CACHE},
                            {"name": "FUNCTION_TIMEOUT", "value": "30"},
                            {"name": "FUNCTION_HANDLER", "value": "handler:main"},
                            {"name": "FUNCTION_STYLE", "value": "plain"},
                            {"name": "RATE", "value": "0.047"},
                        ],
                        "volumeMounts": [{"name": "function-source", "mountPath": manifests.SOURCE_DIR,
                                          "readOnly": True}],
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                    }],
                    "volumes": [{"name": "function-source", "configMap": {"name": "tax-src-abc"}}],
                    "containerConcurrency": 10,
                    "timeoutSeconds": 30,
                },
            },
            "traffic": [{"latestRevision": True, "percent": 100}],
        },
    }


def test_function_service_in_a_cluster_gets_a_deps_volume():
    service = manifests.function_service(FunctionSpec(name="tax"), namespace="shop", config_map="c", deploy_id="d",
                                         local_node=False)
    pod = service["spec"]["template"]["spec"]
    assert pod["volumes"][1] == {"name": "function-deps", "emptyDir": {}}
    assert pod["containers"][0]["volumeMounts"][1] == {"name": "function-deps", "mountPath": manifests.DEPS_DIR}


@pytest.mark.parametrize(("stable", "percent", "tag", "want"), [
    pytest.param("tax-00002", 10, "canary", [{"revisionName": "tax-00002", "percent": 90},
                                            {"revisionName": "tax-x", "percent": 10, "tag": "canary"}], id="split"),
    pytest.param("tax-00002", None, "next", [{"revisionName": "tax-00002", "percent": 100},
                                            {"revisionName": "tax-x", "percent": 0, "tag": "next"}], id="tag-only"),
    pytest.param(None, 10, "canary", [{"revisionName": "tax-x", "percent": 100, "tag": "canary"}],
                 id="first-deploy-takes-all"),
])
def test_canary_traffic(stable, percent, tag, want):
    assert manifests.canary_traffic(stable_revision=stable, new_revision="tax-x", percent=percent, tag=tag) == want


def test_canary_percent_out_of_range():
    with pytest.raises(SpecError, match="from 0 to 100"):
        manifests.canary_traffic(stable_revision="a", new_revision="b", percent=120, tag=None)
