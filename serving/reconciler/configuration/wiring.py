"""Wiring of the Configuration reconciler and the revision garbage collector: both run on
Configuration keys; a Revision change enqueues its controlling Configuration. No I/O."""

from __future__ import annotations

from knserve.networking import CONFIGURATION_LABEL
from kube.cache import by_label
from kube.resources import CONFIGURATIONS, REVISIONS
from serving.apis.v1 import Configuration
from serving.reconciler.configuration.reconciler import REVISIONS_BY_CONFIGURATION, ConfigurationReconciler
from serving.reconciler.loop import Controller, ReconcileLoop
from serving.reconciler.tracker import enqueue_controller, enqueue_self
from serving.reconciler.wiring import Collaborators


def wire(collaborators: Collaborators) -> Controller:
    informers = collaborators.informers
    configurations = informers.informer(CONFIGURATIONS)
    revisions = informers.informer(REVISIONS)
    revisions.store.ensure_indexer(REVISIONS_BY_CONFIGURATION, by_label(CONFIGURATION_LABEL))
    reconciler = ConfigurationReconciler(client=collaborators.client, revisions=revisions.store)
    loop = ReconcileLoop(
        client=collaborators.client, resource=CONFIGURATIONS, model=Configuration, store=configurations.store,
        reconciler=reconciler, config=collaborators.config.snapshot, clock=collaborators.clock,
        events=collaborators.events,
    )
    controller = Controller("configuration", loop, workers=collaborators.workers, primary=configurations.store)
    configurations.add_handler(enqueue_self(controller.enqueue))
    revisions.add_handler(enqueue_controller(controller.enqueue, "Configuration"))
    return controller
