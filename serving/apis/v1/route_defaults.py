"""Route / traffic defaults as Knative applies them. Pure; no side effects.

* a Service with no traffic gets ``[{latestRevision: true, percent: 100}]``
  (a standalone Route is not defaulted: it must say where its traffic goes);
* ``latestRevision`` defaults to ``revisionName == ""``; ``percent`` to 0.
"""

from __future__ import annotations

from serving.apis.v1.route_types import Route, TrafficTarget
from serving.config.snapshot import ConfigSnapshot


def default_traffic_target(target: TrafficTarget) -> TrafficTarget:
    update: dict[str, object] = {}
    if target.latest_revision is None:
        update["latest_revision"] = not target.revision_name
    if target.percent is None:
        update["percent"] = 0
    return target.model_copy(update=update) if update else target


def default_traffic(
    traffic: list[TrafficTarget] | None, *, default_configuration_name: bool = False
) -> list[TrafficTarget] | None:
    if not traffic and default_configuration_name:
        traffic = [TrafficTarget(percent=100, latest_revision=True)]
    if traffic is None:
        return None
    return [default_traffic_target(t) for t in traffic]


def default_route(route: Route, config: ConfigSnapshot, *, old: Route | None = None) -> Route:
    del config, old
    result = route.model_copy(deep=True)
    result.spec = route.spec.model_copy(update={"traffic": default_traffic(route.spec.traffic)})
    return result
