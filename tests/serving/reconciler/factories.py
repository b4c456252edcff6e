"""Option-style factories of API objects for the reconciler tests (plain JSON dicts, as the
informer caches hold them)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kube.objects import JSON

Option = Callable[[JSON], None]

NAMESPACE = "default"
CREATED = "2026-01-01T00:00:00Z"


def build(kind: str, api_version: str, name: str, *options: Option, namespace: str = NAMESPACE) -> JSON:
    obj: JSON = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "uid": f"{kind.lower()}-{name}-uid",
                     "generation": 1, "resourceVersion": "1", "creationTimestamp": CREATED},
        "spec": {},
    }
    for option in options:
        option(obj)
    return obj


def container(image: str = "ghcr.io/knative/helloworld-go:latest", **fields: Any) -> JSON:
    return {"image": image, **fields}


def template(*containers: JSON, name: str | None = None, annotations: dict[str, str] | None = None) -> JSON:
    metadata: JSON = {}
    if name:
        metadata["name"] = name
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": {"containers": list(containers) or [container()]}}


def service(name: str = "hello", *options: Option) -> JSON:
    return build("Service", "serving.knative.dev/v1", name, with_template(template()), *options)


def configuration(name: str = "hello", *options: Option) -> JSON:
    return build("Configuration", "serving.knative.dev/v1", name, with_template(template()), *options)


def route(name: str = "hello", *options: Option) -> JSON:
    return build("Route", "serving.knative.dev/v1", name, *options)


def revision(name: str = "hello-00001", *options: Option) -> JSON:
    obj = build("Revision", "serving.knative.dev/v1", name, *options)
    obj["spec"].setdefault("containers", [container(name="user-container")])
    obj["spec"].setdefault("timeoutSeconds", 300)
    obj["spec"].setdefault("containerConcurrency", 0)
    return obj


# --- options -----------------------------------------------------------------------------------
def with_template(value: JSON) -> Option:
    def apply(obj: JSON) -> None:
        obj["spec"]["template"] = copy.deepcopy(value)

    return apply


def with_traffic(*targets: JSON) -> Option:
    def apply(obj: JSON) -> None:
        obj["spec"]["traffic"] = [dict(t) for t in targets]

    return apply


def with_generation(generation: int, observed: int | None = None) -> Option:
    def apply(obj: JSON) -> None:
        obj["metadata"]["generation"] = generation
        if observed is not None:
            obj.setdefault("status", {})["observedGeneration"] = observed

    return apply


def with_labels(**labels: str) -> Option:
    def apply(obj: JSON) -> None:
        obj["metadata"].setdefault("labels", {}).update({k.replace("__", "/").replace("_", "."): v
                                                         for k, v in labels.items()})

    return apply


def with_label(key: str, value: str) -> Option:
    def apply(obj: JSON) -> None:
        obj["metadata"].setdefault("labels", {})[key] = value

    return apply


def with_annotation(key: str, value: str) -> Option:
    def apply(obj: JSON) -> None:
        obj["metadata"].setdefault("annotations", {})[key] = value

    return apply


def owned_by(owner: JSON) -> Option:
    def apply(obj: JSON) -> None:
        obj["metadata"]["ownerReferences"] = [{
            "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
        }]

    return apply


def deleting(obj: JSON) -> None:
    obj["metadata"]["deletionTimestamp"] = CREATED


def with_status(**fields: Any) -> Option:
    def apply(obj: JSON) -> None:
        obj.setdefault("status", {}).update(fields)

    return apply


def ready(obj: JSON) -> None:
    """Ready=True and observedGeneration == generation."""
    status = obj.setdefault("status", {})
    status["observedGeneration"] = obj["metadata"]["generation"]
    conditions = [c for c in status.get("conditions") or [] if c["type"] != "Ready"]
    status["conditions"] = [*conditions, {"type": "Ready", "status": "True", "lastTransitionTime": CREATED}]


def failed(reason: str, message: str) -> Option:
    def apply(obj: JSON) -> None:
        status = obj.setdefault("status", {})
        status["observedGeneration"] = obj["metadata"]["generation"]
        status["conditions"] = [{"type": "Ready", "status": "False", "reason": reason, "message": message,
                                 "lastTransitionTime": CREATED}]

    return apply


def revision_of(configuration_name: str, generation: int = 1) -> Option:
    def apply(obj: JSON) -> None:
        labels = obj["metadata"].setdefault("labels", {})
        labels["serving.knative.dev/configuration"] = configuration_name
        labels["serving.knative.dev/configurationGeneration"] = str(generation)
        obj["metadata"]["ownerReferences"] = [{
            "apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "name": configuration_name,
            "uid": f"configuration-{configuration_name}-uid", "controller": True, "blockOwnerDeletion": True,
        }]

    return apply
