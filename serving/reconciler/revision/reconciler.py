"""The Revision reconciler: Deployment, Kubernetes Service and PodAutoscaler, and the
Revision's conditions from what they report.

``status.containerStatuses`` lists every container with the digest its image resolved to, when
known (``resources.digests``: never from a registry; never holding the Revision back).

Phases (the three children are created or updated concurrently):
1. ensure the Deployment (created with the initial scale; updates never touch ``replicas``,
   which belong to the autoscaler through ``/scale``); fold its status into
   ``ResourcesAvailable``; when no replica is available, what the revision's pods say is
   wrong becomes ``ContainerHealthy=False`` or ``ResourcesAvailable=False`` (see
   ``pod_problems``);
2. ensure the Kubernetes Service ``<rev>`` (its EndpointSlices feed the ingress);
3. ensure the PodAutoscaler ``<rev>`` and fold its status in (``Active``, replicas, initial
   scale). While no autoscaler has written a PodAutoscaler status, readiness comes from the
   Deployment's available replicas instead, so a cluster without an autoscaler still serves.

``Active`` is tracked but not part of Ready (see ``revision_lifecycle``).

Side effects: creates and updates Deployments, Services and PodAutoscalers; events.
"""

from __future__ import annotations

from typing import Final

from kube.cache import Store
from kube.client import KubeClient
from kube.objects import JSON
from kube.resources import DEPLOYMENTS, KUBE_SERVICES, PODAUTOSCALERS
from serving.apis.autoscaling.v1alpha1 import PodAutoscaler
from serving.apis.v1 import Revision
from serving.apis.v1.revision_lifecycle import (
    CONDITION_CONTAINER_HEALTHY,
    CONDITION_RESOURCES_AVAILABLE,
    REASON_DEPLOYING,
    REASON_PROGRESS_DEADLINE_EXCEEDED,
)
from serving.reconciler.children import ensure_child, ensure_together
from serving.reconciler.kmeta import event_target
from serving.reconciler.loop import ReconcileContext
from serving.reconciler.revision.pod_problems import surface_pod_problems
from serving.reconciler.revision.resources.deployment import make_deployment
from serving.reconciler.revision.resources.digests import container_statuses
from serving.reconciler.revision.resources.podautoscaler import make_pod_autoscaler
from serving.reconciler.revision.resources.service import make_kubernetes_service

POD_INDEX: Final = "revision"


def keep_replicas(existing: JSON, body: JSON) -> None:
    """An update keeps the replicas the server has (the autoscaler's, or the initial scale)."""
    replicas = (existing.get("spec") or {}).get("replicas")
    if replicas is not None:
        body.setdefault("spec", {})["replicas"] = replicas


def keep_cluster_ip(existing: JSON, body: JSON) -> None:
    spec = existing.get("spec") or {}
    for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if field in spec:
            body.setdefault("spec", {})[field] = spec[field]


def deployment_timed_out(deployment: JSON) -> bool:
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if (condition.get("type") == "Progressing" and condition.get("status") == "False"
                and condition.get("reason") == REASON_PROGRESS_DEADLINE_EXCEEDED):
            return True
    return False


def available_replicas(deployment: JSON) -> int:
    return int((deployment.get("status") or {}).get("availableReplicas") or 0)


def ready_replicas(deployment: JSON) -> int:
    return int((deployment.get("status") or {}).get("readyReplicas") or 0)


class RevisionReconciler:
    def __init__(
        self, *, client: KubeClient, deployments: Store, services: Store, pod_autoscalers: Store, pods: Store
    ) -> None:
        self.client = client
        self.deployments = deployments
        self.services = services
        self.pod_autoscalers = pod_autoscalers
        self.pods = pods

    async def reconcile(self, revision: Revision, context: ReconcileContext) -> float | None:
        owner = event_target(revision)
        uid = revision.metadata.uid or ""
        status = revision.status
        status.container_statuses, status.init_container_statuses = container_statuses(
            revision, context.config, self.pods.by_index(POD_INDEX, f"{revision.namespace}/{revision.name}"))

        desired = make_deployment(revision, context.config)
        desired_service = make_kubernetes_service(revision)
        desired_pa = make_pod_autoscaler(revision, context.config)
        # the three are independent: ask for them at once (one round trip instead of three)
        result, service_result, pa_result = await ensure_together(
            ensure_child(self.client, DEPLOYMENTS, self.deployments, desired, owner=owner, owner_uid=uid,
                         events=context.events, compare="hash", preserve=keep_replicas, announce=False),
            ensure_child(self.client, KUBE_SERVICES, self.services, desired_service, owner=owner, owner_uid=uid,
                         events=context.events, compare="hash", preserve=keep_cluster_ip, announce=False),
            ensure_child(self.client, PODAUTOSCALERS, self.pod_autoscalers, desired_pa, owner=owner, owner_uid=uid,
                         events=context.events, compare="hash", announce=False),
        )
        if result.not_owned or result.object is None:
            status.mark_not_owned("Deployment", desired["metadata"]["name"])
            return None
        deployment = result.object
        status.propagate_deployment_status(deployment.get("status") or {})
        wanted_replicas = int((deployment.get("spec") or {}).get("replicas") or 0)
        if wanted_replicas > 0 and available_replicas(deployment) == 0:
            self.mark_pod_problem(revision, deployment)
        elif wanted_replicas > 0 and ready_replicas(deployment) > 0:
            # A crash marked the container unhealthy; a ready pod since clears it (as Knative
            # does since knative/serving#15503; before, ContainerHealthy=False stayed for good).
            status.mark_container_healthy_true()

        if service_result.not_owned:
            status.mark_not_owned("Service", desired_service["metadata"]["name"])
            return None
        if pa_result.not_owned or pa_result.object is None:
            status.mark_not_owned("PodAutoscaler", desired_pa["metadata"]["name"])
            return None
        pod_autoscaler = PodAutoscaler.model_validate(pa_result.object)
        if pod_autoscaler.status.conditions:
            status.propagate_autoscaler_status(pod_autoscaler.status)
        else:
            self.readiness_without_autoscaler(revision, deployment)
        return None

    def mark_pod_problem(self, revision: Revision, deployment: JSON) -> None:
        """Knative's look at the pods of a Deployment with no available replica."""
        problem = surface_pod_problems(
            self.pods.by_index(POD_INDEX, f"{revision.namespace}/{revision.name}"),
            images={container.name or "": container.image or "" for container in revision.spec.containers or []},
            timed_out=deployment_timed_out(deployment),
        )
        if problem is None:
            return
        if problem.condition == CONDITION_CONTAINER_HEALTHY:
            revision.status.mark_container_healthy_false(problem.reason, problem.message)
        else:
            revision.status.mark_resources_available_false(problem.reason, problem.message)

    def readiness_without_autoscaler(self, revision: Revision, deployment: JSON) -> None:
        """No autoscaler has reported on the PodAutoscaler: judge by available replicas."""
        status = revision.status
        manager = status.manage()
        unavailable = any(
            (condition := manager.get(kind)) is not None and condition.is_false()
            for kind in (CONDITION_RESOURCES_AVAILABLE, CONDITION_CONTAINER_HEALTHY)
        )
        ready = available_replicas(deployment)
        status.actual_replicas = ready_replicas(deployment)
        status.desired_replicas = int((deployment.get("spec") or {}).get("replicas") or 0)
        if ready > 0:
            status.mark_active_true()
            if not unavailable:
                status.mark_resources_available_true()
                status.mark_container_healthy_true()
        else:
            status.mark_active_unknown(REASON_DEPLOYING, "")
            if not unavailable:
                status.mark_resources_available_unknown(REASON_DEPLOYING, "")
