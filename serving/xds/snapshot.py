"""Immutable, versioned xDS snapshots: every resource of every type, encoded once.

A :class:`Resource` is one named Envoy resource as bytes, with the ``DiscoveryResponse`` entry
(the ``Any`` around it) built once, and the names it needs of the next type in ADS order
(listener -> route configurations, route configuration -> clusters, cluster -> endpoints).
A :class:`ResourceSet` is the resources of one type with a version derived from their content,
so equal content has equal versions across restarts of the control plane and a version never
names two different contents. A :class:`Snapshot` holds one set per type and is consistent by
construction: :meth:`Snapshot.create` refuses one whose references do not resolve.

Pure values; no side effects.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import betterproto2
from envoy_data_plane.envoy.config.cluster import v3 as cluster_v3
from envoy_data_plane.envoy.config.endpoint import v3 as endpoint_v3
from envoy_data_plane.envoy.config.listener import v3 as listener_v3
from envoy_data_plane.envoy.config.route import v3 as route_v3
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager import v3 as hcm_v3

from serving.xds import type_urls, wire

_DIGEST_SIZE: Final = 8


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    """One encoded resource. Build with :meth:`create` (or :func:`from_message`)."""

    name: str
    body: bytes
    references: frozenset[str]
    entry: bytes
    """``body`` wrapped as one ``DiscoveryResponse.resources`` entry."""
    digest: bytes

    @classmethod
    def create(cls, type_url: str, name: str, body: bytes, references: Iterable[str] = ()) -> Resource:
        return cls(
            name=name,
            body=body,
            references=frozenset(references),
            entry=wire.any_entry(type_url, body),
            digest=hashlib.blake2b(body, digest_size=_DIGEST_SIZE).digest(),
        )


def _version(items: Mapping[str, Resource]) -> str:
    hasher = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    for name in sorted(items):
        hasher.update(name.encode())
        hasher.update(b"\0")
        hasher.update(items[name].digest)
    return hasher.hexdigest()


@dataclasses.dataclass(frozen=True)
class ResourceSet:
    """All resources of one type, keyed by name, with a content-derived ``version``."""

    type_url: str
    items: Mapping[str, Resource]
    version: str

    @classmethod
    def of(cls, type_url: str, resources: Iterable[Resource], *, previous: ResourceSet | None = None) -> ResourceSet:
        """The set of ``resources``; ``previous`` itself when it holds the very same resources."""
        resources = list(resources)
        if previous is not None and len(previous.items) == len(resources) and all(
            mine is theirs for mine, theirs in zip(resources, previous.items.values())
        ):
            return previous
        items: dict[str, Resource] = {}
        for resource in resources:
            if resource.name in items:
                raise InconsistentSnapshotError([f"{type_urls.SHORT_NAMES[type_url]} resource {resource.name!r} is given twice"])
            items[resource.name] = resource
        return cls(type_url, MappingProxyType(items), _version(items))

    def merged(self, newer: ResourceSet) -> ResourceSet:
        """Every resource of both sets; where a name is in both, ``newer``'s resource."""
        if not self.items or self is newer or self.items.keys() <= newer.items.keys():
            return newer
        items = dict(self.items)
        items.update(newer.items)
        return ResourceSet(self.type_url, MappingProxyType(items), _version(items))

    @functools.cached_property
    def references(self) -> frozenset[str]:
        """Every name the resources need of the next type in ADS order."""
        return frozenset().union(*(resource.references for resource in self.items.values()))


class InconsistentSnapshotError(ValueError):
    """A snapshot whose resources name others it does not contain; ``problems`` says which."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("inconsistent xDS snapshot: " + "; ".join(problems))


def _missing(what: str, names: Iterable[str]) -> list[str]:
    return [f"{what} {name!r}" for name in sorted(names)]


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one group of Envoys should run, at ``version`` (a counter the writer owns)."""

    version: int
    sets: Mapping[str, ResourceSet]

    @classmethod
    def create(
        cls,
        version: int,
        *,
        clusters: Iterable[Resource] = (),
        endpoints: Iterable[Resource] = (),
        listeners: Iterable[Resource] = (),
        routes: Iterable[Resource] = (),
    ) -> Snapshot:
        """A consistent snapshot, or :class:`InconsistentSnapshotError` listing every dangling name."""
        return cls.from_sets(
            version,
            {
                type_urls.CLUSTER: ResourceSet.of(type_urls.CLUSTER, clusters),
                type_urls.ENDPOINT: ResourceSet.of(type_urls.ENDPOINT, endpoints),
                type_urls.LISTENER: ResourceSet.of(type_urls.LISTENER, listeners),
                type_urls.ROUTE: ResourceSet.of(type_urls.ROUTE, routes),
            },
        )

    @classmethod
    def from_sets(cls, version: int, sets: Mapping[str, ResourceSet]) -> Snapshot:
        """A consistent snapshot of one set per type (all four types)."""
        snapshot = cls(version, MappingProxyType({type_url: sets[type_url] for type_url in type_urls.ADS_ORDER}))
        problems = snapshot.consistency_problems()
        if problems:
            raise InconsistentSnapshotError(problems)
        return snapshot

    def __getitem__(self, type_url: str) -> ResourceSet:
        return self.sets[type_url]

    def consistency_problems(self) -> list[str]:
        """What does not resolve: like go-control-plane's ``Consistent``, plus routes to clusters.

        Endpoints must be exactly those the clusters ask for, route configurations exactly
        those the listeners ask for, and every cluster a route sends to must exist.
        """
        clusters, endpoints = self[type_urls.CLUSTER], self[type_urls.ENDPOINT]
        listeners, routes = self[type_urls.LISTENER], self[type_urls.ROUTE]
        wanted_endpoints, wanted_routes = clusters.references, listeners.references
        wanted_clusters = routes.references
        return [
            *_missing("no endpoints for cluster", wanted_endpoints - endpoints.items.keys()),
            *_missing("endpoints for no cluster:", endpoints.items.keys() - wanted_endpoints),
            *_missing("no route configuration", wanted_routes - routes.items.keys()),
            *_missing("route configuration no listener uses:", routes.items.keys() - wanted_routes),
            *_missing("routes send to missing cluster", wanted_clusters - clusters.items.keys()),
        ]


# --- resources from messages ---------------------------------------------------------------------


def _listener_routes(listener: listener_v3.Listener) -> set[str]:
    names = set()
    for chain in listener.filter_chains:
        for network_filter in chain.filters:
            config = network_filter.typed_config
            if config is not None and config.type_url.endswith(".HttpConnectionManager"):
                manager = hcm_v3.HttpConnectionManager.parse(config.value)
                if manager.rds is not None:
                    names.add(manager.rds.route_config_name)
    return names


def _route_clusters(route_config: route_v3.RouteConfiguration) -> set[str]:
    names = set()
    for virtual_host in route_config.virtual_hosts:
        for route in virtual_host.routes:
            action = route.route
            if action is None:
                continue
            if action.cluster:
                names.add(action.cluster)
            if action.weighted_clusters is not None:
                names.update(weight.name for weight in action.weighted_clusters.clusters)
    return names


def describe(message: betterproto2.Message) -> tuple[str, str, set[str]]:
    """(type URL, name, references) of an Envoy resource message, found by reading it."""
    if isinstance(message, cluster_v3.Cluster):
        eds = message.eds_cluster_config
        references = {eds.service_name or message.name} if message.type == cluster_v3.ClusterDiscoveryType.EDS and eds else set()
        return type_urls.CLUSTER, message.name, references
    if isinstance(message, endpoint_v3.ClusterLoadAssignment):
        return type_urls.ENDPOINT, message.cluster_name, set()
    if isinstance(message, listener_v3.Listener):
        return type_urls.LISTENER, message.name, _listener_routes(message)
    if isinstance(message, route_v3.RouteConfiguration):
        return type_urls.ROUTE, message.name, _route_clusters(message)
    raise TypeError(f"not an xDS resource knserve serves: {type(message).__name__}")


def from_message(message: betterproto2.Message) -> Resource:
    """A resource from a message; the slow, general path (``translate`` knows the references)."""
    type_url, name, references = describe(message)
    return Resource.create(type_url, name, wire.encode(message), references)
