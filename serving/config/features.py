"""``config-features``: which optional parts of the Kubernetes PodSpec a Revision may use.

Knative's keys and defaults. Each value is a flag, ``Enabled``, ``Allowed`` or ``Disabled``
(any letter case; an unknown value leaves the default, as Knative's parser does). For the
PodSpec fields ``Allowed`` means the same as ``Enabled``: only ``Disabled`` refuses the field
at admission, with Knative's ``must not set the field(s): <path>``. Keys knserve reads but has
no behaviour for yet (``tag-header-based-routing``, ``queueproxy.*``, ``secure-pod-defaults``,
``autodetect-http2``, ``multi-container-probing``, ``kubernetes.podspec-dryrun``) are kept so
the ConfigMap round-trips and ``flag()`` reports them. Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Final

from serving.config.parsers import Reader

NAME: Final = "config-features"

ENABLED: Final = "Enabled"
ALLOWED: Final = "Allowed"
DISABLED: Final = "Disabled"
_FLAGS: Final = (ENABLED, ALLOWED, DISABLED)

MULTI_CONTAINER: Final = "multi-container"
MULTI_CONTAINER_PROBING: Final = "multi-container-probing"
AFFINITY: Final = "kubernetes.podspec-affinity"
TOPOLOGY_SPREAD_CONSTRAINTS: Final = "kubernetes.podspec-topologyspreadconstraints"
DRY_RUN: Final = "kubernetes.podspec-dryrun"
HOST_ALIASES: Final = "kubernetes.podspec-hostaliases"
FIELD_REF: Final = "kubernetes.podspec-fieldref"
NODE_SELECTOR: Final = "kubernetes.podspec-nodeselector"
RUNTIME_CLASS_NAME: Final = "kubernetes.podspec-runtimeclassname"
SECURITY_CONTEXT: Final = "kubernetes.podspec-securitycontext"
SHARE_PROCESS_NAMESPACE: Final = "kubernetes.podspec-shareprocessnamespace"
HOST_IPC: Final = "kubernetes.podspec-hostipc"
HOST_PID: Final = "kubernetes.podspec-hostpid"
HOST_NETWORK: Final = "kubernetes.podspec-hostnetwork"
PRIORITY_CLASS_NAME: Final = "kubernetes.podspec-priorityclassname"
SCHEDULER_NAME: Final = "kubernetes.podspec-schedulername"
ADD_CAPABILITIES: Final = "kubernetes.containerspec-addcapabilities"
TOLERATIONS: Final = "kubernetes.podspec-tolerations"
VOLUMES_EMPTY_DIR: Final = "kubernetes.podspec-volumes-emptydir"
VOLUMES_HOST_PATH: Final = "kubernetes.podspec-volumes-hostpath"
VOLUMES_CSI: Final = "kubernetes.podspec-volumes-csi"
PERSISTENT_VOLUME_CLAIM: Final = "kubernetes.podspec-persistent-volume-claim"
PERSISTENT_VOLUME_WRITE: Final = "kubernetes.podspec-persistent-volume-write"
INIT_CONTAINERS: Final = "kubernetes.podspec-init-containers"
DNS_POLICY: Final = "kubernetes.podspec-dnspolicy"
DNS_CONFIG: Final = "kubernetes.podspec-dnsconfig"
QUEUE_PROXY_MOUNT_PODINFO: Final = "queueproxy.mount-podinfo"
QUEUE_PROXY_RESOURCE_DEFAULTS: Final = "queueproxy.resource-defaults"
SECURE_POD_DEFAULTS: Final = "secure-pod-defaults"
TAG_HEADER_BASED_ROUTING: Final = "tag-header-based-routing"
AUTODETECT_HTTP2: Final = "autodetect-http2"

DEFAULTS: Final[Mapping[str, str]] = types.MappingProxyType({
    MULTI_CONTAINER: ENABLED,
    MULTI_CONTAINER_PROBING: DISABLED,
    AFFINITY: DISABLED,
    TOPOLOGY_SPREAD_CONSTRAINTS: DISABLED,
    DRY_RUN: ALLOWED,
    HOST_ALIASES: DISABLED,
    FIELD_REF: DISABLED,
    NODE_SELECTOR: DISABLED,
    RUNTIME_CLASS_NAME: DISABLED,
    SECURITY_CONTEXT: DISABLED,
    SHARE_PROCESS_NAMESPACE: DISABLED,
    HOST_IPC: DISABLED,
    HOST_PID: DISABLED,
    HOST_NETWORK: DISABLED,
    PRIORITY_CLASS_NAME: DISABLED,
    SCHEDULER_NAME: DISABLED,
    ADD_CAPABILITIES: DISABLED,
    TOLERATIONS: DISABLED,
    VOLUMES_EMPTY_DIR: ENABLED,
    VOLUMES_HOST_PATH: DISABLED,
    VOLUMES_CSI: DISABLED,
    PERSISTENT_VOLUME_CLAIM: DISABLED,
    PERSISTENT_VOLUME_WRITE: DISABLED,
    QUEUE_PROXY_MOUNT_PODINFO: DISABLED,
    QUEUE_PROXY_RESOURCE_DEFAULTS: DISABLED,
    INIT_CONTAINERS: DISABLED,
    DNS_POLICY: DISABLED,
    DNS_CONFIG: DISABLED,
    SECURE_POD_DEFAULTS: DISABLED,
    TAG_HEADER_BASED_ROUTING: DISABLED,
    AUTODETECT_HTTP2: DISABLED,
})


@dataclasses.dataclass(frozen=True)
class FeaturesConfig:
    flags: Mapping[str, str] = dataclasses.field(default_factory=lambda: DEFAULTS)

    def flag(self, key: str) -> str:
        return self.flags[key]

    def disabled(self, key: str) -> bool:
        return self.flags[key] == DISABLED

    def enabled(self, key: str) -> bool:
        return self.flags[key] == ENABLED

    @classmethod
    def from_data(cls, data: Mapping[str, str] | None) -> FeaturesConfig:
        read = Reader(NAME, data)
        flags = dict(DEFAULTS)
        for key in DEFAULTS:
            raw = read.string("", key)
            for flag in _FLAGS:
                if raw.lower() == flag.lower():
                    flags[key] = flag
        return cls(types.MappingProxyType(flags))
