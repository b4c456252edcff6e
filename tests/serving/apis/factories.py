"""Option-style factories for API objects in tests: ``service("hello", with_traffic(...))``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]
Option = Callable[[Doc], None]

IMAGE = "ghcr.io/knative/helloworld-go:latest"


def container(**fields: Any) -> Doc:
    return {"image": IMAGE, **fields}


def _template_spec(doc: Doc) -> Doc:
    if doc["kind"] == "Revision":
        return doc["spec"]
    return doc["spec"].setdefault("template", {}).setdefault("spec", {})


def service(name: str = "hello", *options: Option) -> Doc:
    doc: Doc = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [container()]}}},
    }
    for option in options:
        option(doc)
    return doc


def configuration(name: str = "hello", *options: Option) -> Doc:
    doc = service(name, *options)
    doc["kind"] = "Configuration"
    doc["spec"].pop("traffic", None)
    return doc


def revision(name: str = "hello-00001", *options: Option) -> Doc:
    doc: Doc = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [container()]},
    }
    for option in options:
        option(doc)
    return doc


def route(name: str = "hello", *options: Option) -> Doc:
    doc: Doc = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Route",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"traffic": [{"configurationName": name, "percent": 100}]},
    }
    for option in options:
        option(doc)
    return doc


# --- options ------------------------------------------------------------------------------
def with_traffic(*targets: Doc) -> Option:
    def apply(doc: Doc) -> None:
        doc["spec"]["traffic"] = [copy.deepcopy(t) for t in targets]
    return apply


def with_containers(*containers: Doc) -> Option:
    def apply(doc: Doc) -> None:
        _template_spec(doc)["containers"] = [copy.deepcopy(c) for c in containers]
    return apply


def with_spec(**fields: Any) -> Option:
    """Fields of the (template's) RevisionSpec."""
    def apply(doc: Doc) -> None:
        _template_spec(doc).update(copy.deepcopy(fields))
    return apply


def with_template_name(name: str) -> Option:
    def apply(doc: Doc) -> None:
        doc["spec"]["template"].setdefault("metadata", {})["name"] = name
    return apply


def with_template_annotations(annotations: dict[str, str]) -> Option:
    def apply(doc: Doc) -> None:
        doc["spec"]["template"].setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
    return apply


def with_annotations(annotations: dict[str, str]) -> Option:
    def apply(doc: Doc) -> None:
        doc["metadata"].setdefault("annotations", {}).update(annotations)
    return apply


def with_labels(labels: dict[str, str]) -> Option:
    def apply(doc: Doc) -> None:
        doc["metadata"].setdefault("labels", {}).update(labels)
    return apply
