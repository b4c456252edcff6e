"""Pure builder of a Revision's Deployment: the user container plus the queue-proxy sidecar.

The user container keeps what the user wrote, with its port renamed ``user-port``, the
environment ``PORT``, ``K_REVISION``, ``K_CONFIGURATION``, ``K_SERVICE`` added, its HTTP, TCP
or gRPC readiness probe removed (the queue-proxy runs it, from ``SERVING_READINESS_PROBE``) but
an exec one kept (the kubelet runs it in the user container, with its environment and volumes,
and the queue-proxy probes the user port over TCP), a ``preStop`` that waits for the
queue-proxy to drain, and ``FallbackToLogsOnError`` termination messages.
The queue-proxy gets its image and command from ``config-deployment``, ports 8012 (named
``http`` or ``h2c``), 8022, 9090, 9091, Knative's environment, and a readiness probe on 8012
carrying ``K-Network-Probe: queue``. ``terminationGracePeriodSeconds`` is the revision's
timeout. ``replicas`` is the initial scale; after creation the controller never writes it.
Pure; no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from knserve.networking import (
    AUTOSCALING_STATS_PORT,
    CONFIGURATION_LABEL,
    DEFAULT_USER_PORT,
    ENV_CONTAINER_CONCURRENCY,
    ENV_QUEUE_SERVING_PORT,
    ENV_REVISION_IDLE_TIMEOUT_SECONDS,
    ENV_REVISION_RESPONSE_START_TIMEOUT_SECONDS,
    ENV_REVISION_TIMEOUT_SECONDS,
    ENV_SERVING_CONFIGURATION,
    ENV_SERVING_NAMESPACE,
    ENV_SERVING_POD,
    ENV_SERVING_POD_IP,
    ENV_SERVING_READINESS_PROBE,
    ENV_SERVING_REVISION,
    ENV_SERVING_SERVICE,
    ENV_USER_PORT,
    ENV_USER_PORT_NAME,
    PROBE_HEADER,
    PROBE_HEADER_QUEUE_VALUE,
    PROGRESS_DEADLINE_ANNOTATION,
    QUEUE_ADMIN_PORT,
    QUEUE_H2C_PORT_NAME,
    QUEUE_HTTP_PORT,
    QUEUE_HTTP_PORT_NAME,
    REVISION_UID_LABEL,
    SERVICE_LABEL,
    USER_METRICS_PORT,
)
from serving.apis.meta import ApiObject
from serving.apis.v1 import Container, Revision
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.kmeta import owner_reference_dict, with_desired_hash
from serving.reconciler.revision.resources.inherited import (
    child_annotations,
    child_labels,
    initial_scale,
    queue_port_name,
    user_port_name,
)
from serving.reconciler.revision.resources.names import deployment_name

QUEUE_CONTAINER_NAME = "queue-proxy"
USER_PORT_NAME = "user-port"
QUEUE_ADMIN_PORT_NAME = "http-queueadm"
AUTOSCALING_STATS_PORT_NAME = "http-autometric"
USER_METRICS_PORT_NAME = "http-usermetric"
DRAIN_PATH = "/wait-for-drain"

# RevisionSpec fields that are Knative's, not the PodSpec's (containers are rebuilt separately).
_REVISION_ONLY_FIELDS = frozenset({"containers", "containerConcurrency", "timeoutSeconds",
                                   "responseStartTimeoutSeconds", "idleTimeoutSeconds"})


def user_port(container: Container) -> int:
    for port in container.ports or []:
        return port.container_port or DEFAULT_USER_PORT
    return DEFAULT_USER_PORT


def _dump(model: ApiObject | Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def _resolve_probe_port(probe: dict[str, Any], port: int) -> dict[str, Any]:
    """Fill an HTTP/TCP probe's missing port with the user port (Knative stores 0 for it)."""
    probe = json.loads(json.dumps(probe))
    for handler in ("httpGet", "tcpSocket"):
        if handler in probe and not probe[handler].get("port"):
            probe[handler]["port"] = port
    return probe


def readiness_probe_json(container: Container) -> str:
    """The user container's readiness probe as the queue-proxy reads it: TCP on the user port
    when there is none, or when it is an exec probe (which the kubelet runs in the container)."""
    port = user_port(container)
    probe = container.readiness_probe
    if probe is None or probe.handler_count() == 0:
        probe_dict: dict[str, Any] = {"tcpSocket": {"port": port}}
        if probe is not None:
            probe_dict.update(_dump(probe))
    elif probe.exec is not None:
        probe_dict = {key: value for key, value in _dump(probe).items() if key != "exec"}
        probe_dict["tcpSocket"] = {"port": port}
    else:
        probe_dict = _dump(probe)
    return json.dumps(_resolve_probe_port(probe_dict, port), separators=(",", ":"), sort_keys=True)


def _env(name: str, value: str | int) -> dict[str, Any]:
    return {"name": name, "value": str(value)}


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _revision_names(revision: Revision) -> tuple[str, str]:
    return (revision.metadata.label(SERVICE_LABEL) or "", revision.metadata.label(CONFIGURATION_LABEL) or "")


def make_user_container(revision: Revision, container: Container, *, serving: bool) -> dict[str, Any]:
    """A container of the revision as it runs in the pod (the serving one gets the extras)."""
    built = _dump(container)
    if not serving:
        return built
    port = user_port(container)
    service, configuration = _revision_names(revision)
    declared = list(container.ports or [])
    protocol = declared[0].protocol if declared and declared[0].protocol else None
    built["ports"] = [{"name": USER_PORT_NAME, "containerPort": port, **({"protocol": protocol} if protocol else {})}]
    env = [e for e in built.get("env") or [] if e.get("name") not in ("PORT", "K_REVISION", "K_CONFIGURATION",
                                                                          "K_SERVICE")]
    built["env"] = [*env, _env("PORT", port), _env("K_REVISION", revision.name),
                    _env("K_CONFIGURATION", configuration), _env("K_SERVICE", service)]
    if "exec" not in (built.get("readinessProbe") or {}):
        built.pop("readinessProbe", None)
    if "livenessProbe" in built:
        built["livenessProbe"] = _resolve_probe_port(built["livenessProbe"], port)
    if "startupProbe" in built:
        built["startupProbe"] = _resolve_probe_port(built["startupProbe"], port)
    built["lifecycle"] = {"preStop": {"httpGet": {"path": DRAIN_PATH, "port": QUEUE_ADMIN_PORT}}}
    built.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    return built


def make_queue_container(revision: Revision, config: ConfigSnapshot) -> dict[str, Any]:
    serving_container = revision.spec.get_container()
    service, configuration = _revision_names(revision)
    spec = revision.spec
    timeout = spec.timeout_seconds or config.defaults.revision_timeout_seconds
    response_start = spec.response_start_timeout_seconds or 0
    idle = spec.idle_timeout_seconds or 0
    user_readiness = serving_container.readiness_probe
    period = user_readiness.period_seconds if user_readiness and user_readiness.period_seconds else 1
    deployment_config = config.deployment
    resources: dict[str, Any] = {}
    for bucket, resource, value in (
        ("requests", "cpu", deployment_config.queue_sidecar_cpu_request),
        ("limits", "cpu", deployment_config.queue_sidecar_cpu_limit),
        ("requests", "memory", deployment_config.queue_sidecar_memory_request),
        ("limits", "memory", deployment_config.queue_sidecar_memory_limit),
        ("requests", "ephemeral-storage", deployment_config.queue_sidecar_ephemeral_storage_request),
        ("limits", "ephemeral-storage", deployment_config.queue_sidecar_ephemeral_storage_limit),
    ):
        if value:
            resources.setdefault(bucket, {})[resource] = value
    port_name = user_port_name(revision)
    container: dict[str, Any] = {
        "name": QUEUE_CONTAINER_NAME,
        "image": deployment_config.queue_sidecar_image,
        "command": list(deployment_config.queue_sidecar_command),
        "ports": [
            {"name": queue_port_name(revision), "containerPort": QUEUE_HTTP_PORT},
            {"name": QUEUE_ADMIN_PORT_NAME, "containerPort": QUEUE_ADMIN_PORT},
            {"name": AUTOSCALING_STATS_PORT_NAME, "containerPort": AUTOSCALING_STATS_PORT},
            {"name": USER_METRICS_PORT_NAME, "containerPort": USER_METRICS_PORT},
        ],
        "env": [
            _env(ENV_SERVING_NAMESPACE, revision.namespace),
            _env(ENV_SERVING_SERVICE, service),
            _env(ENV_SERVING_CONFIGURATION, configuration),
            _env(ENV_SERVING_REVISION, revision.name),
            _field_env(ENV_SERVING_POD, "metadata.name"),
            _field_env(ENV_SERVING_POD_IP, "status.podIP"),
            _env(ENV_QUEUE_SERVING_PORT, QUEUE_HTTP_PORT),
            _env(ENV_USER_PORT, user_port(serving_container)),
            _env(ENV_USER_PORT_NAME, QUEUE_H2C_PORT_NAME if port_name == "h2c" else QUEUE_HTTP_PORT_NAME),
            _env(ENV_CONTAINER_CONCURRENCY, spec.container_concurrency or 0),
            _env(ENV_REVISION_TIMEOUT_SECONDS, timeout),
            _env(ENV_REVISION_RESPONSE_START_TIMEOUT_SECONDS, response_start),
            _env(ENV_REVISION_IDLE_TIMEOUT_SECONDS, idle),
            _env(ENV_SERVING_READINESS_PROBE, readiness_probe_json(serving_container)),
        ],
        "readinessProbe": {
            "httpGet": {
                "path": "/",
                "port": QUEUE_HTTP_PORT,
                "httpHeaders": [{"name": PROBE_HEADER, "value": PROBE_HEADER_QUEUE_VALUE}],
            },
            "periodSeconds": period,
            "successThreshold": 1,
        },
    }
    if resources:
        container["resources"] = resources
    return container


def make_pod_spec(revision: Revision, config: ConfigSnapshot) -> dict[str, Any]:
    spec = revision.spec
    pod: dict[str, Any] = {key: value for key, value in _dump(spec).items() if key not in _REVISION_ONLY_FIELDS}
    serving_container = spec.get_container()
    containers = [
        make_user_container(revision, container, serving=container.name == serving_container.name)
        for container in spec.containers or []
    ]
    pod["containers"] = [*containers, make_queue_container(revision, config)]
    pod["terminationGracePeriodSeconds"] = spec.timeout_seconds or config.defaults.revision_timeout_seconds
    if "enableServiceLinks" not in pod and config.defaults.enable_service_links is not None:
        pod["enableServiceLinks"] = config.defaults.enable_service_links
    return pod


def progress_deadline_seconds(revision: Revision, config: ConfigSnapshot) -> int:
    from serving.config.parsers import parse_go_duration

    raw = revision.metadata.annotation(PROGRESS_DEADLINE_ANNOTATION)
    if raw:
        try:
            return max(1, int(parse_go_duration(raw)))
        except ValueError:
            pass
    return int(config.deployment.progress_deadline_seconds)


def make_deployment(revision: Revision, config: ConfigSnapshot) -> dict[str, Any]:
    labels = child_labels(revision)
    annotations = child_annotations(revision)
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(revision.name),
            "namespace": revision.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference_dict(revision)],
        },
        "spec": {
            "replicas": initial_scale(revision, config),
            "selector": {"matchLabels": {REVISION_UID_LABEL: revision.metadata.uid or ""}},
            "progressDeadlineSeconds": progress_deadline_seconds(revision, config),
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": make_pod_spec(revision, config),
            },
        },
    }
    return with_desired_hash(deployment, "spec", ignore_replicas=True)
