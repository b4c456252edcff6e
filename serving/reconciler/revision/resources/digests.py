"""A Revision's ``status.containerStatuses`` and ``initContainerStatuses``: one entry per
container, its name and the image digest its tag resolved to, as Knative fills them.

knserve never asks a registry (no traffic leaves the machine for it). A digest comes from:

* the image itself when it is already pinned (``repo@sha256:...``), as in Knative;
* else what a node reports for the revision's pods (a container status ``imageID`` that
  carries a ``sha256`` digest), written ``<repository>@sha256:...`` as Knative writes it.

Images from a registry in ``config-deployment``'s ``registries-skipping-tag-resolving`` or one
whose host ends in ``.local`` get no digest, as in Knative. An image nothing has resolved yet keeps an
entry without ``imageDigest`` (what Knative shows for an image it did not resolve); the
Revision is never held back for it, and a digest once found is kept (pods come and go).
Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kube.objects import JSON
from serving.apis.v1 import Container, Revision
from serving.apis.v1.revision_types import ContainerStatus
from serving.config.snapshot import ConfigSnapshot

DEFAULT_REGISTRY = "index.docker.io"
_DIGEST_MARK = "@sha256:"


def registry_of(image: str) -> str:
    """The registry host of an image reference (Docker Hub when the first part is no host)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return DEFAULT_REGISTRY


def repository_of(image: str) -> str:
    """The reference without its tag or digest."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > last_slash else name


def skips_resolution(image: str, config: ConfigSnapshot) -> bool:
    registry = registry_of(image)
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    return registry in config.deployment.registries_skipping_tag_resolving or host.endswith(".local")


def _reported_digests(pods: Iterable[JSON], init: bool) -> dict[str, str]:
    """Container name -> ``sha256:...`` a node reported for it."""
    field = "initContainerStatuses" if init else "containerStatuses"
    found: dict[str, str] = {}
    for pod in pods:
        for status in (pod.get("status") or {}).get(field) or []:
            image_id = str(status.get("imageID") or "")
            index = image_id.find(_DIGEST_MARK)
            if status.get("name") and index >= 0:
                found.setdefault(status["name"], image_id[index + 1:])
    return found


def _statuses(containers: Sequence[Container], previous: Sequence[ContainerStatus] | None, pods: list[JSON],
              config: ConfigSnapshot, *, init: bool) -> list[ContainerStatus] | None:
    if not containers:
        return None
    reported = _reported_digests(pods, init)
    known = {status.name: status.image_digest for status in previous or [] if status.image_digest}
    out = []
    for container in containers:
        name, image = container.name or "", container.image or ""
        digest: str | None = None
        if _DIGEST_MARK in image:
            digest = image
        elif not skips_resolution(image, config):
            digest = known.get(name)
            if digest is None and name in reported:
                digest = f"{repository_of(image)}@{reported[name]}"
        out.append(ContainerStatus(name=name, image_digest=digest))
    return out


def container_statuses(
    revision: Revision, config: ConfigSnapshot, pods: Iterable[JSON]
) -> tuple[list[ContainerStatus] | None, list[ContainerStatus] | None]:
    """(containerStatuses, initContainerStatuses) for ``revision`` given its pods."""
    listed = list(pods)
    status = revision.status
    return (
        _statuses(revision.spec.containers or [], status.container_statuses, listed, config, init=False),
        _statuses(revision.spec.init_containers or [], status.init_container_statuses, listed, config, init=True),
    )
