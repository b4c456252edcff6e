"""Service defaults (Knative's): the template as a Configuration's, traffic as a Route's with
the Service's own Configuration implied. Pure; no side effects.
"""

from __future__ import annotations

from serving.apis.v1.configuration_defaults import default_configuration_spec
from serving.apis.v1.route_defaults import default_traffic
from serving.apis.v1.service_types import Service
from serving.config.snapshot import ConfigSnapshot


def default_service(service: Service, config: ConfigSnapshot, *, old: Service | None = None) -> Service:
    result = service.model_copy(deep=True)
    configuration_spec = default_configuration_spec(
        service.spec.configuration_spec(),
        config,
        parent=service.metadata,
        old=old.spec.configuration_spec() if old is not None else None,
    )
    result.spec = service.spec.model_copy(
        update={
            "template": configuration_spec.template,
            "traffic": default_traffic(service.spec.traffic, default_configuration_name=True),
        }
    )
    return result
