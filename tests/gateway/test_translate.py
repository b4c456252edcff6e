"""OpenFaaS FunctionDeployments as Knative Services and back."""

from __future__ import annotations

import pytest

from gateway.translate import DeploymentError, function_status, knative_service, scale_annotations


@pytest.mark.parametrize(("labels", "want"), [
    pytest.param({}, {}, id="none"),
    pytest.param({"com.openfaas.scale.min": "2", "com.openfaas.scale.max": "5"},
                 {"autoscaling.knative.dev/min-scale": "2", "autoscaling.knative.dev/max-scale": "5"}, id="min-max"),
    pytest.param({"com.openfaas.scale.zero": "false"}, {"autoscaling.knative.dev/min-scale": "1"},
                 id="no-scale-to-zero"),
    pytest.param({"com.openfaas.scale.zero": "false", "com.openfaas.scale.min": "3"},
                 {"autoscaling.knative.dev/min-scale": "3"}, id="no-zero-keeps-a-higher-min"),
    pytest.param({"com.openfaas.scale.zero": "true"}, {}, id="zero-allowed"),
])
def test_scale_labels_map_onto_autoscaling_annotations(labels, want):
    assert scale_annotations(labels) == want


def test_function_deployment_becomes_a_knative_service():
    deployment = {
        "service": "nodeinfo", "image": "ghcr.io/knative/helloworld-go", "namespace": "fn",
        "envProcess": "node index.js", "envVars": {"TARGET": "faas"},
        "labels": {"com.openfaas.scale.min": "1", "team": "a"}, "annotations": {"topic": "orders"},
        "limits": {"memory": "128Mi", "cpu": ""},
    }
    assert knative_service(deployment, namespace="fn") == {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "nodeinfo", "namespace": "fn",
                     "labels": {"com.openfaas.scale.min": "1", "team": "a", "faas_function": "nodeinfo",
                                "functions.knserve.dev/gateway": "true"},
                     "annotations": {"topic": "orders"}},
        "spec": {"template": {
            "metadata": {"labels": {"com.openfaas.scale.min": "1", "team": "a", "faas_function": "nodeinfo"},
                         "annotations": {"topic": "orders", "autoscaling.knative.dev/min-scale": "1"}},
            "spec": {"containers": [{
                "image": "ghcr.io/knative/helloworld-go",
                "env": [{"name": "TARGET", "value": "faas"}, {"name": "fprocess", "value": "node index.js"}],
                "resources": {"limits": {"memory": "128Mi"}},
            }]},
        }},
    }


@pytest.mark.parametrize(("deployment", "message"), [
    pytest.param({"image": "x"}, "service", id="no-name"),
    pytest.param({"service": "a"}, "image is required", id="no-image"),
    pytest.param({"service": "a", "image": "x", "labels": {"com.openfaas.scale.max": "lots"}}, "whole number",
                 id="bad-scale"),
])
def test_deployment_errors(deployment, message):
    with pytest.raises(DeploymentError, match=message):
        knative_service(deployment, namespace="default")


def test_a_service_reads_back_as_a_function_status():
    service = knative_service({"service": "hi", "image": "img", "envProcess": "cat", "envVars": {"A": "1"},
                               "labels": {"team": "a"}}, namespace="fn")
    service["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    service["metadata"]["annotations"]["serving.knative.dev/creator"] = "admin"
    service["status"] = {"url": "http://hi.fn.example.com"}
    assert function_status(service, replicas=2, available=1, invocations=7) == {
        "name": "hi", "image": "img", "namespace": "fn", "envProcess": "cat", "envVars": {"A": "1"},
        "labels": {"team": "a", "faas_function": "hi"},
        "annotations": {"knserve.dev/url": "http://hi.fn.example.com"},
        "replicas": 2, "availableReplicas": 1, "invocationCount": 7, "createdAt": "2026-01-01T00:00:00Z",
    }
