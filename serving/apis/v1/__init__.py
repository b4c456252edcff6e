"""serving.knative.dev/v1: Service, Configuration, Revision, Route.

Import the models from here; defaults, validation and condition verbs live in the
``<kind>_defaults``, ``<kind>_validation`` and ``<kind>_lifecycle`` modules.
"""

from serving.apis.v1.configuration_types import (
    Configuration,
    ConfigurationSpec,
    ConfigurationStatus,
    ConfigurationStatusFields,
)
from serving.apis.v1.podspec_types import (
    Container,
    ContainerPort,
    EnvVar,
    PodSpec,
    Probe,
    ResourceRequirements,
    Volume,
    VolumeMount,
)
from serving.apis.v1.revision_types import (
    API_VERSION,
    ContainerStatus,
    Revision,
    RevisionSpec,
    RevisionStatus,
    RevisionTemplateSpec,
)
from serving.apis.v1.route_types import Addressable, Route, RouteSpec, RouteStatus, RouteStatusFields, TrafficTarget
from serving.apis.v1.service_types import Service, ServiceSpec, ServiceStatus

__all__ = [
    "API_VERSION",
    "Addressable",
    "Configuration",
    "ConfigurationSpec",
    "ConfigurationStatus",
    "ConfigurationStatusFields",
    "Container",
    "ContainerPort",
    "ContainerStatus",
    "EnvVar",
    "PodSpec",
    "Probe",
    "ResourceRequirements",
    "Revision",
    "RevisionSpec",
    "RevisionStatus",
    "RevisionTemplateSpec",
    "Route",
    "RouteSpec",
    "RouteStatus",
    "RouteStatusFields",
    "Service",
    "ServiceSpec",
    "ServiceStatus",
    "TrafficTarget",
    "Volume",
    "VolumeMount",
]
