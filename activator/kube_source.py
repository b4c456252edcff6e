"""``RevisionSource`` on a real API server, through ``kube``'s informers.

Two informers: Revisions (``containerConcurrency``, ``timeoutSeconds``) and pods carrying
the ``serving.knative.dev/revision`` label. A revision's endpoints are its pods that have an
IP and are neither terminating nor finished: ready when running with their ``Ready``
condition True, not ready otherwise (the activator probes those itself); each at the
queue-proxy's port 8012. A pending pod with an IP counts as not ready, as an EndpointSlice
lists it: the activator starts probing as soon as the node gives the pod its address,
instead of waiting for the status that says its containers run (in a burst of woken
revisions that status reached the activator about a second after the app was ready). Pods
rather than EndpointSlices because a pod names its revision without ambiguity and carries
the IP before any Service picks it up.

RBAC it needs: revisions and pods (list, watch).
Side effects: API reads through the injected ``KubeClient``.
"""

from __future__ import annotations

import asyncio

from activator.revisions import Endpoints, RevisionInfo, RevisionSink, pod_dest
from knserve.networking import REVISION_LABEL
from kube.cache import by_label
from kube.client import KubeClient
from kube.informer import Change, Informer
from kube.objects import JSON, find_condition
from kube.resources import PODS, REVISIONS


def _is_ready(pod: JSON) -> bool:
    return (find_condition(pod, "Ready") or {}).get("status") == "True"


def endpoints_of(pods: list[JSON]) -> Endpoints:
    ready: list[str] = []
    not_ready: list[str] = []
    for pod in pods:
        status = pod.get("status") or {}
        ip, phase = status.get("podIP"), status.get("phase")
        if not ip or phase not in ("Pending", "Running") or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        (ready if phase == "Running" and _is_ready(pod) else not_ready).append(pod_dest(str(ip)))
    return Endpoints.of(ready, not_ready)


class KubeRevisionSource:
    def __init__(self, client: KubeClient, *, namespace: str | None = None) -> None:
        """``namespace``: only that namespace's revisions and pods (default: all)."""
        self._revisions = Informer(client, REVISIONS, namespace=namespace)
        self._pods = Informer(
            client, PODS, namespace=namespace, label_selector=REVISION_LABEL,
            indexers={"revision": by_label(REVISION_LABEL)},
        )

    async def run(self, sink: RevisionSink) -> None:
        def revision_changed(change: Change) -> None:
            metadata = change.object.get("metadata") or {}
            if change.kind == "delete":
                sink.delete_revision(str(metadata.get("namespace", "")), str(metadata.get("name", "")))
            else:
                sink.upsert_revision(RevisionInfo.from_object(change.object))

        def pod_changed(change: Change) -> None:
            metadata = change.object.get("metadata") or {}
            namespace, revision = str(metadata.get("namespace", "")), (metadata.get("labels") or {}).get(REVISION_LABEL)
            if revision:
                pods = self._pods.store.by_index("revision", f"{namespace}/{revision}")
                sink.set_endpoints(namespace, str(revision), endpoints_of(pods))

        self._revisions.add_handler(revision_changed)
        self._pods.add_handler(pod_changed)
        loop = asyncio.get_running_loop()
        informers = {
            loop.create_task(self._revisions.run(), name="activator-revisions-informer"),
            loop.create_task(self._pods.run(), name="activator-pods-informer"),
        }
        try:
            await asyncio.gather(*informers)
        finally:
            # Cancel until done: Python 3.11's wait_for can swallow a cancellation that races
            # a result (an informer's watch wait), and one lost cancel would hang shutdown.
            while pending := {task for task in informers if not task.done()}:
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=0.1)
