"""``autoscaler.kube``'s four boundaries on a real API server, through ``serving.kube``.

``KubeCluster`` keeps two informers (PodAutoscalers; pods carrying the
``serving.knative.dev/revision`` label, indexed by revision) and talks to the API for the
rest: ``GET`` of the Deployment for its replicas, a merge patch of ``/scale`` to change them,
a merge patch of the PodAutoscaler's ``/status``. ``watch_config`` follows the
``config-autoscaler`` ConfigMap in ``knative-serving`` (a bad one is logged and ignored). ``events()`` runs both informers for as
long as it is iterated and starts yielding once the pod cache has synced, so the first
decisions see the real pod counts.

RBAC it needs: podautoscalers (list, watch; patch on podautoscalers/status), pods (list,
watch), deployments (get; patch on deployments/scale), configmaps in knative-serving
(list, watch).
Side effects: API calls through the injected ``KubeClient``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

from autoscaler.kube import PodAutoscalerEvent, PodInfo
from serving.kube.cache import by_label
from serving.kube.client import KubeClient
from serving.kube.errors import NotFound
from serving.kube.informer import Change, Informer
from serving.config.autoscaler import NAME as CONFIG_NAME
from serving.config.autoscaler import AutoscalerConfig
from serving.config.errors import ConfigError
from serving.kube.resources import CONFIGMAPS, DEPLOYMENTS, PODAUTOSCALERS, PODS
from serving.networking import REVISION_LABEL, SYSTEM_NAMESPACE

log = logging.getLogger(__name__)

_EVENT_TYPES = {"add": "ADDED", "update": "MODIFIED", "delete": "DELETED"}


class KubeCluster:
    def __init__(self, client: KubeClient, *, namespace: str | None = None) -> None:
        """``namespace``: only that namespace's PodAutoscalers and pods (default: all)."""
        self._client = client
        self._pod_autoscalers = Informer(client, PODAUTOSCALERS, namespace=namespace)
        self._pods = Informer(
            client, PODS, namespace=namespace, label_selector=REVISION_LABEL,
            indexers={"revision": by_label(REVISION_LABEL)},
        )

    async def events(self) -> AsyncGenerator[PodAutoscalerEvent, None]:
        queue: asyncio.Queue[PodAutoscalerEvent] = asyncio.Queue()

        def enqueue(change: Change) -> None:
            queue.put_nowait((_EVENT_TYPES[change.kind], change.object))

        self._pod_autoscalers.add_handler(enqueue)
        loop = asyncio.get_running_loop()
        informers = [
            loop.create_task(self._pods.run(), name="autoscaler-pods-informer"),
            loop.create_task(self._pod_autoscalers.run(), name="autoscaler-podautoscalers-informer"),
        ]
        try:
            await self._pods.wait_synced()
            while True:
                yield await queue.get()
        finally:
            await _cancel(informers)

    async def list_pods(self, namespace: str, revision: str) -> list[PodInfo]:
        return [PodInfo.from_object(obj) for obj in self._pods.store.by_index("revision", f"{namespace}/{revision}")]

    async def get_replicas(self, namespace: str, deployment: str) -> int | None:
        try:
            obj = await self._client.get(DEPLOYMENTS, namespace, deployment)
        except NotFound:
            return None
        replicas = (obj.get("spec") or {}).get("replicas")
        return int(replicas) if isinstance(replicas, int) else 1

    async def set_replicas(self, namespace: str, deployment: str, replicas: int) -> None:
        await self._client.patch(DEPLOYMENTS, namespace, deployment, {"spec": {"replicas": replicas}}, subresource="scale")

    async def watch_config(self, apply: Callable[[AutoscalerConfig], None]) -> None:
        informer = Informer(
            self._client, CONFIGMAPS, namespace=SYSTEM_NAMESPACE, field_selector=f"metadata.name={CONFIG_NAME}"
        )

        def changed(change: Change) -> None:
            if (change.object.get("metadata") or {}).get("name") != CONFIG_NAME:
                return
            if change.kind == "delete":
                apply(AutoscalerConfig())
                return
            try:
                apply(AutoscalerConfig.from_data(change.object.get("data") or {}))
            except ConfigError as error:
                log.error("%s; keeping the previous autoscaler settings", error)

        informer.add_handler(changed)
        task = asyncio.get_running_loop().create_task(informer.run(), name="autoscaler-config-informer")
        try:
            await asyncio.shield(task)
        finally:
            await _cancel([task])

    async def write_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await self._client.patch(PODAUTOSCALERS, namespace, name, {"status": dict(status)}, subresource="status")


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel until done: Python 3.11's ``wait_for`` can swallow a cancellation that races a
    result (an informer's watch wait), and one lost cancel would hang the shutdown."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
