"""The cluster install as the tests see it: which paths it applies and their objects.

``INSTALL`` is the list the install section of config/README.md tells users to apply, in
that order; a test keeps the two in step. Pure reading of files; no other side effects.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
CONFIG = REPOSITORY / "config"
INSTALL = ("100-namespace.yaml", "200-roles", "300-resources", "400-webhooks.yaml", "configmaps", "deployments")
"""What `kubectl apply` gets, relative to config/ (config/local is for `knserve local` only)."""
IMAGE = "ghcr.io/knserve/knserve:0.1.0"
ENVOY_IMAGE = "envoyproxy/envoy:v1.40-latest"


def files(entry: str) -> list[Path]:
    """The manifest files of one install entry, in the order kubectl applies them."""
    path = CONFIG / entry
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    return [path]


def install_files() -> list[Path]:
    return [file for entry in INSTALL for file in files(entry)]


@functools.cache
def _parsed(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(doc for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader) if doc is not None)


def documents(path: Path) -> list[dict[str, Any]]:
    """The objects in one file (parsed once per test run; callers get their own copies)."""
    return copy.deepcopy(list(_parsed(path)))


def install_objects() -> list[dict[str, Any]]:
    return [doc for path in install_files() for doc in documents(path)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in install_objects() if doc["kind"] == kind]


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def deployment_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for deployment in of_kind("Deployment"):
        for container in containers(deployment):
            yield deployment, container


VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def service_link_variables(service: dict[str, Any]) -> dict[str, str]:
    """The environment the kubelet gives pods in the Service's namespace, with sample values."""
    prefix = service["metadata"]["name"].upper().replace("-", "_") + "_SERVICE_"
    ports = service["spec"]["ports"]
    found = {prefix + "HOST": "10.96.0.10", prefix + "PORT": str(ports[0]["port"])}
    for port in ports:
        if "name" in port:
            found[prefix + "PORT_" + port["name"].upper().replace("-", "_")] = str(port["port"])
    return found


def expand(text: str, variables: dict[str, str]) -> str:
    """``$(NAME)`` references replaced the way the kubelet does (unknown names are kept)."""
    return VARIABLE.sub(lambda match: variables.get(match.group(1), match.group(0)), text)
