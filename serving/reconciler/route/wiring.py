"""Wiring of the Route reconciler: Routes enqueue themselves; a Configuration, Revision or
EndpointSlice (by ``kubernetes.io/service-name``) enqueues the Routes that read it last time
(the tracker); a placeholder Service (by ``serving.knative.dev/route``) enqueues its Route;
a change of the activator's endpoints (when found through its Service) enqueues every Route;
the call queue's EndpointSlices go straight into the ingress model (``IngressState.set_queue``);
a deleted Route leaves the ingress model. No I/O."""

from __future__ import annotations

from collections.abc import Callable

from knserve.networking import REVISION_LABEL, ROUTE_LABEL, ROUTES_ANNOTATION
from kube.cache import by_annotation_list, by_label
from kube.endpoints import handover_endpoints_at
from kube.informer import Change
from kube.objects import key_of
from kube.resources import CONFIGURATIONS, ENDPOINT_SLICES, KUBE_SERVICES, PODAUTOSCALERS, REVISIONS, ROUTES
from serving.apis.v1 import Route
from serving.reconciler.loop import Controller, ReconcileLoop
from serving.reconciler.route.ingress_state import IngressState
from serving.reconciler.route.labeler import BY_ROUTE_INDEX
from serving.reconciler.route.reconciler import ENDPOINTS_INDEX, RouteReconciler
from serving.reconciler.route.resources.ingress import service_endpoints
from serving.reconciler.tracker import Tracker
from serving.reconciler.wiring import Collaborators
from serving.xds.model import Endpoint

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
ACTIVATOR_PORT_NAME = "http"
QUEUE_PORT_NAME = "http"


def _service_name(change: Change) -> str | None:
    return (change.object.get("metadata", {}).get("labels") or {}).get(SERVICE_NAME_LABEL)


def _activator_endpoints(collaborators: Collaborators, controller: Controller) -> Callable[[], tuple[Endpoint, ...]]:
    """Where the activator is: the fixed addresses, else the ready endpoints of its Service (or,
    while none is ready, those still serving as they terminate), watched; when they change every
    Route is looked at again (its backends may point there)."""
    fixed = collaborators.activator
    if fixed or not collaborators.activator_service:
        return lambda: fixed
    namespace, _, name = collaborators.activator_service.partition("/")
    slices = collaborators.informers.informer(ENDPOINT_SLICES, namespace=namespace,
                                              label_selector=f"{SERVICE_NAME_LABEL}={name}")

    slices.add_handler(lambda change: controller.resync())
    # An activator being replaced drains (serves) until it exits: it stays in the path until
    # another one is ready, so a revision at zero is never left without one.
    return lambda: tuple(Endpoint(address, port)
                         for address, port in handover_endpoints_at(slices.store.list(namespace), ACTIVATOR_PORT_NAME))


def _follow_queue(collaborators: Collaborators, ingress: IngressState) -> None:
    """The call queue's ready endpoints into the ingress model: None while its Service has no
    EndpointSlices (not installed), else its ready endpoints (possibly none: Envoy answers 503)."""
    if not collaborators.queue_service:
        return
    namespace, _, name = collaborators.queue_service.partition("/")
    slices = collaborators.informers.informer(ENDPOINT_SLICES, namespace=namespace,
                                              label_selector=f"{SERVICE_NAME_LABEL}={name}")

    def on_change(change: Change) -> None:
        found = slices.store.list(namespace)
        ingress.set_queue(service_endpoints(found, QUEUE_PORT_NAME) if found else None)

    slices.add_handler(on_change)


def wire(collaborators: Collaborators, ingress: IngressState) -> Controller:
    informers = collaborators.informers
    routes = informers.informer(ROUTES)
    configurations = informers.informer(CONFIGURATIONS)
    revisions = informers.informer(REVISIONS)
    endpoint_slices = informers.informer(ENDPOINT_SLICES, label_selector=REVISION_LABEL)
    endpoint_slices.store.add_indexer(ENDPOINTS_INDEX, by_label(SERVICE_NAME_LABEL))
    pod_autoscalers = informers.informer(PODAUTOSCALERS)
    placeholders = informers.informer(KUBE_SERVICES, label_selector=ROUTE_LABEL)
    for store in (revisions.store, configurations.store):
        store.ensure_indexer(BY_ROUTE_INDEX, by_annotation_list(ROUTES_ANNOTATION))

    controller = Controller("route", None, workers=collaborators.workers, primary=routes.store)  # type: ignore[arg-type]
    tracker = Tracker(controller.enqueue)
    activator = _activator_endpoints(collaborators, controller)
    _follow_queue(collaborators, ingress)
    reconciler = RouteReconciler(
        client=collaborators.client, configurations=configurations.store, revisions=revisions.store,
        endpoint_slices=endpoint_slices.store, ingress=ingress, tracker=tracker, enqueue=controller.enqueue,
        pod_autoscalers=pod_autoscalers.store, activator=activator, services=placeholders.store,
    )
    controller.loop = ReconcileLoop(
        client=collaborators.client, resource=ROUTES, model=Route, store=routes.store, reconciler=reconciler,
        config=collaborators.config.snapshot, clock=collaborators.clock, events=collaborators.events,
    )

    def on_route(change: Change) -> None:
        if change.kind == "delete":
            reconciler.forget(key_of(change.object))
        else:
            controller.enqueue(key_of(change.object))

    routes.add_handler(on_route)
    configurations.add_handler(tracker.handler("Configuration"))
    revisions.add_handler(tracker.handler("Revision"))
    endpoint_slices.add_handler(tracker.handler("EndpointSlice", _service_name))
    pod_autoscalers.add_handler(tracker.handler("PodAutoscaler"))

    def on_placeholder(change: Change) -> None:  # changed or deleted by someone: put it back
        metadata = change.object.get("metadata", {})
        route = (metadata.get("labels") or {}).get(ROUTE_LABEL)
        if route:
            controller.enqueue(f"{metadata.get('namespace')}/{route}")

    placeholders.add_handler(on_placeholder)
    return controller
