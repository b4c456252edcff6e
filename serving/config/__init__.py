"""Typed models of knserve's ConfigMaps (Knative's keys and defaults) and one immutable snapshot.

Each ``config-*`` ConfigMap in namespace ``knative-serving`` has a frozen model with a
``from_data(data)`` constructor that refuses bad values with a ``ConfigError`` naming the
ConfigMap, the key and what is allowed. ``ConfigSnapshot`` holds one of each; the reconcilers
and the webhook read a single snapshot per reconcile / per request. Pure; no I/O.
"""

from serving.config.autoscaler import AutoscalerConfig
from serving.config.defaults import DefaultsConfig
from serving.config.deployment import DeploymentConfig
from serving.config.domain import DomainConfig
from serving.config.features import FeaturesConfig
from serving.config.parsers import ConfigError
from serving.config.gc import GCConfig
from serving.config.network import NetworkConfig
from serving.config.snapshot import CONFIG_MAP_NAMES, ConfigSnapshot

__all__ = [
    "CONFIG_MAP_NAMES",
    "AutoscalerConfig",
    "ConfigError",
    "ConfigSnapshot",
    "DefaultsConfig",
    "DeploymentConfig",
    "DomainConfig",
    "FeaturesConfig",
    "GCConfig",
    "NetworkConfig",
]
