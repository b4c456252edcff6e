"""Option-style factories of test objects: ``service("hello", with_traffic(...), ready)``.

API objects are plain JSON, as the API server stores them and the informer caches hold them
(``uid``, ``generation`` 1, ``resourceVersion``, ``creationTimestamp``; ``as_written`` gives
what a user applies); options change what a test cares about. A Revision comes as the
Configuration reconciler writes it (Knative's defaults for the timeout and concurrency, the
container named ``user-container``); a Pod and a PodAutoscaler as the controller's Deployment
and Revision reconciler make them for a Revision.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from knserve.networking import REVISION_LABEL
from kube.objects import JSON
from serving.apis.conditions import format_time

Option = Callable[[JSON], None]

SERVING_V1 = "serving.knative.dev/v1"
NAMESPACE = "default"
CREATED = "2026-01-01T00:00:00Z"
IMAGE = "ghcr.io/knative/helloworld-go:latest"
# Knative's hello-world Service as its documentation writes it (YAML, for kubectl apply)
HELLO_WORLD_YAML = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          ports:
            - containerPort: 8080
          env:
            - name: TARGET
              value: "World"
"""


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


def container(image: str = IMAGE, **fields: Any) -> JSON:
    return {"image": image, **fields}


def template(*containers: JSON, name: str | None = None, annotations: dict[str, str] | None = None) -> JSON:
    metadata: JSON = {}
    if name:
        metadata["name"] = name
    if annotations:
        metadata["annotations"] = annotations
    spec: JSON = {"spec": {"containers": list(containers) or [container()]}}
    return {"metadata": metadata, **spec} if metadata else spec


def service(name: str = "hello", *options: Option) -> JSON:
    return build("Service", SERVING_V1, name, with_template(template()), *options)


def configuration(name: str = "hello", *options: Option) -> JSON:
    return build("Configuration", SERVING_V1, name, with_template(template()), *options)


def route(name: str = "hello", *options: Option) -> JSON:
    return build("Route", SERVING_V1, name, *options)


def revision(name: str = "hello-00001", *options: Option) -> JSON:
    obj = build("Revision", SERVING_V1, name, *options)
    obj["spec"].setdefault("containers", [container(name="user-container")])
    obj["spec"].setdefault("timeoutSeconds", 300)
    obj["spec"].setdefault("containerConcurrency", 0)
    return obj


def as_written(obj: JSON) -> JSON:
    """The object as a user writes it for ``kubectl apply``: what the API server sets removed."""
    written = copy.deepcopy(obj)
    for key in ("uid", "generation", "resourceVersion", "creationTimestamp"):
        written["metadata"].pop(key, None)
    return written


def pod(name: str = "hello-00001-deployment-abc-1", *options: Option, revision: str = "hello-00001") -> JSON:
    """A running pod of ``revision``; no IP and no conditions unless options give them."""
    return build("Pod", "v1", name, with_labels({REVISION_LABEL: revision}),
                 with_status(phase="Running", startTime=CREATED), *options)


def pod_autoscaler(name: str = "hello-00001", *options: Option) -> JSON:
    obj = build("PodAutoscaler", "autoscaling.internal.knative.dev/v1alpha1", name,
                with_labels({REVISION_LABEL: name}), *options)
    obj["spec"].setdefault("containerConcurrency", 0)
    obj["spec"].setdefault("scaleTargetRef", {"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": f"{name}-deployment"})
    return obj


# --- options -----------------------------------------------------------------------------------
def _template_spec(obj: JSON) -> JSON:
    """The RevisionSpec: a Revision's own, or the template's of a Service or Configuration."""
    if obj["kind"] == "Revision":
        return obj["spec"]  # type: ignore[no-any-return]
    return obj["spec"].setdefault("template", {}).setdefault("spec", {})  # type: ignore[no-any-return]


def with_template(value: JSON) -> Option:
    def apply(obj: JSON) -> None:
        obj["spec"]["template"] = copy.deepcopy(value)

    return apply


def with_template_name(name: str) -> Option:
    def apply(obj: JSON) -> None:
        obj["spec"]["template"].setdefault("metadata", {})["name"] = name

    return apply


def with_template_annotations(annotations: dict[str, str]) -> Option:
    def apply(obj: JSON) -> None:
        obj["spec"]["template"].setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)

    return apply


def with_containers(*containers: JSON) -> Option:
    def apply(obj: JSON) -> None:
        _template_spec(obj)["containers"] = [copy.deepcopy(c) for c in containers]

    return apply


def with_spec(**fields: Any) -> Option:
    """Fields of the (template's) RevisionSpec."""

    def apply(obj: JSON) -> None:
        _template_spec(obj).update(copy.deepcopy(fields))

    return apply


def with_traffic(*targets: JSON) -> Option:
    def apply(obj: JSON) -> None:
        obj["spec"]["traffic"] = [copy.deepcopy(t) for t in targets]

    return apply


def with_generation(generation: int, observed: int | None = None) -> Option:
    def apply(obj: JSON) -> None:
        obj["metadata"]["generation"] = generation
        if observed is not None:
            obj.setdefault("status", {})["observedGeneration"] = observed

    return apply


def with_labels(labels: dict[str, str]) -> Option:
    def apply(obj: JSON) -> None:
        obj["metadata"].setdefault("labels", {}).update(labels)

    return apply


def with_annotations(annotations: dict[str, str]) -> Option:
    def apply(obj: JSON) -> None:
        obj["metadata"].setdefault("annotations", {}).update(annotations)

    return apply


def owned_by(owner: JSON) -> Option:
    def apply(obj: JSON) -> None:
        obj["metadata"]["ownerReferences"] = [{
            "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
        }]

    return apply


def revision_of(configuration_name: str, generation: int = 1) -> Option:
    def apply(obj: JSON) -> None:
        labels = obj["metadata"].setdefault("labels", {})
        labels["serving.knative.dev/configuration"] = configuration_name
        labels["serving.knative.dev/configurationGeneration"] = str(generation)
        obj["metadata"]["ownerReferences"] = [{
            "apiVersion": SERVING_V1, "kind": "Configuration", "name": configuration_name,
            "uid": f"configuration-{configuration_name}-uid", "controller": True, "blockOwnerDeletion": True,
        }]

    return apply


def deleting(obj: JSON) -> None:
    obj["metadata"]["deletionTimestamp"] = CREATED


def with_status(**fields: Any) -> Option:
    def apply(obj: JSON) -> None:
        obj.setdefault("status", {}).update(fields)

    return apply


def with_condition(kind: str, status: str, *, reason: str | None = None, message: str | None = None) -> Option:
    """Put a status condition in place of the one of its type."""
    condition = {"type": kind, "status": status, **({"reason": reason} if reason else {}),
                 **({"message": message} if message else {})}

    def apply(obj: JSON) -> None:
        conditions = obj.setdefault("status", {}).setdefault("conditions", [])
        conditions[:] = [c for c in conditions if c["type"] != kind] + [condition]

    return apply


def with_container_statuses(*statuses: JSON) -> Option:
    return with_status(containerStatuses=[copy.deepcopy(status) for status in statuses])


def pod_ready(is_ready: bool = True) -> Option:
    """A pod's ``Ready`` condition."""
    return with_condition("Ready", "True" if is_ready else "False")


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


def pa_condition(kind: str, status: str, *, since: float, reason: str = "") -> JSON:
    """A PodAutoscaler condition as the autoscaler writes it: ``since`` is epoch seconds."""
    condition = {"type": kind, "status": status, "lastTransitionTime": format_time(since)}
    return {**condition, "reason": reason} if reason else condition
