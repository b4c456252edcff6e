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

A Service with a canary policy (``knserve.dev/canary-steps``) is serialized the same way:
its Route's targets are pinned to named Revisions once the Configuration's status is known,
and the analysis (``resources/canary.py``) moves the candidate's share step by step, reading
request summaries from the autoscaler (``metrics_reader``) at the end of each interval.

Side effects: creates and updates Configurations and Routes; events; HTTP to the autoscaler
(canary analysis only).
"""

from __future__ import annotations

import asyncio
import logging

from knserve.networking import ROUTES_ANNOTATION
from knserve.request_metrics import RequestSummary
from kube.events import NORMAL, WARNING
from kube.cache import Store
from kube.client import KubeClient
from kube.objects import JSON
from kube.resources import CONFIGURATIONS, ROUTES
from serving.apis.conditions import parse_time
from serving.apis.v1 import Configuration, Route, Service, TrafficTarget
from serving.apis.v1.service_canary import CanaryPolicy, CanaryPolicyError, parse_canary_policy
from serving.reconciler.children import ChildResult, ensure_child, ensure_together
from serving.reconciler.configuration.reconciler import name_taken
from serving.reconciler.kmeta import event_target
from serving.reconciler.loop import ReconcileContext
from serving.reconciler.service.metrics_reader import MetricsUnavailable, RequestMetricsReader
from serving.reconciler.service.resources import canary
from serving.reconciler.service.resources.children import make_configuration, make_route, route_traffic

log = logging.getLogger(__name__)


class ServiceReconciler:
    def __init__(
        self, *, client: KubeClient, configurations: Store, routes: Store, revisions: Store,
        request_metrics: RequestMetricsReader | None = None,
    ) -> None:
        self.client = client
        self.configurations = configurations
        self.routes = routes
        self.revisions = revisions
        self.request_metrics = request_metrics

    async def reconcile(self, service: Service, context: ReconcileContext) -> float | None:
        owner = event_target(service)
        uid = service.metadata.uid or ""
        status = service.status

        policy = canary_policy(service)
        if policy is None:
            status.canary = None
            status.clear_canary()
        desired_configuration = make_configuration(service)
        desired_route = make_route(service)
        ensure_configuration = ensure_child(
            self.client, CONFIGURATIONS, self.configurations, desired_configuration.to_dict(), owner=owner,
            owner_uid=uid, events=context.events, keep_annotations=(ROUTES_ANNOTATION,))
        named_revision = desired_configuration.spec.template.metadata.name
        if named_revision or policy is not None:
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
        delay = None
        if policy is not None:
            delay = await self._analyse(service, policy, configuration, context)
            desired_route = make_route(service, canary=status.canary)
        if named_revision or policy is not None:
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
        return delay

    async def _analyse(
        self, service: Service, policy: CanaryPolicy, configuration: Configuration, context: ReconcileContext,
    ) -> float | None:
        """One step of the canary analysis; the Service's status gets the new state and
        ``CanaryReady``; returns when to look again."""
        status = service.status
        now = context.now.timestamp()
        step = canary.advance(
            status.canary, policy=policy, latest_ready=configuration.status.latest_ready_revision_name,
            digest=canary.traffic_digest(service.spec.traffic), now=now,
            analysable=canary.follows_latest(route_traffic(service)))
        if step.analyse and step.state is not None:
            state = step.state
            since = parse_time(state.step_started_at) or now
            candidate = previous = None
            unavailable = None
            try:
                candidate, previous = await self._summaries(
                    service.namespace, (state.revision_name or "", state.previous_revision_name or ""),
                    since=since, until=now)
            except MetricsUnavailable as error:
                unavailable = str(error)
                log.info("%s: canary analysis of %s: %s", service.key, state.revision_name, error)
            judged = canary.judge(state, policy=policy, candidate=candidate, previous=previous, now=now,
                                  unavailable=unavailable)
            step = canary.Step(judged.state, step.events + judged.events)
        status.canary = step.state
        owner = event_target(service)
        for event in step.events:
            context.events.event(owner, WARNING if event.warning else NORMAL, event.reason, event.message)
        if step.state is not None and step.state.phase:
            status.mark_canary(canary.CONDITION_STATUS[step.state.phase], step.state.phase, step.state.message or "")
        return canary.next_check_in(step.state, policy, now)

    async def _summaries(
        self, namespace: str, revisions: tuple[str, str], *, since: float, until: float,
    ) -> tuple[RequestSummary | None, RequestSummary | None]:
        reader = self.request_metrics
        if reader is None:
            raise MetricsUnavailable("the controller has no autoscaler to read request metrics from")
        candidate, previous = await asyncio.gather(
            *(reader.summary(namespace, name, since=since, until=until) for name in revisions))
        return candidate, previous

    async def _ensure_route(
        self, desired: Route, *, owner: JSON, owner_uid: str, context: ReconcileContext
    ) -> ChildResult:
        return await ensure_child(self.client, ROUTES, self.routes, desired.to_dict(), owner=owner,
                                  owner_uid=owner_uid, events=context.events)


def canary_policy(service: Service) -> CanaryPolicy | None:
    """The Service's canary policy; None without one (or with one the webhook should have refused:
    then the Service is served as if it had none)."""
    try:
        return parse_canary_policy(service.metadata.annotations)
    except CanaryPolicyError as error:
        log.warning("%s: canary policy ignored: %s", service.key, error)
        return None


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
