"""Pure builders of what a Service owns: a Configuration and a Route of the same name.

Labels: the Service's plus ``serving.knative.dev/service`` and ``/serviceUID``;
annotations: the Service's without kubectl's last-applied copy. Pure; no I/O.
"""

from __future__ import annotations

from knserve.networking import SERVICE_LABEL, SERVICE_UID_LABEL
from serving.apis.meta import ObjectMeta
from serving.apis.v1 import Configuration, Route, RouteSpec, Service, TrafficTarget
from serving.apis.v1.service_types import CanaryStatus
from serving.reconciler.kmeta import LAST_APPLIED_ANNOTATION, owner_reference, union, without
from serving.reconciler.service.resources.canary import canary_route_traffic


def child_metadata(service: Service) -> ObjectMeta:
    return ObjectMeta(
        name=service.name,
        namespace=service.namespace,
        labels=union(service.metadata.labels, {SERVICE_LABEL: service.name,
                                               SERVICE_UID_LABEL: service.metadata.uid or ""}),
        annotations=without(service.metadata.annotations, [LAST_APPLIED_ANNOTATION]) or None,
        owner_references=[owner_reference(service)],
    )


def make_configuration(service: Service) -> Configuration:
    return Configuration(metadata=child_metadata(service), spec=service.spec.configuration_spec())


def route_traffic(service: Service) -> list[TrafficTarget]:
    """The Service's traffic for its Route: no traffic means 100% to the latest revision, and
    every target without a revisionName follows the Service's own Configuration."""
    traffic = service.spec.traffic or [TrafficTarget(percent=100, latest_revision=True)]
    out = []
    for target in traffic:
        if not target.revision_name:
            target = target.model_copy(update={"configuration_name": service.name, "latest_revision": True})
        elif target.latest_revision is None:
            target = target.model_copy(update={"latest_revision": False})
        out.append(target)
    return out


def make_route(service: Service, *, canary: CanaryStatus | None = None) -> Route:
    """The Service's Route; under a canary policy (``canary`` given) its Configuration-following
    targets are pinned to the stable and candidate Revisions (``canary.canary_route_traffic``)."""
    traffic = route_traffic(service)
    if canary is not None:
        traffic = canary_route_traffic(traffic, canary)
    return Route(metadata=child_metadata(service), spec=RouteSpec(traffic=traffic))
