"""Wiring of the Revision reconciler: Revisions enqueue themselves; their Deployment,
Service and PodAutoscaler enqueue the owning Revision; pods enqueue the Revision named by
their ``serving.knative.dev/revision`` label. Only objects carrying that label are cached.
No I/O."""

from __future__ import annotations

from knserve.networking import REVISION_LABEL
from kube.cache import by_label
from kube.resources import DEPLOYMENTS, KUBE_SERVICES, PODAUTOSCALERS, PODS, REVISIONS
from serving.apis.v1 import Revision
from serving.reconciler.loop import Controller, ReconcileLoop
from serving.reconciler.revision.reconciler import POD_INDEX, RevisionReconciler
from serving.reconciler.tracker import enqueue_controller, enqueue_label, enqueue_self
from serving.reconciler.wiring import Collaborators


def wire(collaborators: Collaborators) -> Controller:
    informers = collaborators.informers
    revisions = informers.informer(REVISIONS)
    deployments = informers.informer(DEPLOYMENTS, label_selector=REVISION_LABEL)
    services = informers.informer(KUBE_SERVICES, label_selector=REVISION_LABEL)
    pod_autoscalers = informers.informer(PODAUTOSCALERS)
    pods = informers.informer(PODS, label_selector=REVISION_LABEL)
    pods.store.add_indexer(POD_INDEX, by_label(REVISION_LABEL))
    reconciler = RevisionReconciler(
        client=collaborators.client, deployments=deployments.store, services=services.store,
        pod_autoscalers=pod_autoscalers.store, pods=pods.store,
    )
    loop = ReconcileLoop(
        client=collaborators.client, resource=REVISIONS, model=Revision, store=revisions.store,
        reconciler=reconciler, config=collaborators.config.snapshot, clock=collaborators.clock,
        events=collaborators.events,
    )
    controller = Controller("revision", loop, workers=collaborators.workers, primary=revisions.store)
    revisions.add_handler(enqueue_self(controller.enqueue))
    for child in (deployments, services, pod_autoscalers):
        child.add_handler(enqueue_controller(controller.enqueue, "Revision"))
    pods.add_handler(enqueue_label(controller.enqueue, REVISION_LABEL))
    return controller
