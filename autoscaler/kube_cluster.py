"""``autoscaler.kube``'s four boundaries on a real API server, through ``kube``.

``KubeCluster`` keeps three informers (PodAutoscalers; pods and Deployments carrying the
``serving.knative.dev/revision`` label, pods indexed by revision) and talks to the API for
the rest: a merge patch of ``/scale`` to change replicas, a merge patch of the
PodAutoscaler's ``/status``. Replicas are read from the Deployment cache (a ``GET`` only for
a Deployment the cache does not hold), and a replica count this process wrote counts until
the cache holds that write or a newer version: a burst of woken revisions costs no read
round trips, and the next reconcile never writes the same count again. ``watch_config`` follows the
``config-autoscaler`` ConfigMap in ``knative-serving`` (a bad one is logged and ignored). ``events()`` runs both informers for as
long as it is iterated and starts yielding once the pod cache has synced, so the first
decisions see the real pod counts.

RBAC it needs: podautoscalers (list, watch; patch on podautoscalers/status), pods (list,
watch), deployments (get, list, watch; patch on deployments/scale), configmaps in knative-serving
(list, watch).
Side effects: API calls through the injected ``KubeClient``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

from autoscaler.kube import PodAutoscalerEvent, PodInfo
from knserve.networking import REVISION_LABEL, SYSTEM_NAMESPACE
from kube.cache import by_label
from kube.client import KubeClient
from kube.errors import NotFound
from kube.informer import Change, Informer
from kube.resources import CONFIGMAPS, DEPLOYMENTS, PODAUTOSCALERS, PODS
from serving.config.autoscaler import NAME as CONFIG_NAME
from serving.config.autoscaler import AutoscalerConfig
from serving.config.parsers import ConfigError

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
        self._deployments = Informer(client, DEPLOYMENTS, namespace=namespace, label_selector=REVISION_LABEL)
        # (namespace, deployment) -> (replicas, resourceVersion) of a /scale write not yet in the cache.
        self._written: dict[tuple[str, str], tuple[int, int]] = {}

    @property
    def client(self) -> KubeClient:
        return self._client

    async def events(self) -> AsyncGenerator[PodAutoscalerEvent, None]:
        queue: asyncio.Queue[PodAutoscalerEvent] = asyncio.Queue()

        def enqueue(change: Change) -> None:
            queue.put_nowait((_EVENT_TYPES[change.kind], change.object))

        self._pod_autoscalers.add_handler(enqueue)
        loop = asyncio.get_running_loop()
        informers = [
            loop.create_task(self._pods.run(), name="autoscaler-pods-informer"),
            loop.create_task(self._deployments.run(), name="autoscaler-deployments-informer"),
            loop.create_task(self._pod_autoscalers.run(), name="autoscaler-podautoscalers-informer"),
        ]
        try:
            await self._pods.wait_synced()
            await self._deployments.wait_synced()
            while True:
                yield await queue.get()
        finally:
            await _cancel(informers)

    async def list_pods(self, namespace: str, revision: str) -> list[PodInfo]:
        return [PodInfo.from_object(obj) for obj in self._pods.store.by_index("revision", f"{namespace}/{revision}")]

    async def get_replicas(self, namespace: str, deployment: str) -> int | None:
        cached = self._deployments.store.get(namespace, deployment) if self._deployments.has_synced else None
        if cached is None:
            self._written.pop((namespace, deployment), None)
            try:
                cached = await self._client.get(DEPLOYMENTS, namespace, deployment)
            except NotFound:
                return None
        written = self._written.get((namespace, deployment))
        if written is not None:
            if _version(cached) < written[1]:
                return written[0]
            del self._written[(namespace, deployment)]
        replicas = (cached.get("spec") or {}).get("replicas")
        return int(replicas) if isinstance(replicas, int) else 1

    async def set_replicas(self, namespace: str, deployment: str, replicas: int) -> None:
        scale = await self._client.patch(
            DEPLOYMENTS, namespace, deployment, {"spec": {"replicas": replicas}}, subresource="scale"
        )
        version = _version(scale)  # the Scale carries the Deployment's resourceVersion
        if version > 0:
            self._written[(namespace, deployment)] = (replicas, version)

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


def _version(obj: Mapping[str, Any]) -> int:
    """An object's resourceVersion as a number (0 when it is not one: then no write is held)."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel until done: Python 3.11's ``wait_for`` can swallow a cancellation that races a
    result (an informer's watch wait), and one lost cancel would hang the shutdown."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
