"""What ``knserve func deploy`` writes: a function's spec read from ``func.yaml``, the source
ConfigMap and the Knative Service that runs the function runtime. Pure builders; no I/O.

The source goes into an immutable ConfigMap named after the function and its content's hash
(``<name>-src-<hash>``), so each Revision keeps reading the files it was deployed with: a
rollback or a canary serves the old code. Every deploy stamps the template with a deploy id,
so every deploy is a new Revision even when nothing changed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from functions.styles import STYLES

RUNTIME_IMAGE: Final = "ghcr.io/knserve/knserve:0.1.0"
SOURCE_DIR: Final = "/var/knserve/function"
DEPS_DIR: Final = "/var/knserve/deps"
LOCAL_DEPS_CACHE: Final = "/var/tmp/knserve-functions"  # on a local node: shared by all its pods
FUNCTION_LABEL: Final = "functions.knserve.dev/function"
STYLE_ANNOTATION: Final = "functions.knserve.dev/style"
DEPLOY_ANNOTATION: Final = "functions.knserve.dev/deploy-id"
MAX_SOURCE_BYTES: Final = 1_000_000  # a ConfigMap holds at most 1 MiB, its metadata included
NAME_PATTERN: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME_LENGTH: Final = 50  # leaves room for "-00001" revision suffixes and "-src-<hash>"
KEY_PATTERN: Final = re.compile(r"^[-._a-zA-Z0-9]+$")
SKIPPED: Final = ("__pycache__", ".git", ".venv", "venv", ".mypy_cache", ".pytest_cache")


class SpecError(Exception):
    """func.yaml or the function's files are not deployable; the message is a sentence."""


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    style: str = ""  # empty: detected by the runtime
    handler: str = ""  # module:attribute; empty: detected
    env: Mapping[str, str] = field(default_factory=dict)
    min_scale: int | None = None
    max_scale: int | None = None
    concurrency: int | None = None
    timeout_seconds: int | None = None


def check_name(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.match(name):
        raise SpecError(
            f"{name!r} cannot name a function: Kubernetes wants at most {MAX_NAME_LENGTH} lower-case letters, digits "
            "and '-', starting with a letter and ending with a letter or digit (e.g. get-tax).")


def _int(document: Mapping[str, Any], key: str, where: str) -> int | None:
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"func.yaml: {where}{key} must be a whole number >= 0, not {value!r}.")
    return value


def read_spec(document: Mapping[str, Any], *, default_name: str) -> FunctionSpec:
    """A ``FunctionSpec`` from func.yaml's parsed content."""
    if not isinstance(document, Mapping):
        raise SpecError("func.yaml must hold a mapping (name:, style:, handler:, ...).")
    known = {"name", "style", "handler", "env", "scale", "concurrency", "timeout", "runtime"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise SpecError(f"func.yaml: unknown field(s) {', '.join(unknown)}; known are {', '.join(sorted(known))}.")
    name = str(document.get("name") or default_name)
    check_name(name)
    style = str(document.get("style") or "")
    if style and style not in STYLES:
        raise SpecError(f"func.yaml: style {style!r} is not one of {', '.join(STYLES)}.")
    env = document.get("env") or {}
    if not isinstance(env, Mapping):
        raise SpecError("func.yaml: env must be a mapping of names to values.")
    scale = document.get("scale") or {}
    if not isinstance(scale, Mapping):
        raise SpecError("func.yaml: scale must be a mapping with min and max.")
    return FunctionSpec(
        name=name, style=style, handler=str(document.get("handler") or ""),
        env={str(k): str(v) for k, v in env.items()},
        min_scale=_int(scale, "min", "scale."), max_scale=_int(scale, "max", "scale."),
        concurrency=_int(document, "concurrency", ""), timeout_seconds=_int(document, "timeout", ""),
    )


def source_digest(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + hashlib.sha256(files[key]).digest())
    return digest.hexdigest()[:10]


def check_files(files: Mapping[str, bytes]) -> None:
    bad = sorted(key for key in files if not KEY_PATTERN.match(key))
    if bad:
        raise SpecError(f"These files cannot go into a ConfigMap (names may hold letters, digits, '-', '_' and '.'): "
                        f"{', '.join(bad)}.")
    total = sum(len(key) + len(content) for key, content in files.items())
    if total > MAX_SOURCE_BYTES:
        largest = sorted(files, key=lambda key: -len(files[key]))[:3]
        raise SpecError(f"The function's files take {total} bytes; a ConfigMap holds at most {MAX_SOURCE_BYTES}. "
                        f"Move data out of the directory or list dependencies in requirements.txt "
                        f"(largest: {', '.join(largest)}).")


def source_config_map(spec: FunctionSpec, namespace: str, files: Mapping[str, bytes]) -> dict[str, Any]:
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, content in sorted(files.items()):
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
    config_map: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"{spec.name}-src-{source_digest(files)}", "namespace": namespace,
                     "labels": {FUNCTION_LABEL: spec.name}},
        "immutable": True, "data": data,
    }
    if binary:
        config_map["binaryData"] = binary
    return config_map


def function_service(spec: FunctionSpec, *, namespace: str, config_map: str, deploy_id: str, local_node: bool,
                     traffic: list[dict[str, Any]] | None = None, revision_name: str | None = None) -> dict[str, Any]:
    """The Knative Service that runs the function runtime over ``config_map``'s files."""
    # The deps cache: a local node's pods see the node's own files (its "image" is the host's
    # Python), so they share one directory there; in clusters each pod fills its own volume.
    env = [
        {"name": "FUNCTION_DIR", "value": SOURCE_DIR},
        {"name": "FUNCTION_DEPS_CACHE", "value": LOCAL_DEPS_CACHE if local_node else DEPS_DIR},
        {"name": "FUNCTION_TIMEOUT", "value": str(spec.timeout_seconds or 300)},
    ]
    if spec.handler:
        env.append({"name": "FUNCTION_HANDLER", "value": spec.handler})
    if spec.style:
        env.append({"name": "FUNCTION_STYLE", "value": spec.style})
    env += [{"name": key, "value": value} for key, value in sorted(spec.env.items())]
    annotations = {DEPLOY_ANNOTATION: deploy_id}
    if spec.min_scale is not None:
        annotations["autoscaling.knative.dev/min-scale"] = str(spec.min_scale)
    if spec.max_scale is not None:
        annotations["autoscaling.knative.dev/max-scale"] = str(spec.max_scale)
    template_metadata: dict[str, Any] = {"annotations": annotations, "labels": {FUNCTION_LABEL: spec.name}}
    if revision_name:
        template_metadata["name"] = revision_name
    template_spec: dict[str, Any] = {
        "containers": [{
            "image": RUNTIME_IMAGE,
            "args": ["function"],
            "env": env,
            "volumeMounts": [
                {"name": "function-source", "mountPath": SOURCE_DIR, "readOnly": True},
                *([] if local_node else [{"name": "function-deps", "mountPath": DEPS_DIR}]),
            ],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }],
        "volumes": [
            {"name": "function-source", "configMap": {"name": config_map}},
            *([] if local_node else [{"name": "function-deps", "emptyDir": {}}]),
        ],
    }
    if spec.concurrency is not None:
        template_spec["containerConcurrency"] = spec.concurrency
    if spec.timeout_seconds is not None:
        template_spec["timeoutSeconds"] = spec.timeout_seconds
    service: dict[str, Any] = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": spec.name, "namespace": namespace,
                     "labels": {FUNCTION_LABEL: spec.name},
                     "annotations": {STYLE_ANNOTATION: spec.style or "auto"}},
        "spec": {"template": {"metadata": template_metadata, "spec": template_spec}},
    }
    service["spec"]["traffic"] = traffic or [{"latestRevision": True, "percent": 100}]
    return service


def canary_traffic(*, stable_revision: str | None, new_revision: str, percent: int | None,
                   tag: str | None) -> list[dict[str, Any]]:
    """Traffic for a canary deploy: ``percent`` (0 with only a tag) to the new revision, the rest
    to the revision that served before; all of it to the new one when none did."""
    if not 0 <= (percent or 0) <= 100:
        raise SpecError(f"--traffic must be a percentage from 0 to 100, not {percent}.")
    if stable_revision is None:
        return [{"revisionName": new_revision, "percent": 100, **({"tag": tag} if tag else {})}]
    new_percent = percent or 0
    new: dict[str, Any] = {"revisionName": new_revision, "percent": new_percent}
    if tag:
        new["tag"] = tag
    return [{"revisionName": stable_revision, "percent": 100 - new_percent}, new]
