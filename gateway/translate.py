"""OpenFaaS's gateway objects and Knative Services, both ways. Pure; no I/O.

A ``FunctionDeployment`` (what ``faas-cli deploy`` posts) becomes an ordinary Knative Service
named after the function: its image, ``envProcess`` as ``fprocess``, ``envVars``, labels and
annotations, with OpenFaaS's scaling labels mapped onto Knative's autoscaling annotations:

    com.openfaas.scale.min   -> autoscaling.knative.dev/min-scale
    com.openfaas.scale.max   -> autoscaling.knative.dev/max-scale
    com.openfaas.scale.zero  "false" keeps at least one replica (min-scale >= 1)

A Knative Service (with its latest ready Revision's replica counts) reads back as a
``FunctionStatus`` (what ``faas-cli list`` and ``describe`` show).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

SCALE_MIN: Final = "com.openfaas.scale.min"
SCALE_MAX: Final = "com.openfaas.scale.max"
SCALE_ZERO: Final = "com.openfaas.scale.zero"
MIN_SCALE: Final = "autoscaling.knative.dev/min-scale"
MAX_SCALE: Final = "autoscaling.knative.dev/max-scale"
GATEWAY_LABEL: Final = "functions.knserve.dev/gateway"
FUNCTION_LABEL: Final = "faas_function"
NAME_ANNOTATION_PREFIXES: Final = ("serving.knative.dev/", "kubectl.kubernetes.io/")


class DeploymentError(Exception):
    """The FunctionDeployment cannot be served; answered 400 with this sentence."""


def _scale(labels: Mapping[str, str], key: str) -> int | None:
    value = labels.get(key)
    if value in (None, ""):
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise DeploymentError(f"label {key} must be a whole number, not {value!r}") from None
    if number < 0:
        raise DeploymentError(f"label {key} must be >= 0, not {number}")
    return number


def scale_annotations(labels: Mapping[str, str]) -> dict[str, str]:
    minimum, maximum = _scale(labels, SCALE_MIN), _scale(labels, SCALE_MAX)
    if str(labels.get(SCALE_ZERO, "")).lower() == "false":
        minimum = max(1, minimum or 0)
    annotations: dict[str, str] = {}
    if minimum is not None:
        annotations[MIN_SCALE] = str(minimum)
    if maximum is not None:
        annotations[MAX_SCALE] = str(maximum)
    return annotations


def knative_service(deployment: Mapping[str, Any], *, namespace: str) -> dict[str, Any]:
    """The Knative Service for a FunctionDeployment."""
    name = deployment.get("service") or ""
    image = deployment.get("image") or ""
    if not name:
        raise DeploymentError("service (the function's name) is required")
    if not image:
        raise DeploymentError("image is required")
    labels = {str(k): str(v) for k, v in (deployment.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (deployment.get("annotations") or {}).items()}
    env = [{"name": str(k), "value": str(v)} for k, v in sorted((deployment.get("envVars") or {}).items())]
    if deployment.get("envProcess"):
        env.append({"name": "fprocess", "value": str(deployment["envProcess"])})
    container: dict[str, Any] = {"image": image}
    if env:
        container["env"] = env
    limits, requests = deployment.get("limits") or {}, deployment.get("requests") or {}
    resources = {kind: {k: v for k, v in values.items() if v} for kind, values in
                 (("limits", limits), ("requests", requests)) if any(values.values())}
    if resources:
        container["resources"] = resources
    template_annotations = {**annotations, **scale_annotations(labels)}
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**labels, FUNCTION_LABEL: name, GATEWAY_LABEL: "true"},
                     "annotations": annotations},
        "spec": {"template": {
            "metadata": {"labels": {**labels, FUNCTION_LABEL: name}, "annotations": template_annotations},
            "spec": {"containers": [container]},
        }},
    }


def function_status(service: Mapping[str, Any], *, replicas: int = 0, available: int = 0,
                    invocations: float = 0) -> dict[str, Any]:
    """OpenFaaS's FunctionStatus for a Knative Service."""
    metadata = service.get("metadata") or {}
    template = (service.get("spec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or [{}]
    env = {e.get("name"): e.get("value", "") for e in containers[0].get("env") or []}
    process = env.pop("fprocess", "")
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k not in (GATEWAY_LABEL,)}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if not k.startswith(NAME_ANNOTATION_PREFIXES)}
    status: dict[str, Any] = {
        "name": metadata.get("name", ""),
        "image": containers[0].get("image", ""),
        "namespace": metadata.get("namespace", ""),
        "envProcess": process,
        "envVars": env,
        "labels": labels,
        "annotations": annotations,
        "replicas": replicas,
        "availableReplicas": available,
        "invocationCount": invocations,
        "createdAt": metadata.get("creationTimestamp", ""),
    }
    url = (service.get("status") or {}).get("url")
    if url:
        status["annotations"] = {**annotations, "knserve.dev/url": url}
    return status


def split_function_name(name: str, default_namespace: str) -> tuple[str, str]:
    """``name.namespace`` as OpenFaaS writes a function in another namespace."""
    function, _, namespace = name.partition(".")
    return function, namespace or default_namespace
