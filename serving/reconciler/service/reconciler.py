"""The Service reconciler: a Configuration and a Route of the Service's name, and a status
that mirrors theirs (``ConfigurationsReady``, ``RoutesReady``, url, address, traffic,
latestCreated/latestReadyRevisionName).

Phases: ensure the Configuration, fold its status in (or mark it not reconciled while its
``observedGeneration`` lags); ensure the Route, the same; then check the Route really
carries the traffic the Service asked for (``TrafficNotMigrated`` until it does).

A template that names its Revision (``spec.template.metadata.name``) serializes the two, as
Knative does: the Route is touched only once the Configuration has seen the template, and
not at all while that name is taken by a Revision that cannot stand for the template
(``RoutesReady=False``, ``RevisionNameTaken``), so traffic a Service pins to its own
Revision by name never reaches another one. Without a name both go at once.

Side effects: creates and updates Configurations and Routes; events.
"""

from __future__ import annotations

from knserve.networking import ROUTES_ANNOTATION
from kube.cache import Store
from kube.client import KubeClient
from kube.objects import JSON
from kube.resources import CONFIGURATIONS, ROUTES
from serving.apis.v1 import Configuration, Route, Service, TrafficTarget
from serving.reconciler.children import ChildResult, ensure_child, ensure_together
from serving.reconciler.configuration.reconciler import name_taken
from serving.reconciler.kmeta import event_target
from serving.reconciler.loop import ReconcileContext
from serving.reconciler.service.resources.children import make_configuration, make_route


class ServiceReconciler:
    def __init__(self, *, client: KubeClient, configurations: Store, routes: Store, revisions: Store) -> None:
        self.client = client
        self.configurations = configurations
        self.routes = routes
        self.revisions = revisions

    async def reconcile(self, service: Service, context: ReconcileContext) -> float | None:
        owner = event_target(service)
        uid = service.metadata.uid or ""
        status = service.status

        desired_configuration = make_configuration(service)
        desired_route = make_route(service)
        ensure_configuration = ensure_child(
            self.client, CONFIGURATIONS, self.configurations, desired_configuration.to_dict(), owner=owner,
            owner_uid=uid, events=context.events, keep_annotations=(ROUTES_ANNOTATION,))
        named_revision = desired_configuration.spec.template.metadata.name
        if named_revision:
            result = await ensure_configuration
        else:
            result, route_result = await ensure_together(ensure_configuration, self._ensure_route(
                desired_route, owner=owner, owner_uid=uid, context=context))
        if result.not_owned or result.object is None:
            status.mark_configuration_not_owned(desired_configuration.name)
            raise RuntimeError(f'Service "{service.name}" does not own Configuration "{desired_configuration.name}".')
        configuration = Configuration.model_validate(result.object)
        if configuration.metadata.generation != configuration.status.observed_generation:
            status.mark_configuration_not_reconciled()
            if named_revision:
                return None  # the Configuration has not judged the name yet; the Route waits
        else:
            status.propagate_configuration_status(configuration.status)

        if named_revision:
            found = self.revisions.get(configuration.namespace, named_revision)
            if found is not None and name_taken(configuration, found, context.config, now=context.now):
                status.mark_revision_name_taken(named_revision)
                return None
            route_result = await self._ensure_route(desired_route, owner=owner, owner_uid=uid, context=context)

        if route_result.not_owned or route_result.object is None:
            status.mark_route_not_owned(desired_route.name)
            raise RuntimeError(f'Service "{service.name}" does not own Route "{desired_route.name}".')
        route = Route.model_validate(route_result.object)
        if route.metadata.generation != route.status.observed_generation:
            status.mark_route_not_reconciled()
        else:
            status.propagate_route_status(route.status)
            if not traffic_migrated(configuration, route):
                status.mark_route_not_yet_ready()
        return None

    async def _ensure_route(
        self, desired: Route, *, owner: JSON, owner_uid: str, context: ReconcileContext
    ) -> ChildResult:
        return await ensure_child(self.client, ROUTES, self.routes, desired.to_dict(), owner=owner,
                                  owner_uid=owner_uid, events=context.events)


def _comparable(target: TrafficTarget) -> tuple[str, int, str]:
    return (target.revision_name or "", target.percent or 0, target.tag or "")


def traffic_migrated(configuration: Configuration, route: Route) -> bool:
    """Whether the Route's status carries what its spec asks, with this Configuration's targets
    read as its latest ready revision (Knative's checkRoutesNotReady)."""
    ready = route.status.get_condition("Ready")
    if ready is None or not ready.is_true():
        return True  # RoutesReady already says why it is not ready
    want = []
    for target in route.spec.traffic or []:
        if target.configuration_name == configuration.name:
            target = target.model_copy(update={
                "revision_name": configuration.status.latest_ready_revision_name, "configuration_name": None})
        want.append(_comparable(target))
    got = [_comparable(target) for target in route.status.traffic or []]
    return sorted(want) == sorted(got)
