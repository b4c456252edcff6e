"""Which Service a Host names, and where its calls are sent.

A call is accepted on any of a Service's host names: its URL (``status.url``), each tag's
URL (``status.traffic[].url``) and the cluster-local names (``<name>.<ns>``,
``<name>.<ns>.svc``, ``<name>.<ns>.svc.cluster.local``, and the same for ``<tag>-<name>``).
It is dispatched to the ingress's internal listener under the cluster-local name of the same
target (``<name-or-tag-name>.<ns>.svc.cluster.local``): the Route serves that name with the
same traffic split as the public one, and every queue replica can reach it from inside the
cluster.

``host_targets`` is pure; a ``MapDirectory`` is kept current by ``follow`` as an informer on
Knative Services hands it changes; ``StaticDirectory`` is a fixed map (tests, ``--static``).
No I/O here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from knserve.callpolicy import RetryPolicy, policy_or_default
from kube.informer import Change

log = logging.getLogger(__name__)

CLUSTER_DOMAIN = "svc.cluster.local"


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    namespace: str
    service: str
    dispatch_host: str
    """The Host header calls are dispatched with."""
    policy: RetryPolicy = RetryPolicy()
    traffic: tuple[tuple[str, int], ...] = ()
    """(revision, percent) of the Service's main traffic (``status.traffic``): where its backlog is demand."""


class Directory(Protocol):
    def lookup(self, host: str) -> Target | None: ...

    def service(self, namespace: str, service: str) -> Target | None: ...


def normalize_host(host: str) -> str:
    """Lower case, without a port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host


def _local_names(name: str, namespace: str) -> tuple[str, ...]:
    return (f"{name}.{namespace}.{CLUSTER_DOMAIN}", f"{name}.{namespace}.svc", f"{name}.{namespace}")


def host_targets(service: Mapping[str, Any]) -> dict[str, Target]:
    """Every host name of one Knative Service -> its target."""
    metadata = service.get("metadata") or {}
    namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
    if not namespace or not name:
        return {}
    policy, problems = policy_or_default(metadata.get("annotations") or {})
    if problems:
        log.warning("Service %s/%s: %s; using the default async policy", namespace, name, " ".join(problems))
    status = service.get("status") or {}
    targets: dict[str, Target] = {}
    traffic = tuple((str(entry["revisionName"]), int(entry.get("percent") or 0))
                    for entry in status.get("traffic") or [] if entry.get("revisionName") and entry.get("percent"))

    def add(local_name: str, public: str | None) -> None:
        target = Target(namespace, name, f"{local_name}.{namespace}.{CLUSTER_DOMAIN}", policy, traffic)
        for host in _local_names(local_name, namespace):
            targets[host] = target
        if public:
            targets.setdefault(normalize_host(public), target)

    add(name, urlsplit(status["url"]).hostname if status.get("url") else None)
    for entry in status.get("traffic") or []:
        tag, url = entry.get("tag"), entry.get("url")
        if tag and url:
            public = urlsplit(url).hostname or ""
            add(public.split(".", 1)[0] if public else f"{tag}-{name}", public)
    return targets


class StaticDirectory:
    def __init__(self, targets: Mapping[str, Target]) -> None:
        self._targets = {normalize_host(host): target for host, target in targets.items()}

    def lookup(self, host: str) -> Target | None:
        return self._targets.get(normalize_host(host))

    def service(self, namespace: str, service: str) -> Target | None:
        for target in self._targets.values():
            if (target.namespace, target.service) == (namespace, service):
                return target
        return None


class MapDirectory:
    """A directory rebuilt from the Services it is given (``replace``/``remove``)."""

    def __init__(self) -> None:
        self._by_service: dict[tuple[str, str], dict[str, Target]] = {}
        self._by_host: dict[str, Target] = {}

    def replace(self, service: Mapping[str, Any]) -> None:
        metadata = service.get("metadata") or {}
        key = (str(metadata.get("namespace")), str(metadata.get("name")))
        self._by_service[key] = host_targets(service)
        self._rebuild()

    def remove(self, namespace: str, name: str) -> None:
        if self._by_service.pop((namespace, name), None) is not None:
            self._rebuild()

    def load(self, services: Iterable[Mapping[str, Any]]) -> None:
        for service in services:
            metadata = service.get("metadata") or {}
            self._by_service[(str(metadata.get("namespace")), str(metadata.get("name")))] = host_targets(service)
        self._rebuild()

    def _rebuild(self) -> None:
        hosts: dict[str, Target] = {}
        for key in sorted(self._by_service):
            for host, target in self._by_service[key].items():
                hosts.setdefault(host, target)
        self._by_host = hosts

    def lookup(self, host: str) -> Target | None:
        return self._by_host.get(normalize_host(host))

    def service(self, namespace: str, service: str) -> Target | None:
        targets = self._by_service.get((namespace, service))
        if not targets:
            return None
        return targets.get(f"{service}.{namespace}.{CLUSTER_DOMAIN}") or next(iter(targets.values()))


def follow(directory: MapDirectory) -> Callable[[Change], None]:
    """An informer handler on Knative Services that keeps ``directory`` current."""

    def on_change(change: Change) -> None:
        metadata = change.object.get("metadata") or {}
        if change.kind == "delete":
            directory.remove(str(metadata.get("namespace")), str(metadata.get("name")))
        else:
            directory.replace(change.object)

    return on_change
