"""Revision defaults as Knative applies them, as pure functions fed the config snapshot.

* ``timeoutSeconds`` <- ``revision-timeout-seconds`` (300) when unset or 0; idle and
  response-start timeouts from config-defaults when set there and below the timeout;
* ``containerConcurrency`` <- ``container-concurrency`` (0);
* container names: ``user-container`` for one container; with several, the unnamed ones get
  ``user-container-0``, ``user-container-1``... (skipping taken names), init containers
  ``init-container-N`` likewise;
* resources from ``revision-*-request/limit`` when configured (``resources: {}`` otherwise);
* the serving container (the only one, or the one with a port) gets a readiness probe when it
  has none or one without a handler: ``tcpSocket`` with ``port: 0``, which means "the serving
  port" and is resolved only when the Deployment is built (so a later port change moves the
  probe with it), ``successThreshold: 1``; with ``periodSeconds`` set, ``failureThreshold: 3``
  and ``timeoutSeconds: 1``; gRPC probes get ``service: ""``;
* ``enableServiceLinks`` <- config-defaults (false) on create;
* volume mounts of read-only volume kinds (all but emptyDir, PVC, ephemeral) get ``readOnly``.

Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from typing import Any

from serving.apis.meta import ObjectMeta
from serving.apis.names import child_name
from serving.apis.v1.podspec_types import (
    Container,
    GRPCAction,
    Probe,
    ResourceRequirements,
    TCPSocketAction,
    Volume,
)
from serving.apis.v1.revision_types import Revision, RevisionSpec, RevisionTemplateSpec
from serving.config.snapshot import ConfigSnapshot


def _default_names(containers: list[Container], taken: set[str], default_name: str) -> list[Container]:
    out: list[Container] = []
    suffix = 0
    for container in containers:
        if not container.name:
            name = default_name
            if len(containers) > 1 or name in taken:
                while True:
                    name = child_name(default_name, f"-{suffix}")
                    suffix += 1
                    if name not in taken:
                        break
            taken.add(name)
            container = container.model_copy(update={"name": name})
        out.append(container)
    return out


def _with_readiness_defaults(container: Container, *, serving_container: bool) -> Container:
    probe = container.readiness_probe
    if serving_container:
        probe = probe or Probe()
        if probe.handler_count() == 0:
            probe = probe.model_copy(update={"tcp_socket": TCPSocketAction(port=0)})
    if probe is None:
        return container
    update: dict[str, Any] = {}
    if not probe.success_threshold:
        update["success_threshold"] = 1
    if probe.period_seconds:
        if not probe.failure_threshold:
            update["failure_threshold"] = 3
        if not probe.timeout_seconds:
            update["timeout_seconds"] = 1
    if update:
        probe = probe.model_copy(update=update)
    return container.model_copy(update={"readiness_probe": probe})


def _with_grpc_service_defaults(container: Container) -> Container:
    update: dict[str, Any] = {}
    for field in ("readiness_probe", "liveness_probe", "startup_probe"):
        probe: Probe | None = getattr(container, field)
        if probe is not None and probe.grpc is not None and probe.grpc.service is None:
            update[field] = probe.model_copy(update={"grpc": GRPCAction(**{**probe.grpc.model_dump(), "service": ""})})
    return container.model_copy(update=update) if update else container


def _with_resource_defaults(container: Container, config: ConfigSnapshot) -> Container:
    defaults = config.defaults
    resources = container.resources or ResourceRequirements()
    requests = dict(resources.requests or {})
    limits = dict(resources.limits or {})
    for name, request, limit in (
        ("cpu", defaults.revision_cpu_request, defaults.revision_cpu_limit),
        ("memory", defaults.revision_memory_request, defaults.revision_memory_limit),
        ("ephemeral-storage", defaults.revision_ephemeral_storage_request, defaults.revision_ephemeral_storage_limit),
    ):
        if request is not None and name not in requests:
            requests[name] = request
        if limit is not None and name not in limits:
            limits[name] = limit
    resources = resources.model_copy(update={"requests": requests or None, "limits": limits or None})
    return container.model_copy(update={"resources": resources})


def _with_read_only_mounts(container: Container, volumes: list[Volume]) -> Container:
    writable = {v.name for v in volumes if v.empty_dir is not None or v.persistent_volume_claim is not None
                or v.ephemeral is not None}
    if not container.volume_mounts:
        return container
    mounts = [m if m.name in writable else m.model_copy(update={"read_only": True}) for m in container.volume_mounts]
    return container.model_copy(update={"volume_mounts": mounts})


def default_revision_spec(
    spec: RevisionSpec, config: ConfigSnapshot, *, parent: ObjectMeta | None = None, in_create: bool = True
) -> RevisionSpec:
    """``spec`` with Knative's defaults filled in (a new object; ``spec`` is unchanged)."""
    defaults = config.defaults
    update: dict[str, Any] = {}
    timeout = spec.timeout_seconds
    if not timeout:
        timeout = defaults.revision_timeout_seconds
        update["timeout_seconds"] = timeout
    if spec.idle_timeout_seconds is None and 0 < defaults.revision_idle_timeout_seconds < timeout:
        update["idle_timeout_seconds"] = defaults.revision_idle_timeout_seconds
    if spec.response_start_timeout_seconds is None and 0 < defaults.revision_response_start_timeout_seconds < timeout:
        update["response_start_timeout_seconds"] = defaults.revision_response_start_timeout_seconds
    if spec.container_concurrency is None:
        update["container_concurrency"] = defaults.container_concurrency

    containers = list(spec.containers or [])
    init_containers = list(spec.init_containers or [])
    taken = {c.name for c in [*containers, *init_containers] if c.name}
    parent = parent or ObjectMeta()
    containers = _default_names(containers, taken, defaults.user_container_name(parent.name or "", parent.namespace or ""))
    init_containers = _default_names(
        init_containers, taken, defaults.init_container_name(parent.name or "", parent.namespace or "")
    )
    volumes = list(spec.volumes or [])
    single = len(containers) == 1
    defaulted: list[Container] = []
    for container in containers:
        container = _with_resource_defaults(container, config)
        container = _with_readiness_defaults(container, serving_container=single or bool(container.ports))
        container = _with_grpc_service_defaults(container)
        container = _with_read_only_mounts(container, volumes)
        defaulted.append(container)
    if spec.containers is not None:
        update["containers"] = defaulted
    if spec.init_containers is not None:
        update["init_containers"] = init_containers
    if spec.enable_service_links is None and in_create and defaults.enable_service_links is not None and containers:
        update["enable_service_links"] = defaults.enable_service_links
    return spec.model_copy(update=update)


def default_revision_template(
    template: RevisionTemplateSpec, config: ConfigSnapshot, *, parent: ObjectMeta | None = None, in_create: bool = True
) -> RevisionTemplateSpec:
    spec = default_revision_spec(template.spec, config, parent=parent, in_create=in_create)
    return template.model_copy(update={"spec": spec})


def default_revision(revision: Revision, config: ConfigSnapshot, *, old: Revision | None = None) -> Revision:
    """Knative leaves a Revision alone on update (its spec is immutable)."""
    result = revision.model_copy(deep=True)
    if old is not None:
        return result
    result.spec = default_revision_spec(revision.spec, config, parent=revision.metadata, in_create=True)
    return result
