"""The subset of corev1.PodSpec that a Knative Revision accepts, as frozen pydantic models.

Field names and shapes follow Kubernetes (knative.dev/serving's ``fieldmask.go`` says which
fields a Revision may carry). Every model keeps unknown keys (``extra="allow"``) so a field
this module does not list survives a read-modify-write; the webhook reports such fields as
not allowed. Deep corners (affinity, tolerations, volume sources other than the common ones)
are plain dicts. Pure; no side effects.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from serving.apis.meta import FrozenModel

IntOrString = int | str
Quantity = str | int | float


class LocalObjectReference(FrozenModel):
    name: str | None = None


class KeyToPath(FrozenModel):
    key: str | None = None
    path: str | None = None
    mode: int | None = None


class ConfigMapKeySelector(FrozenModel):
    name: str | None = None
    key: str | None = None
    optional: bool | None = None


class SecretKeySelector(FrozenModel):
    name: str | None = None
    key: str | None = None
    optional: bool | None = None


class ObjectFieldSelector(FrozenModel):
    api_version: str | None = None
    field_path: str | None = None


class ResourceFieldSelector(FrozenModel):
    container_name: str | None = None
    resource: str | None = None
    divisor: Quantity | None = None


class EnvVarSource(FrozenModel):
    config_map_key_ref: ConfigMapKeySelector | None = None
    secret_key_ref: SecretKeySelector | None = None
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None


class EnvVar(FrozenModel):
    name: str | None = None
    value: str | None = None
    value_from: EnvVarSource | None = None


class ConfigMapEnvSource(FrozenModel):
    name: str | None = None
    optional: bool | None = None


class SecretEnvSource(FrozenModel):
    name: str | None = None
    optional: bool | None = None


class EnvFromSource(FrozenModel):
    prefix: str | None = None
    config_map_ref: ConfigMapEnvSource | None = None
    secret_ref: SecretEnvSource | None = None


class ContainerPort(FrozenModel):
    name: str | None = None
    container_port: int | None = None
    protocol: str | None = None


class ResourceRequirements(FrozenModel):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


class ExecAction(FrozenModel):
    command: list[str] | None = None


class HTTPHeader(FrozenModel):
    name: str | None = None
    value: str | None = None


class HTTPGetAction(FrozenModel):
    host: str | None = None
    path: str | None = None
    port: IntOrString | None = None
    scheme: str | None = None
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(FrozenModel):
    host: str | None = None
    port: IntOrString | None = None


class GRPCAction(FrozenModel):
    port: int | None = None
    service: str | None = None


class Probe(FrozenModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: int | None = None
    timeout_seconds: int | None = None
    period_seconds: int | None = None
    success_threshold: int | None = None
    failure_threshold: int | None = None
    termination_grace_period_seconds: int | None = None

    def handler_count(self) -> int:
        return sum(h is not None for h in (self.exec, self.http_get, self.tcp_socket, self.grpc))


class VolumeMount(FrozenModel):
    name: str | None = None
    read_only: bool | None = None
    mount_path: str | None = None
    sub_path: str | None = None
    mount_propagation: str | None = None


class Capabilities(FrozenModel):
    add: list[str] | None = None
    drop: list[str] | None = None


class SeccompProfile(FrozenModel):
    type: str | None = None
    localhost_profile: str | None = None


class SecurityContext(FrozenModel):
    capabilities: Capabilities | None = None
    privileged: bool | None = None
    read_only_root_filesystem: bool | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    allow_privilege_escalation: bool | None = None
    seccomp_profile: SeccompProfile | None = None


class PodSecurityContext(FrozenModel):
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    fs_group: int | None = None
    supplemental_groups: list[int] | None = None
    seccomp_profile: SeccompProfile | None = None


class Container(FrozenModel):
    name: str | None = None
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    ports: list[ContainerPort] | None = None
    env_from: list[EnvFromSource] | None = None
    env: list[EnvVar] | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMount] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None
    image_pull_policy: str | None = None
    security_context: SecurityContext | None = None


class SecretVolumeSource(FrozenModel):
    secret_name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class ConfigMapVolumeSource(FrozenModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class ProjectedVolumeSource(FrozenModel):
    sources: list[dict[str, Any]] | None = None
    default_mode: int | None = None


class EmptyDirVolumeSource(FrozenModel):
    medium: str | None = None
    size_limit: Quantity | None = None


class PersistentVolumeClaimVolumeSource(FrozenModel):
    claim_name: str | None = None
    read_only: bool | None = None


class Volume(FrozenModel):
    name: str | None = None
    secret: SecretVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    projected: ProjectedVolumeSource | None = None
    empty_dir: EmptyDirVolumeSource | None = None
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None
    host_path: dict[str, Any] | None = None
    csi: dict[str, Any] | None = None
    ephemeral: dict[str, Any] | None = None
    image: dict[str, Any] | None = None


class PodSpec(FrozenModel):
    """The PodSpec fields Knative lets a Revision set (the feature-flagged ones included)."""

    service_account_name: str | None = None
    containers: list[Container] | None = None
    volumes: list[Volume] | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    enable_service_links: bool | None = None
    automount_service_account_token: bool | None = None
    # behind Knative feature flags (kubernetes.podspec-*):
    affinity: dict[str, Any] | None = None
    topology_spread_constraints: list[dict[str, Any]] | None = None
    host_aliases: list[dict[str, Any]] | None = None
    node_selector: dict[str, str] | None = None
    runtime_class_name: str | None = None
    tolerations: list[dict[str, Any]] | None = None
    security_context: PodSecurityContext | None = None
    share_process_namespace: bool | None = None
    priority_class_name: str | None = None
    scheduler_name: str | None = None
    init_containers: list[Container] | None = None
    dns_policy: str | None = None
    dns_config: dict[str, Any] | None = None
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_network: bool | None = None
