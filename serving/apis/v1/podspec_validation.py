"""Validation of a Revision's PodSpec: Knative's ``ValidatePodSpec`` rules and messages.

The PodSpec fields behind Knative's ``config-features`` flags (multi-container, init
containers, fieldRef, emptyDir, PVC, hostPath, affinity, hostNetwork, ...) are accepted only
while their flag is not ``Disabled``; fields Knative never accepts (a container's
``securityContext.privileged``, ...) and gated fields whose flag is off are refused with
Knative's ``must not set the field(s)``. Paths are relative to the PodSpec; callers prefix
them. Pure; no side effects.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import Final

from pydantic import BaseModel

from knserve.networking import DEFAULT_USER_PORT, RESERVED_ENV, RESERVED_PORTS
from serving.apis.field_error import (
    FieldError,
    err_disallowed_fields,
    err_generic,
    err_invalid_value,
    err_missing_field,
    err_missing_one_of,
    err_multiple_one_of,
    err_out_of_bounds_value,
)
from serving.apis.names import is_dns1123_label, is_dns1123_subdomain
from serving.apis.v1.podspec_types import (
    Container,
    ContainerPort,
    EnvFromSource,
    EnvVar,
    PodSecurityContext,
    PodSpec,
    Probe,
    SecurityContext,
    Volume,
    VolumeMount,
)
from serving.config import features as flags
from serving.config.features import FeaturesConfig

RESERVED_ENV_VARS: Final = frozenset(RESERVED_ENV)
RESERVED_SIDECAR_ENV_VARS: Final = RESERVED_ENV_VARS - {"PORT"}
RESERVED_CONTAINER_NAMES: Final = frozenset({"queue-proxy"})
RESERVED_PATHS: Final = frozenset({"/", "/dev", "/dev/log"})
VALID_PORT_NAMES: Final = frozenset({"h2c", "http1", ""})
INT32_MAX: Final = 2**31 - 1
NO_FEATURES: Final = FeaturesConfig()

# PodSpec fields (by their JSON name) and the config-features flag that lets them through.
_GATED_POD_FIELDS: Final = (
    ("affinity", flags.AFFINITY), ("topologySpreadConstraints", flags.TOPOLOGY_SPREAD_CONSTRAINTS),
    ("hostAliases", flags.HOST_ALIASES), ("nodeSelector", flags.NODE_SELECTOR),
    ("runtimeClassName", flags.RUNTIME_CLASS_NAME), ("tolerations", flags.TOLERATIONS),
    ("priorityClassName", flags.PRIORITY_CLASS_NAME), ("schedulerName", flags.SCHEDULER_NAME),
    ("initContainers", flags.INIT_CONTAINERS), ("dnsPolicy", flags.DNS_POLICY), ("dnsConfig", flags.DNS_CONFIG),
    ("hostIPC", flags.HOST_IPC), ("hostPID", flags.HOST_PID), ("hostNetwork", flags.HOST_NETWORK),
    ("shareProcessNamespace", flags.SHARE_PROCESS_NAMESPACE),
)
_GATED_VOLUME_SOURCES: Final = (
    ("emptyDir", flags.VOLUMES_EMPTY_DIR), ("persistentVolumeClaim", flags.PERSISTENT_VOLUME_CLAIM),
    ("hostPath", flags.VOLUMES_HOST_PATH), ("csi", flags.VOLUMES_CSI),
)
# Container securityContext fields Knative never lets through.
_NEVER_IN_SECURITY_CONTEXT: Final = ("privileged", "seLinuxOptions", "procMount", "windowsOptions", "appArmorProfile")

_IMAGE_REFERENCE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)/)?"
    r"(?P<repository>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


def disallowed(model: BaseModel | None) -> FieldError:
    """``must not set the field(s)`` for every key of ``model`` its type does not know."""
    if model is None or not model.model_extra:
        return FieldError()
    keys = sorted(k for k, v in model.model_extra.items() if v is not None)
    return err_disallowed_fields(*keys) if keys else FieldError()


def _set_fields(model: BaseModel) -> set[str]:
    """The JSON names of the fields of ``model`` that are set (known and extra)."""
    return set(model.model_dump(by_alias=True, exclude_none=True))


def _gated(model: BaseModel, gates: Iterable[tuple[str, str]], features: FeaturesConfig) -> FieldError:
    """``must not set the field(s)`` for each set field whose feature flag is ``Disabled``."""
    present = _set_fields(model)
    refused = sorted(field for field, flag in gates if field in present and features.disabled(flag))
    return err_disallowed_fields(*refused) if refused else FieldError()


def image_reference_error(image: str) -> str | None:
    """None if ``image`` parses as a container image reference, else go-containerregistry's error."""
    match = _IMAGE_REFERENCE.match(image)
    if match is None or len(match.group("repository")) > 255:
        return f"could not parse reference: {image}"
    return None


# --- volumes --------------------------------------------------------------------------------------
def all_mounted_volumes(containers: Iterable[Container]) -> set[str]:
    return {m.name or "" for c in containers for m in (c.volume_mounts or [])}


def _validate_key_to_path(item: BaseModel) -> FieldError:
    errors = disallowed(item)
    if not getattr(item, "key", None):
        errors = errors.also(err_missing_field("key"))
    if not getattr(item, "path", None):
        errors = errors.also(err_missing_field("path"))
    return errors


def _validate_projection(source: dict) -> FieldError:  # type: ignore[type-arg]
    known = {"secret", "configMap", "serviceAccountToken", "downwardAPI"}
    errors = FieldError()
    extra = sorted(k for k in source if k not in known)
    if extra:
        errors = errors.also(err_disallowed_fields(*extra))
    specified = [k for k in ("secret", "configMap", "serviceAccountToken", "downwardAPI") if source.get(k) is not None]
    for kind in ("secret", "configMap"):
        if source.get(kind) is not None:
            ref = source[kind] or {}
            sub = FieldError()
            if not ref.get("name"):
                sub = sub.also(err_missing_field("name"))
            for i, item in enumerate(ref.get("items") or []):
                if not item.get("key"):
                    sub = sub.also(err_missing_field("key").via_field_index("items", i))
                if not item.get("path"):
                    sub = sub.also(err_missing_field("path").via_field_index("items", i))
            errors = errors.also(sub.via_field(kind))
    if source.get("serviceAccountToken") is not None and not (source["serviceAccountToken"] or {}).get("path"):
        errors = errors.also(err_missing_field("path").via_field("serviceAccountToken"))
    if not specified:
        errors = errors.also(err_missing_one_of("secret", "configMap", "serviceAccountToken", "downwardAPI"))
    elif len(specified) > 1:
        errors = errors.also(err_multiple_one_of(*specified))
    return errors


def validate_volume(volume: Volume, features: FeaturesConfig = NO_FEATURES) -> FieldError:
    errors = disallowed(volume)
    if not volume.name:
        errors = err_missing_field("name")
    elif is_dns1123_label(volume.name):
        errors = err_invalid_value(volume.name, "name")
    errors = errors.also(_gated(volume, _GATED_VOLUME_SOURCES, features))
    specified: list[str] = []
    if volume.secret is not None:
        specified.append("secret")
        errors = errors.also(disallowed(volume.secret).via_field("secret"))
        for i, item in enumerate(volume.secret.items or []):
            errors = errors.also(_validate_key_to_path(item).via_field_index("items", i))
    if volume.config_map is not None:
        specified.append("configMap")
        errors = errors.also(disallowed(volume.config_map).via_field("configMap"))
        for i, item in enumerate(volume.config_map.items or []):
            errors = errors.also(_validate_key_to_path(item).via_field_index("items", i))
    if volume.projected is not None:
        specified.append("projected")
        for i, source in enumerate(volume.projected.sources or []):
            errors = errors.also(_validate_projection(source).via_field_index("projected", i))
    if volume.empty_dir is not None:
        specified.append("emptyDir")
        medium = volume.empty_dir.medium
        if medium and medium != "Memory":
            errors = errors.also(err_invalid_value(medium, "medium").via_field("emptyDir"))
        size = volume.empty_dir.size_limit
        if size is not None and str(size).startswith("-"):
            errors = errors.also(err_invalid_value(size, "sizeLimit").via_field("emptyDir"))
    if volume.persistent_volume_claim is not None:
        specified.append("persistentVolumeClaim")
    if volume.host_path is not None:
        specified.append("hostPath")
    if volume.csi is not None:
        specified.append("csi")
    if volume.ephemeral is not None:
        specified.append("ephemeral")
    if volume.image is not None:
        specified.append("image")
        if not volume.image.get("reference"):
            errors = errors.also(err_missing_field("reference").via_field("image"))
        policy = volume.image.get("pullPolicy")
        if policy not in (None, "", "IfNotPresent", "Always", "Never"):
            errors = errors.also(err_invalid_value(policy, "pullPolicy").via_field("image"))
    if not specified:
        errors = errors.also(err_missing_one_of(
            "secret", "configMap", "projected", "emptyDir", "persistentVolumeClaim", "hostPath", "csi",
            "ephemeral", "image"))
    elif len(specified) > 1:
        errors = errors.also(err_multiple_one_of(*specified))
    return errors


def validate_volumes(
    volumes: list[Volume], mounted: set[str], features: FeaturesConfig = NO_FEATURES
) -> tuple[dict[str, Volume], FieldError]:
    by_name: dict[str, Volume] = {}
    errors = FieldError()
    for i, volume in enumerate(volumes):
        name = volume.name or ""
        if name in by_name:
            errors = errors.also(FieldError(f'duplicate volume name "{name}"', ("name",)).via_index(i))
        if name not in mounted:
            errors = errors.also(FieldError(f'volume with name "{name}" not mounted', ("name",)).via_index(i))
        errors = errors.also(validate_volume(volume, features).via_index(i))
        by_name[name] = volume
    return by_name, errors


def validate_volume_mounts(
    mounts: list[VolumeMount], volumes: dict[str, Volume], features: FeaturesConfig = NO_FEATURES
) -> FieldError:
    errors = FieldError()
    seen_paths: set[str] = set()
    for i, mount in enumerate(mounts):
        errors = errors.also(disallowed(mount).via_index(i))
        volume = volumes.get(mount.name or "")
        if volume is None:
            errors = errors.also(FieldError("volumeMount has no matching volume", ("name",)).via_index(i))
        path = mount.mount_path or ""
        clean = posixpath.normpath(path) if path else ""
        if clean.startswith("//"):
            clean = "/" + clean.lstrip("/")
        if not path:
            errors = errors.also(err_missing_field("mountPath").via_index(i))
        elif clean in RESERVED_PATHS:
            errors = errors.also(FieldError(f'mountPath "{clean}" is a reserved path', ("mountPath",)).via_index(i))
        elif not path.startswith("/"):
            errors = errors.also(err_invalid_value(path, "mountPath").via_index(i))
        elif clean in seen_paths:
            errors = errors.also(err_invalid_value(f'"{path}" must be unique', "mountPath").via_index(i))
        seen_paths.add(clean)
        writable_kind = volume is not None and (
            volume.empty_dir is not None or volume.ephemeral is not None
            or (volume.persistent_volume_claim is not None and features.enabled(flags.PERSISTENT_VOLUME_WRITE))
        )
        if not writable_kind and not mount.read_only:
            errors = errors.also(FieldError("volume mount should be readOnly for this type of volume", ("readOnly",)).via_index(i))
        if mount.mount_propagation is not None and mount.mount_propagation not in ("None", "HostToContainer"):
            errors = errors.also(FieldError(
                "mount propagation should be set to None or HostToContainer", ("mountPropagation",)).via_index(i))
        if volume is not None and volume.persistent_volume_claim is not None:
            if volume.persistent_volume_claim.read_only and not mount.read_only:
                errors = errors.also(FieldError("volume is readOnly but volume mount is not", ("readOnly",)).via_index(i))
    return errors


# --- env ----------------------------------------------------------------------------------------------
def _validate_env_var(env: EnvVar, reserved: frozenset[str], features: FeaturesConfig) -> FieldError:
    errors = disallowed(env)
    if not env.name:
        errors = errors.also(err_missing_field("name"))
    elif env.name in reserved:
        errors = errors.also(FieldError(f'"{env.name}" is a reserved environment variable', ("name",)))
    if env.value_from is not None:
        source = env.value_from
        sub = disallowed(source).also(_gated(
            source, (("fieldRef", flags.FIELD_REF), ("resourceFieldRef", flags.FIELD_REF)), features))
        for field, ref in (("configMapKeyRef", source.config_map_key_ref), ("secretKeyRef", source.secret_key_ref),
                           ("fieldRef", source.field_ref), ("resourceFieldRef", source.resource_field_ref)):
            sub = sub.also(disallowed(ref).via_field(field))
        errors = errors.also(sub.via_field("valueFrom"))
    return errors


def _validate_env_from(sources: list[EnvFromSource]) -> FieldError:
    errors = FieldError()
    for i, source in enumerate(sources):
        errors = errors.also(disallowed(source).via_index(i))
        if source.secret_ref is not None:
            errors = errors.also(disallowed(source.secret_ref).via_field("secretRef").via_index(i))
        if source.config_map_ref is not None:
            errors = errors.also(disallowed(source.config_map_ref).via_field("configMapRef").via_index(i))
        if source.config_map_ref is not None and source.secret_ref is not None:
            errors = errors.also(err_multiple_one_of("configMapRef", "secretRef").via_index(i))
        elif source.config_map_ref is None and source.secret_ref is None:
            errors = errors.also(err_missing_one_of("configMapRef", "secretRef").via_index(i))
    return errors


# --- ports ----------------------------------------------------------------------------------------------
def _validate_port_basic(port: ContainerPort) -> FieldError:
    errors = disallowed(port)
    number = port.container_port or 0
    if number in RESERVED_PORTS:
        errors = errors.also(err_invalid_value(
            f"{number} is a reserved port", "containerPort", f"{number} is a reserved port, please use a different value"))
    if number < 0 or number > 65535:
        errors = errors.also(err_out_of_bounds_value(number, 0, 65535, "containerPort"))
    return errors


def _validate_container_ports(ports: list[ContainerPort]) -> FieldError:
    if not ports:
        return FieldError()
    user_port = ports[0]
    errors = _validate_port_basic(user_port)
    if user_port.protocol and user_port.protocol != "TCP":
        errors = errors.also(err_invalid_value(user_port.protocol, "protocol"))
    if (user_port.name or "") not in VALID_PORT_NAMES:
        errors = errors.also(FieldError(
            f"Port name {user_port.name} is not allowed", ("",), "Name must be empty, or one of: 'h2c', 'http1'"))
    return errors


def user_port(containers: list[Container]) -> tuple[ContainerPort, FieldError]:
    """The single serving port across all containers (name ``http``/8080 filled in) and its errors."""
    count = 0
    port = ContainerPort()
    for container in containers:
        if container.ports:
            count += len(container.ports)
            port = container.ports[0]
    port = port.model_copy(update={"name": port.name or "http", "container_port": port.container_port or DEFAULT_USER_PORT})
    if count == 0 and len(containers) > 1:
        return port, err_missing_field("ports")
    if count > 1:
        return port, FieldError("more than one container port is set", ("ports",),
                                "Only a single port is allowed across all containers")
    return port, FieldError()


# --- probes -------------------------------------------------------------------------------------------
def _validate_probe(probe: Probe | None, port: ContainerPort | None, is_user_container: bool) -> FieldError:
    if probe is None:
        return FieldError()
    errors = disallowed(probe)
    handlers: list[str] = []
    if probe.http_get is not None:
        handlers.append("httpGet")
        errors = errors.also(disallowed(probe.http_get).via_field("httpGet"))
        errors = errors.also(_probe_port(probe.http_get.port, "httpGet.port", port, is_user_container))
    if probe.tcp_socket is not None:
        handlers.append("tcpSocket")
        errors = errors.also(disallowed(probe.tcp_socket).via_field("tcpSocket"))
        errors = errors.also(_probe_port(probe.tcp_socket.port, "tcpSocket.port", port, is_user_container))
    if probe.exec is not None:
        handlers.append("exec")
        errors = errors.also(disallowed(probe.exec).via_field("exec"))
    if probe.grpc is not None:
        handlers.append("gRPC")
        errors = errors.also(disallowed(probe.grpc).via_field("grpc"))
    if not handlers:
        errors = errors.also(err_missing_one_of("httpGet", "tcpSocket", "exec", "grpc"))
    elif len(handlers) > 1:
        errors = errors.also(err_multiple_one_of(*handlers))
    return errors


def _probe_port(value: int | str | None, path: str, port: ContainerPort | None, is_user_container: bool) -> FieldError:
    text = "" if value is None else str(value)
    if is_user_container:
        if isinstance(value, str) and value and port is not None and value != port.name:
            return err_invalid_value(text, path, "Probe port must match container port")
    elif value in (None, 0, ""):
        return err_invalid_value(text or "0", path, "Probe port must be specified")
    return FieldError()


def _validate_readiness_probe(probe: Probe | None, port: ContainerPort | None, is_user_container: bool) -> FieldError:
    if probe is None:
        return FieldError()
    errors = _validate_probe(probe, port, is_user_container)
    period = probe.period_seconds or 0
    timeout = probe.timeout_seconds or 0
    failure = probe.failure_threshold or 0
    if period < 0:
        errors = errors.also(err_out_of_bounds_value(period, 0, INT32_MAX, "periodSeconds"))
    if (probe.initial_delay_seconds or 0) < 0:
        errors = errors.also(err_out_of_bounds_value(probe.initial_delay_seconds, 0, INT32_MAX, "initialDelaySeconds"))
    if (probe.success_threshold or 0) < 1:
        errors = errors.also(err_out_of_bounds_value(probe.success_threshold or 0, 1, INT32_MAX, "successThreshold"))
    if period == 0:
        if failure != 0:
            errors = errors.also(err_generic("failureThreshold is disallowed when periodSeconds is zero", "failureThreshold"))
        if timeout != 0:
            errors = errors.also(err_generic("timeoutSeconds is disallowed when periodSeconds is zero", "timeoutSeconds"))
    else:
        if timeout < 1:
            errors = errors.also(err_out_of_bounds_value(timeout, 1, INT32_MAX, "timeoutSeconds"))
        if failure < 1:
            errors = errors.also(err_out_of_bounds_value(failure, 1, INT32_MAX, "failureThreshold"))
    return errors


# --- security contexts -----------------------------------------------------------------------------
def _id_bounds(value: int | None, path: str) -> FieldError:
    if value is not None and (value < 0 or value > INT32_MAX):
        return err_out_of_bounds_value(value, 0, INT32_MAX, path)
    return FieldError()


def _validate_security_context(context: SecurityContext | None, features: FeaturesConfig) -> FieldError:
    if context is None:
        return FieldError()
    present = _set_fields(context)
    never = sorted(field for field in _NEVER_IN_SECURITY_CONTEXT if field in present)
    extra = {k for k, v in (context.model_extra or {}).items() if v is not None}
    errors = disallowed(context) if not never else err_disallowed_fields(*sorted(extra | set(never)))
    if context.capabilities is not None:
        capabilities = disallowed(context.capabilities).also(
            _gated(context.capabilities, (("add", flags.ADD_CAPABILITIES),), features))
        errors = errors.also(capabilities.via_field("capabilities"))
    return errors.also(_id_bounds(context.run_as_user, "runAsUser"), _id_bounds(context.run_as_group, "runAsGroup"))


def validate_pod_security_context(context: PodSecurityContext | None, features: FeaturesConfig = NO_FEATURES) -> FieldError:
    if context is None:
        return FieldError()
    if features.disabled(flags.SECURITY_CONTEXT):
        # Without the flag only the seccomp profile may be set.
        refused = sorted(_set_fields(context) - {"seccompProfile"})
        if refused:
            return err_disallowed_fields(*refused)
    errors = disallowed(context).also(
        _id_bounds(context.run_as_user, "runAsUser"),
        _id_bounds(context.run_as_group, "runAsGroup"),
        _id_bounds(context.fs_group, "fsGroup"),
    )
    for i, gid in enumerate(context.supplemental_groups or []):
        errors = errors.also(_id_bounds(gid, "").via_field_index("supplementalGroups", i))
    return errors


# --- containers -----------------------------------------------------------------------------------------
def _validate_container_common(
    container: Container, volumes: dict[str, Volume], *, kind: str, features: FeaturesConfig
) -> FieldError:
    if container == Container():
        return err_missing_field("")
    errors = disallowed(container)
    name_problems = is_dns1123_label(container.name) if container.name else []
    if name_problems:
        # Kubernetes refuses such a Pod; say so at admission instead of failing the Revision later.
        errors = errors.also(err_invalid_value(container.name, "name", "; ".join(name_problems)))
    if (container.name or "") in RESERVED_CONTAINER_NAMES:
        errors = errors.also(FieldError(f'"{container.name}" is a reserved container name', ("name",)))
    reserved = RESERVED_ENV_VARS if kind == "user" else RESERVED_SIDECAR_ENV_VARS
    for i, env in enumerate(container.env or []):
        errors = errors.also(_validate_env_var(env, reserved, features).via_index(i).via_field("env"))
    errors = errors.also(_validate_env_from(container.env_from or []).via_field("envFrom"))
    if not container.image:
        errors = errors.also(err_missing_field("image"))
    else:
        problem = image_reference_error(container.image)
        if problem:
            errors = errors.also(FieldError(
                "Failed to parse image reference", ("image",), f'image: "{container.image}", error: {problem}'))
    if kind == "init":
        for port in container.ports or []:
            errors = errors.also(_validate_port_basic(port).via_field("ports"))
    else:
        errors = errors.also(_validate_container_ports(container.ports or []).via_field("ports"))
    errors = errors.also(disallowed(container.resources).via_field("resources"))
    errors = errors.also(_validate_security_context(container.security_context, features).via_field("securityContext"))
    if container.termination_message_policy not in (None, "", "File", "FallbackToLogsOnError"):
        errors = errors.also(err_invalid_value(container.termination_message_policy, "terminationMessagePolicy"))
    errors = errors.also(validate_volume_mounts(container.volume_mounts or [], volumes, features).via_field("volumeMounts"))
    return errors


def validate_user_container(
    container: Container, volumes: dict[str, Volume], port: ContainerPort, features: FeaturesConfig = NO_FEATURES
) -> FieldError:
    errors = _validate_probe(container.liveness_probe, port, True).via_field("livenessProbe")
    errors = errors.also(_validate_readiness_probe(container.readiness_probe, port, True).via_field("readinessProbe"))
    errors = errors.also(_validate_probe(container.startup_probe, port, True).via_field("startupProbe"))
    return errors.also(_validate_container_common(container, volumes, kind="user", features=features))


def _validate_sidecar_container(container: Container, volumes: dict[str, Volume], features: FeaturesConfig) -> FieldError:
    # multi-container-probing on: sidecars may carry probes, which must name their port.
    errors = _validate_probe(container.liveness_probe, None, False).via_field("livenessProbe")
    errors = errors.also(_validate_readiness_probe(container.readiness_probe, None, False).via_field("readinessProbe"))
    errors = errors.also(_validate_probe(container.startup_probe, None, False).via_field("startupProbe"))
    return errors.also(_validate_container_common(container, volumes, kind="sidecar", features=features))


def _validate_init_container(container: Container, volumes: dict[str, Volume], features: FeaturesConfig) -> FieldError:
    errors = FieldError()
    for field, value in (("livenessProbe", container.liveness_probe), ("readinessProbe", container.readiness_probe),
                         ("startupProbe", container.startup_probe),
                         ("lifecycle", (container.model_extra or {}).get("lifecycle"))):
        if value is not None:
            errors = errors.also(err_generic("field not allowed in an init container", field))
    return errors.also(_validate_container_common(container, volumes, kind="init", features=features))


def validate_pod_spec(spec: PodSpec, features: FeaturesConfig = NO_FEATURES) -> FieldError:
    """All of Knative's PodSpec rules under ``features`` (config-features); paths relative to the PodSpec."""
    containers = spec.containers or []
    init_containers = spec.init_containers or []
    errors = disallowed(spec).also(_gated(spec, _GATED_POD_FIELDS, features))
    if spec.automount_service_account_token:
        errors = errors.also(err_disallowed_fields("automountServiceAccountToken"))  # only false may be set
    errors = errors.also(validate_pod_security_context(spec.security_context, features).via_field("securityContext"))
    volumes, volume_errors = validate_volumes(
        spec.volumes or [], all_mounted_volumes([*init_containers, *containers]), features)
    errors = errors.also(volume_errors.via_field("volumes"))

    names = {c.name for c in containers}
    for i, container in enumerate(init_containers):
        if container.name in names:
            errors = errors.also(FieldError(f'duplicate container name "{container.name}"', ("name",)).via_field_index("containers", i))
        errors = errors.also(_validate_init_container(container, volumes, features).via_field_index("containers", i))

    port, port_errors = user_port(containers)
    errors = errors.also(port_errors.via_field("containers[*]"))
    if not containers:
        errors = errors.also(err_missing_field("containers"))
    elif len(containers) == 1:
        errors = errors.also(validate_user_container(containers[0], volumes, port, features).via_field_index("containers", 0))
    else:
        if features.disabled(flags.MULTI_CONTAINER):
            errors = errors.also(err_multiple_one_of("containers"))
        seen: set[str | None] = set()
        for i, container in enumerate(containers):
            if container.name in seen:
                errors = errors.also(FieldError(f'duplicate container name "{container.name}"', ("name",)).via_field_index("containers", i))
            seen.add(container.name)
            if not container.ports:
                errors = errors.also(_validate_sidecar_container(container, volumes, features).via_field_index("containers", i))
            else:
                errors = errors.also(validate_user_container(container, volumes, port, features).via_field_index("containers", i))
    if spec.service_account_name:
        for problem in is_dns1123_subdomain(spec.service_account_name):
            errors = errors.also(err_invalid_value(spec.service_account_name, "serviceAccountName", problem))
    return errors
