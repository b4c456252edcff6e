"""The autoscaler's boundary with Kubernetes: five small Protocols and an in-memory fake.

What the autoscaler needs from the cluster, and nothing more:

- ``PodAutoscalerWatch.events()``: every PodAutoscaler (``autoscaling.internal.knative.dev/
  v1alpha1``, all namespaces) as ``("ADDED" | "MODIFIED" | "DELETED", object)`` pairs, a full
  list first, then changes, for as long as it runs;
- ``RevisionPods.list_pods(namespace, revision)``: the pods labelled
  ``serving.knative.dev/revision=<revision>`` (an informer cache is the right backing);
- ``DeploymentScale``: read and write ``spec.replicas`` through the Deployment's ``/scale``
  subresource (``apps/v1``, ``deployments/scale``);
- ``PodAutoscalerStatusWriter.write_status``: replace the PodAutoscaler's ``status`` through
  its ``/status`` subresource (a merge patch of ``{"status": ...}`` is enough);
- ``ConfigWatch.watch_config``: every new ``config-autoscaler`` ConfigMap, parsed.

``FakeCluster`` implements all of them in memory for tests and for ``knserve autoscaler
--static``. A kubernetes-asyncio implementation belongs in ``kube/`` (the only
package allowed to import it). No I/O here.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from serving.apis.conditions import parse_time
from serving.config.autoscaler import AutoscalerConfig

PodAutoscalerEvent = tuple[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class PodInfo:
    name: str
    ip: str = ""
    phase: str = "Running"  # Pending, Running, Succeeded, Failed
    ready: bool = False
    terminating: bool = False  # metadata.deletionTimestamp is set
    start_time: float = 0.0  # status.startTime, epoch seconds

    @property
    def serving(self) -> bool:
        """Running, ready and not going away: what Knative scrapes and counts as ready."""
        return self.phase == "Running" and self.ready and not self.terminating and bool(self.ip)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> PodInfo:
        """Read a Pod as the API server returns it (a JSON object)."""
        metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
        )
        start = status.get("startTime")
        return cls(
            name=str(metadata.get("name", "")),
            ip=str(status.get("podIP") or ""),
            phase=str(status.get("phase") or "Pending"),
            ready=ready,
            terminating=metadata.get("deletionTimestamp") is not None,
            start_time=(parse_time(start) if isinstance(start, str) else None) or 0.0,
        )


@dataclass(frozen=True, slots=True)
class PodCounts:
    """A revision's pods by state, as Knative's PodAccessor counts them."""

    ready: int = 0
    not_ready: int = 0
    pending: int = 0
    terminating: int = 0


def count_pods(pods: Iterable[PodInfo]) -> PodCounts:
    """Knative's ``PodCountsByState``: pending and terminating pods count as not ready."""
    ready = not_ready = pending = terminating = 0
    for pod in pods:
        if pod.phase == "Pending":
            pending += 1
            not_ready += 1
        elif pod.phase == "Running":
            if pod.terminating:
                terminating += 1
                not_ready += 1
            elif pod.ready:
                ready += 1
            else:
                not_ready += 1
    return PodCounts(ready=ready, not_ready=not_ready, pending=pending, terminating=terminating)


class PodAutoscalerWatch(Protocol):
    def events(self) -> AsyncIterator[PodAutoscalerEvent]: ...


class RevisionPods(Protocol):
    async def list_pods(self, namespace: str, revision: str) -> list[PodInfo]: ...


class DeploymentScale(Protocol):
    async def get_replicas(self, namespace: str, deployment: str) -> int | None:
        """``spec.replicas`` of the Deployment; None when it does not exist (yet)."""
        ...

    async def set_replicas(self, namespace: str, deployment: str, replicas: int) -> None: ...


class PodAutoscalerStatusWriter(Protocol):
    async def write_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...


class ConfigWatch(Protocol):
    async def watch_config(self, apply: Callable[[AutoscalerConfig], None]) -> None:
        """Call ``apply`` with every new ``config-autoscaler``, until cancelled."""
        ...


class Cluster(PodAutoscalerWatch, RevisionPods, DeploymentScale, PodAutoscalerStatusWriter, ConfigWatch, Protocol):
    """All the boundaries in one object, as one Kubernetes adapter provides them."""


class FakeCluster:
    """PodAutoscalers, pods and Deployment replicas in memory, with a log of every write."""

    def __init__(self) -> None:
        self.pod_autoscalers: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], list[PodInfo]] = {}
        self.replicas: dict[tuple[str, str], int] = {}
        self.scale_writes: list[tuple[str, str, int]] = []
        self.status_writes: list[tuple[str, str, dict[str, Any]]] = []
        self._queue: asyncio.Queue[PodAutoscalerEvent] = asyncio.Queue()

    # --- test controls ------------------------------------------------------------------------
    def apply(self, pod_autoscaler: Mapping[str, Any]) -> None:
        obj = copy.deepcopy(dict(pod_autoscaler))
        metadata = obj.setdefault("metadata", {})
        key = (metadata.setdefault("namespace", "default"), metadata["name"])
        kind = "MODIFIED" if key in self.pod_autoscalers else "ADDED"
        if kind == "MODIFIED" and "status" not in obj:
            obj["status"] = self.pod_autoscalers[key].get("status", {})
        self.pod_autoscalers[key] = obj
        self._queue.put_nowait((kind, copy.deepcopy(obj)))

    def delete(self, namespace: str, name: str) -> None:
        obj = self.pod_autoscalers.pop((namespace, name), None)
        if obj is not None:
            self._queue.put_nowait(("DELETED", obj))

    def set_pods(self, namespace: str, revision: str, pods: Iterable[PodInfo]) -> None:
        self.pods[(namespace, revision)] = list(pods)

    # --- the Protocols ------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[PodAutoscalerEvent]:
        while True:
            yield await self._queue.get()

    async def list_pods(self, namespace: str, revision: str) -> list[PodInfo]:
        return list(self.pods.get((namespace, revision), ()))

    async def get_replicas(self, namespace: str, deployment: str) -> int | None:
        return self.replicas.get((namespace, deployment))

    async def set_replicas(self, namespace: str, deployment: str, replicas: int) -> None:
        self.replicas[(namespace, deployment)] = replicas
        self.scale_writes.append((namespace, deployment, replicas))

    async def watch_config(self, apply: Callable[[AutoscalerConfig], None]) -> None:
        await asyncio.Event().wait()  # the configuration given at start stays

    async def write_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.status_writes.append((namespace, name, copy.deepcopy(dict(status))))
        if (namespace, name) in self.pod_autoscalers:
            self.pod_autoscalers[(namespace, name)]["status"] = copy.deepcopy(dict(status))
