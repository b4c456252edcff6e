"""``ConfigSnapshot``: one immutable view of every ConfigMap, taken once per reconcile/request.

``ConfigSnapshot.from_configmaps({"config-defaults": data, ...})`` parses what is present and
uses Knative's defaults for the rest; a bad value raises ``ConfigError``. ``with_configmap``
returns a new snapshot with one ConfigMap replaced, so a watcher can swap snapshots
atomically. Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from knserve.networking import SYSTEM_NAMESPACE
from serving.config import autoscaler, defaults, deployment, domain, features, gc, network
from serving.config.autoscaler import AutoscalerConfig
from serving.config.defaults import DefaultsConfig
from serving.config.deployment import DeploymentConfig
from serving.config.domain import DomainConfig
from serving.config.features import FeaturesConfig
from serving.config.gc import GCConfig
from serving.config.network import NetworkConfig

CONFIG_MAP_NAMES: Final = (
    defaults.NAME,
    autoscaler.NAME,
    network.NAME,
    domain.NAME,
    gc.NAME,
    deployment.NAME,
    features.NAME,
)
NAMESPACE: Final = SYSTEM_NAMESPACE

_FIELDS: Final = {
    defaults.NAME: ("defaults", DefaultsConfig),
    autoscaler.NAME: ("autoscaler", AutoscalerConfig),
    network.NAME: ("network", NetworkConfig),
    domain.NAME: ("domain", DomainConfig),
    gc.NAME: ("gc", GCConfig),
    deployment.NAME: ("deployment", DeploymentConfig),
    features.NAME: ("features", FeaturesConfig),
}


@dataclasses.dataclass(frozen=True)
class ConfigSnapshot:
    defaults: DefaultsConfig = DefaultsConfig()
    autoscaler: AutoscalerConfig = AutoscalerConfig()
    network: NetworkConfig = NetworkConfig()
    domain: DomainConfig = DomainConfig()
    gc: GCConfig = GCConfig()
    deployment: DeploymentConfig = DeploymentConfig()
    features: FeaturesConfig = FeaturesConfig()

    @classmethod
    def from_configmaps(cls, configmaps: Mapping[str, Mapping[str, str] | None]) -> ConfigSnapshot:
        """``configmaps`` maps a ConfigMap name to its ``data``; unknown names are ignored."""
        snapshot = cls()
        for name, data in configmaps.items():
            if name in _FIELDS:
                snapshot = snapshot.with_configmap(name, data)
        return snapshot

    def with_configmap(self, name: str, data: Mapping[str, str] | None) -> ConfigSnapshot:
        if name not in _FIELDS:
            raise KeyError(f"{name} is not one of knserve's ConfigMaps ({', '.join(CONFIG_MAP_NAMES)})")
        field, model = _FIELDS[name]
        return dataclasses.replace(self, **{field: model.from_data(data)})  # type: ignore[attr-defined]
