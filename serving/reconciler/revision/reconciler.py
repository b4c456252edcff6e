"""The Revision reconciler: Deployment, Kubernetes Service and PodAutoscaler, and the
Revision's conditions from what they report.

Phases (the three children are created or updated concurrently):
1. ensure the Deployment (created with the initial scale; updates never touch ``replicas``,
   which belong to the autoscaler through ``/scale``); fold its status into
   ``ResourcesAvailable``; when no replica is available, look at the revision's pods: a user
   container that terminated gives ``ContainerHealthy=False`` ``ExitCode<N>`` with its
   termination message; an image the node cannot get (``ImageNotMapped``, pull errors) gives
   ``ContainerHealthy=False`` ``ContainerMissing`` at once; any other waiting reason is
   surfaced as ``ResourcesAvailable=False`` once the Deployment's progress deadline passed;
2. ensure the Kubernetes Service ``<rev>`` (its EndpointSlices feed the ingress);
3. ensure the PodAutoscaler ``<rev>`` and fold its status in (``Active``, replicas, initial
   scale). While no autoscaler has written a PodAutoscaler status, readiness comes from the
   Deployment's available replicas instead, so a cluster without an autoscaler still serves.

``Active`` is tracked but not part of Ready (see ``revision_lifecycle``).

Side effects: creates and updates Deployments, Services and PodAutoscalers; events.
"""

from __future__ import annotations

from typing import Any, Final

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
    container_exiting_message,
    exit_code_reason,
)
from serving.reconciler.children import ensure_child, ensure_together
from serving.reconciler.loop import ReconcileContext
from serving.reconciler.meta import event_target
from serving.reconciler.revision.resources.deployment import QUEUE_CONTAINER_NAME, make_deployment
from serving.reconciler.revision.resources.podautoscaler import make_pod_autoscaler
from serving.reconciler.revision.resources.service import make_kubernetes_service

POD_INDEX: Final = "revision"

# Waiting reasons that mean the container can never start as written: surfaced at once.
IMAGE_FAILURE_REASONS: Final = frozenset(
    {"ImageNotMapped", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)


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
            self.surface_pod_problems(revision, deployment)
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

    def surface_pod_problems(self, revision: Revision, deployment: JSON) -> None:
        """Knative's look at the pods of a Deployment with no available replica."""
        status = revision.status
        images = {container.name: container.image or "" for container in revision.spec.containers or []}
        pods = self.pods.by_index(POD_INDEX, f"{revision.namespace}/{revision.name}")
        for pod in pods:
            pod_status: dict[str, Any] = pod.get("status") or {}
            for condition in pod_status.get("conditions") or []:
                if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                    status.mark_resources_available_false(condition.get("reason") or "Unschedulable",
                                                          condition.get("message") or "")
                    return
            for container in pod_status.get("containerStatuses") or []:
                if container.get("name") == QUEUE_CONTAINER_NAME:
                    continue
                terminated = (container.get("lastState") or {}).get("terminated") or (
                    (container.get("state") or {}).get("terminated"))
                waiting = (container.get("state") or {}).get("waiting")
                if terminated:
                    exit_code = int(terminated.get("exitCode") or 0)
                    message = terminated.get("message") or ""
                    if exit_code == 0 and not message:
                        message = "container exited with no error"
                    status.mark_container_healthy_false(exit_code_reason(exit_code),
                                                        container_exiting_message(message))
                    return
                if waiting and waiting.get("reason") in IMAGE_FAILURE_REASONS:
                    image = images.get(container.get("name"), container.get("image") or "")
                    status.mark_container_missing(image, waiting.get("message") or waiting.get("reason") or "")
                    return
                if waiting and waiting.get("reason") and deployment_timed_out(deployment):
                    status.mark_resources_available_false(waiting["reason"], waiting.get("message") or "")
                    return

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
