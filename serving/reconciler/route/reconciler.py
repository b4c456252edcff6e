"""The Route reconciler: traffic resolution, status (traffic, url, address, conditions),
gradual rollout, and the Route's part of the ingress model.

Phases:
1. url and address from config-domain / config-network; the Route's own host, or one tag's, is
   cluster-local when its Kubernetes Service carries the visibility label (Knative's way to
   make one tag private), and then gets only a cluster-local URL and ingress rule;
2. resolve spec.traffic against Configurations and Revisions (tracked, so their changes
   bring the Route back). When every target resolves: advance the rollout, publish the new
   ``status.traffic`` and ``AllTrafficAssigned=True``. When one does not:
   ``AllTrafficAssigned`` False/Unknown with Knative's reason and message, and the traffic
   in effect stays what ``status.traffic`` says (so it also survives a restart);
3. ingress: rules for the traffic in effect and backends from the revisions' ready
   EndpointSlice addresses go to the ``IngressState``; ``IngressReady`` follows the sink
   (``RolloutInProgress`` while a rollout runs, which keeps Ready Unknown). A Route whose
   stored status already says the ingress serves its generation, and which publishes the
   same url and traffic again, stays Ready while the sink has yet to confirm it: that is a
   restarted controller looking at what Envoy already serves;
4. routing state: Revisions in the traffic are labelled ``routingState: active`` and
   annotated with the Route's name; Revisions that left it lose the name and become
   ``reserve`` when no Route is left (the garbage collector reads this);
5. placeholder Services: one ExternalName Service per host name of the Route (its name and
   each tag's), so ``status.address`` resolves in the cluster; those of tags that left go.
   A Service of that name the Route does not own: ``IngressReady=False`` with ``NotOwned``.

Returns the time to the next rollout step, if one is running.

Side effects: patches Revision and Configuration metadata (routing state); creates, updates
and deletes the placeholder Services; ingress updates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from knserve.networking import ROUTE_LABEL, SERVICE_LABEL
from kube.cache import Store
from kube.client import KubeClient
from kube.errors import NotFound
from kube.objects import JSON, is_controlled_by
from kube.resources import KUBE_SERVICES
from serving.apis.meta import ApiObject
from serving.apis.v1 import Addressable, Configuration, Revision, Route, TrafficTarget
from serving.apis.v1.route_lifecycle import CONDITION_INGRESS_READY
from serving.reconciler.children import ensure_child, ensure_together
from serving.reconciler.kmeta import event_target
from serving.reconciler.loop import ReconcileContext
from serving.reconciler.route.ingress_state import IngressState
from serving.reconciler.route.labeler import RoutingLabeler
from serving.reconciler.route.resources.hosts import address_url, private_groups, route_url, tag_url
from serving.reconciler.route.resources.ingress import make_backend, make_ingress_rules
from serving.reconciler.route.resources.placeholder import (
    keep_visibility,
    make_placeholder_service,
    placeholder_names,
)
from serving.reconciler.route.resources.rollout import (
    ROLLOUT_ANNOTATION,
    Rollout,
    advance,
    apply_rollout,
    rollout_duration_seconds,
)
from serving.reconciler.route.resources.traffic import (
    Resolution,
    ResolvedTarget,
    TrafficError,
    group_by_tag,
    resolve_traffic,
    status_traffic,
    targets_from_status,
)
from serving.reconciler.tracker import Tracker
from serving.xds.model import Endpoint, RevisionKey

log = logging.getLogger(__name__)

M = TypeVar("M", bound=ApiObject)

ENDPOINTS_INDEX = "service-name"
MIN_REQUEUE_SECONDS = 0.05


class _Models(Mapping[str, M], Generic[M]):
    """Read-only view of one namespace of an informer store, parsed into models on access."""

    def __init__(self, store: Store, namespace: str, model: type[M]) -> None:
        self._store, self._namespace, self._model = store, namespace, model

    def __getitem__(self, name: str) -> M:
        found = self._store.get(self._namespace, name)
        if found is None:
            raise KeyError(name)
        return self._model.model_validate(found)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._store.get(self._namespace, name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(obj["metadata"]["name"] for obj in self._store.list(self._namespace))

    def __len__(self) -> int:
        return len(self._store.list(self._namespace))


def mark_bad_target(route: Route, error: TrafficError) -> None:
    status = route.status
    if error.problem == "missing":
        status.mark_missing_traffic_target(error.kind, error.name)
    elif error.problem == "not-owned":
        status.mark_revision_not_owned(error.name, route.metadata.label(SERVICE_LABEL) or "", error.owner)
    elif error.kind == "Revision":
        if error.problem == "failed":
            status.mark_revision_failed(error.name)
        else:
            status.mark_revision_not_ready(error.name)
    elif error.problem == "failed":
        status.mark_configuration_failed(error.name)
    else:
        status.mark_configuration_not_ready(error.name)


class RouteReconciler:
    def __init__(
        self,
        *,
        client: KubeClient,
        configurations: Store,
        revisions: Store,
        endpoint_slices: Store,
        ingress: IngressState,
        tracker: Tracker,
        enqueue: Callable[[str], None],
        pod_autoscalers: Store | None = None,
        activator: Callable[[], tuple[Endpoint, ...]] = tuple,
        services: Store | None = None,
    ) -> None:
        self.client = client
        self.services = services
        self.pod_autoscalers = pod_autoscalers
        self.activator = activator
        self.configurations = configurations
        self.revisions = revisions
        self.endpoint_slices = endpoint_slices
        self.ingress = ingress
        self.tracker = tracker
        self.enqueue = enqueue
        self.labeler = RoutingLabeler(client=client, configurations=configurations, revisions=revisions)

    async def reconcile(self, route: Route, context: ReconcileContext) -> float | None:
        config = context.config
        status = route.status
        namespace = route.namespace
        served_before = self._served_before(route)
        named_tags = {target.tag for target in [*(route.spec.traffic or []), *(status.traffic or [])] if target.tag}
        private = self._private_groups(route, context, {"", *named_tags})
        status.url = route_url(route, config, private="" in private)
        status.address = Addressable(url=address_url(route))
        status.mark_tls_not_enabled()

        resolution = resolve_traffic(
            route.spec.traffic or [],
            configurations=_Models(self.configurations, namespace, Configuration),
            revisions=_Models(self.revisions, namespace, Revision),
            service=route.metadata.label(SERVICE_LABEL) or "",
        )
        now = context.now.timestamp()
        annotations = dict(status.annotations or {})
        previous_rollout = Rollout.from_json(annotations.get(ROLLOUT_ANNOTATION))
        rollout: Rollout | None = previous_rollout
        effective: tuple[ResolvedTarget, ...]
        if resolution.ok:
            duration = rollout_duration_seconds(route.metadata.annotations, config.network.rollout_duration_seconds)
            rollout = advance(previous_rollout, resolution.targets, now=now, duration=duration)
            effective = apply_rollout(resolution.targets, rollout, now=now)
            tags = {target.tag for target in effective if target.tag}
            status.traffic = status_traffic(
                effective, {tag: tag_url(route, config, tag, private=tag in private) for tag in tags})
            status.mark_traffic_assigned()
            if rollout.configurations:
                annotations[ROLLOUT_ANNOTATION] = rollout.to_json()
            else:
                annotations.pop(ROLLOUT_ANNOTATION, None)
            status.annotations = annotations or None
        else:
            assert resolution.error is not None
            mark_bad_target(route, resolution.error)
            effective = targets_from_status(status.traffic)

        in_effect = {target.revision for target in effective}
        self._track(route, resolution, in_effect)
        if resolution.ok:
            await self.labeler.label(route, in_effect, resolution.configurations, now=context.now)

        if effective:
            groups = group_by_tag(effective)
            rules = make_ingress_rules(route, groups, config, private)
            backends = {
                RevisionKey(namespace, revision): make_backend(
                    namespace, revision, self.endpoint_slices.by_index(ENDPOINTS_INDEX, f"{namespace}/{revision}"),
                    pod_autoscaler_status=self._pod_autoscaler_status(namespace, revision),
                    activator=self.activator())
                for revision in sorted(in_effect)
            }
            generation = self.ingress.set_route(route.key, rules, backends)
            rolling = rollout is not None and resolution.ok and rollout.in_progress(now)
            served = await self.ingress.is_served(route.key, generation, on_served=lambda: self.enqueue(route.key))
            if rolling:
                status.mark_ingress_rollout_in_progress()
            elif served or (served_before is not None and served_before == (status.url, status.traffic)):
                # Not confirmed in this process yet, but what the Route publishes is what the
                # data plane was already serving (a restarted controller): Ready stays.
                status.mark_ingress_ready()
            else:
                status.mark_ingress_not_ready("Uninitialized", "Waiting for the ingress to serve the Route.")
        elif resolution.ok:
            self.ingress.remove_route(route.key)  # nothing to route: nothing to wait for
            status.mark_ingress_ready()

        await self._reconcile_placeholders(route, context, {target.tag for target in effective if target.tag})

        if resolution.ok and rollout is not None:
            next_step = rollout.next_step_at(now)
            if next_step is not None:
                return max(MIN_REQUEUE_SECONDS, next_step - now)
        return None

    def _private_groups(self, route: Route, context: ReconcileContext, groups: set[str]) -> frozenset[str]:
        services = self.services
        if services is None:
            return frozenset()

        def labels_of(name: str) -> dict[str, str] | None:
            found = services.get(route.namespace, name)
            return ((found or {}).get("metadata") or {}).get("labels")

        return private_groups(route, context.config, groups, labels_of)

    async def _reconcile_placeholders(self, route: Route, context: ReconcileContext, tags: set[str]) -> None:
        if self.services is None:
            return
        owner, uid = event_target(route), route.metadata.uid or ""
        wanted = placeholder_names(route, context.config, tags)
        results = await ensure_together(*(
            ensure_child(self.client, KUBE_SERVICES, self.services, make_placeholder_service(route, name), owner=owner,
                         owner_uid=uid, events=context.events, compare="hash", announce=False,
                         preserve=keep_visibility)
            for name in wanted))
        for name, result in zip(wanted, results):
            if result.not_owned:
                route.status.mark_service_not_owned(name)
        for existing in self.services.list(route.namespace):
            metadata = existing["metadata"]
            if (metadata["name"] not in wanted and (metadata.get("labels") or {}).get(ROUTE_LABEL) == route.name
                    and is_controlled_by(existing, uid)):
                try:
                    await self.client.delete(KUBE_SERVICES, route.namespace, metadata["name"], uid=metadata.get("uid"))
                except NotFound:
                    pass

    @staticmethod
    def _served_before(route: Route) -> tuple[str | None, list[TrafficTarget] | None] | None:
        """The url and traffic a Route's stored status said were served (IngressReady=True for
        its current generation), else None."""
        status = route.status
        ingress_ready = status.get_condition(CONDITION_INGRESS_READY)
        if ingress_ready is None or not ingress_ready.is_true():
            return None
        if status.observed_generation != route.metadata.generation:
            return None
        return status.url, [target.model_copy(deep=True) for target in status.traffic or []] or None

    def _pod_autoscaler_status(self, namespace: str, revision: str) -> JSON | None:
        if self.pod_autoscalers is None:
            return None
        found = self.pod_autoscalers.get(namespace, revision)
        return (found or {}).get("status")

    def _track(self, route: Route, resolution: Resolution, in_effect: set[str]) -> None:
        namespace = route.namespace
        references = [("Configuration", namespace, name) for name in resolution.configurations]
        references += [("Revision", namespace, name) for name in resolution.revisions | in_effect]
        references += [("EndpointSlice", namespace, name) for name in in_effect]
        references += [("PodAutoscaler", namespace, name) for name in in_effect]
        self.tracker.track(route.key, references)

    def forget(self, route_key: str) -> None:
        """The Route is gone: drop its rules and what it tracked."""
        self.tracker.forget(route_key)
        self.ingress.remove_route(route_key)

