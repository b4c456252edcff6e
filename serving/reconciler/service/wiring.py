"""Wiring of the Service reconciler: Services enqueue themselves; their Configuration and
Route enqueue the owning Service; it reads Revisions (is a template's Revision name taken?)
from the shared informer. No I/O."""

from __future__ import annotations

from kube.resources import CONFIGURATIONS, REVISIONS, ROUTES, SERVICES
from serving.apis.v1 import Service
from serving.reconciler.loop import Controller, ReconcileLoop
from serving.reconciler.service.reconciler import ServiceReconciler
from serving.reconciler.tracker import enqueue_controller, enqueue_self
from serving.reconciler.wiring import Collaborators


def wire(collaborators: Collaborators) -> Controller:
    informers = collaborators.informers
    services = informers.informer(SERVICES)
    configurations = informers.informer(CONFIGURATIONS)
    routes = informers.informer(ROUTES)
    revisions = informers.informer(REVISIONS)
    reconciler = ServiceReconciler(client=collaborators.client, configurations=configurations.store,
                                   routes=routes.store, revisions=revisions.store,
                                   request_metrics=collaborators.request_metrics)
    loop = ReconcileLoop(
        client=collaborators.client, resource=SERVICES, model=Service, store=services.store, reconciler=reconciler,
        config=collaborators.config.snapshot, clock=collaborators.clock, events=collaborators.events,
    )
    controller = Controller("service", loop, workers=collaborators.workers, primary=services.store)
    services.add_handler(enqueue_self(controller.enqueue))
    configurations.add_handler(enqueue_controller(controller.enqueue, "Service"))
    routes.add_handler(enqueue_controller(controller.enqueue, "Service"))
    return controller
