"""Wiring of the revision garbage collector: Configuration keys, re-checked whenever the
Configuration or one of its Revisions changes. No I/O."""

from __future__ import annotations

from knserve.networking import CONFIGURATION_LABEL
from kube.cache import by_label
from kube.resources import CONFIGURATIONS, REVISIONS
from serving.reconciler.configuration.reconciler import REVISIONS_BY_CONFIGURATION
from serving.reconciler.gc.reconciler import RevisionCollector
from serving.reconciler.loop import Controller
from serving.reconciler.tracker import enqueue_controller, enqueue_self
from serving.reconciler.wiring import Collaborators


def wire(collaborators: Collaborators) -> Controller:
    informers = collaborators.informers
    configurations = informers.informer(CONFIGURATIONS)
    revisions = informers.informer(REVISIONS)
    revisions.store.ensure_indexer(REVISIONS_BY_CONFIGURATION, by_label(CONFIGURATION_LABEL))
    collector = RevisionCollector(
        client=collaborators.client, configurations=configurations.store, revisions=revisions.store,
        config=collaborators.config.snapshot, clock=collaborators.clock, events=collaborators.events,
    )
    controller = Controller("gc", collector, workers=1, primary=configurations.store)
    configurations.add_handler(enqueue_self(controller.enqueue))
    revisions.add_handler(enqueue_controller(controller.enqueue, "Configuration"))
    return controller
