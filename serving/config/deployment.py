"""``config-deployment``: the queue-proxy sidecar and how revision Deployments are made.

Knative's keys (``queue-sidecar-image``, ``progress-deadline``, ``queue-sidecar-*`` resources,
``registries-skipping-tag-resolving``, ``digest-resolution-timeout``) plus one of knserve's:

* ``queue-sidecar-command`` — knserve's node agent runs containers as processes, so the
  sidecar needs a command rather than only an image. Default ``knserve queue-proxy``; split
  like a shell command line (quotes allowed). A cluster with a container runtime ignores it
  and runs ``queue-sidecar-image``.

Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from typing import Final

from serving.config.parsers import Reader

NAME: Final = "config-deployment"
DEFAULT_QUEUE_SIDECAR_IMAGE: Final = "ghcr.io/knserve/knserve:0.1.0"
DEFAULT_QUEUE_SIDECAR_COMMAND: Final = ("knserve", "queue-proxy")


@dataclasses.dataclass(frozen=True)
class DeploymentConfig:
    queue_sidecar_image: str = DEFAULT_QUEUE_SIDECAR_IMAGE
    queue_sidecar_command: tuple[str, ...] = DEFAULT_QUEUE_SIDECAR_COMMAND
    progress_deadline_seconds: float = 600.0
    digest_resolution_timeout_seconds: float = 10.0
    registries_skipping_tag_resolving: frozenset[str] = frozenset({"kind.local", "ko.local", "dev.local"})
    queue_sidecar_cpu_request: str | None = "25m"
    queue_sidecar_cpu_limit: str | None = None
    queue_sidecar_memory_request: str | None = None
    queue_sidecar_memory_limit: str | None = None
    queue_sidecar_ephemeral_storage_request: str | None = None
    queue_sidecar_ephemeral_storage_limit: str | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, str] | None) -> DeploymentConfig:
        read = Reader(NAME, data)
        image = read.string(DEFAULT_QUEUE_SIDECAR_IMAGE, "queue-sidecar-image", "queueSidecarImage")
        if not image:
            raise read.error("queue-sidecar-image", "cannot be empty")
        raw_command = read.string(" ".join(DEFAULT_QUEUE_SIDECAR_COMMAND), "queue-sidecar-command")
        try:
            command = tuple(shlex.split(raw_command))
        except ValueError as error:
            raise read.error("queue-sidecar-command", f"cannot be split into words: {error}") from None
        if not command:
            raise read.error("queue-sidecar-command", "cannot be empty")
        deadline = read.duration(600.0, "progress-deadline", "progressDeadline")
        if deadline <= 0:
            raise read.error("progress-deadline", f"cannot be a non-positive duration, was {read.string('', 'progress-deadline', 'progressDeadline')}")
        if deadline != int(deadline):
            raise read.error("progress-deadline", "must be rounded to a whole second")
        digest_timeout = read.duration(10.0, "digest-resolution-timeout", "digestResolutionTimeout")
        if digest_timeout <= 0:
            raise read.error("digest-resolution-timeout", "cannot be a non-positive duration")
        registries = read.string(
            ",".join(sorted(cls.registries_skipping_tag_resolving)),
            "registries-skipping-tag-resolving",
            "registriesSkippingTagResolving",
        )
        return cls(
            queue_sidecar_image=image,
            queue_sidecar_command=command,
            progress_deadline_seconds=deadline,
            digest_resolution_timeout_seconds=digest_timeout,
            registries_skipping_tag_resolving=frozenset(r.strip() for r in registries.split(",") if r.strip()),
            queue_sidecar_cpu_request=read.quantity("queue-sidecar-cpu-request", "queueSidecarCPURequest") or "25m",
            queue_sidecar_cpu_limit=read.quantity("queue-sidecar-cpu-limit", "queueSidecarCPULimit"),
            queue_sidecar_memory_request=read.quantity("queue-sidecar-memory-request", "queueSidecarMemoryRequest"),
            queue_sidecar_memory_limit=read.quantity("queue-sidecar-memory-limit", "queueSidecarMemoryLimit"),
            queue_sidecar_ephemeral_storage_request=read.quantity(
                "queue-sidecar-ephemeral-storage-request", "queueSidecarEphemeralStorageRequest"
            ),
            queue_sidecar_ephemeral_storage_limit=read.quantity(
                "queue-sidecar-ephemeral-storage-limit", "queueSidecarEphemeralStorageLimit"
            ),
        )
