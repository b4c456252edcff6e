"""Ingress model -> xDS snapshot, encoding only what changed since the last translation.

Two listeners: the external one serves ExternalIP rules; the internal one serves every rule
(cluster-local ones only there), like Knative's local gateway. Each listener has a route
configuration of the same name with one virtual host per host name. Every backend becomes an
EDS cluster plus its endpoints, whether or not a rule sends traffic to it yet.

Building and encoding envoy-data-plane messages costs about a millisecond per virtual host,
so the :class:`Translator` keeps what it encoded last time, keyed by the immutable model
values it came from (a cluster by name, endpoints by backend, a virtual host by host and
weights), and assembles each route configuration from the cached virtual host bytes. Only
rules and backends that changed are built and encoded again.

No I/O; the translator's memo is its only state.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Hashable
from typing import Final

from serving.xds import type_urls, wire
from serving.xds.model import IngressModel, IngressRule, RevisionBackend, RevisionKey, Visibility
from serving.xds.resources import cluster, listener, names, route
from serving.xds.snapshot import Resource, Snapshot

_ROUTE_CONFIG_NAME: Final = 1  # RouteConfiguration field numbers
_ROUTE_CONFIG_VIRTUAL_HOSTS: Final = 2


@dataclasses.dataclass(frozen=True, slots=True)
class IngressSettings:
    """Where Envoy listens and how it reaches revisions (from ``config-network`` eventually)."""

    external_host: str = "127.0.0.1"
    external_port: int = 8080
    internal_host: str = "127.0.0.1"
    internal_port: int = 8081
    connect_timeout: datetime.timedelta = cluster.CONNECT_TIMEOUT

    @classmethod
    def in_cluster(cls) -> IngressSettings:
        """Listen on every interface, as the ingress pod in a cluster does."""
        return cls(external_host="0.0.0.0", internal_host="0.0.0.0")


class ModelError(ValueError):
    """The model cannot be served as given; ``problems`` lists every reason, as sentences."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the ingress model cannot be translated: " + " ".join(problems))


@dataclasses.dataclass(frozen=True, slots=True)
class HostConflict:
    """Two Routes claim one host on one listener; the earlier rule in the model keeps it."""

    host: str
    listener: str
    kept: str
    """Route key (``namespace/name``) that serves the host."""
    dropped: str


@dataclasses.dataclass(frozen=True, slots=True)
class Translation:
    snapshot: Snapshot
    conflicts: tuple[HostConflict, ...]


def check_model(model: IngressModel) -> list[str]:
    """Every reason ``model`` cannot be translated (empty when it can)."""
    problems = []
    seen: set[RevisionKey] = set()
    for backend in model.backends:
        if backend.key in seen:
            problems.append(f"Revision {backend.key} has more than one backend; give each revision one.")
        seen.add(backend.key)
    for rule in model.rules:
        if not route.weights(rule.splits):
            problems.append(f"Route {rule.route_key} has a rule for {', '.join(rule.hosts)} with no positive percent.")
        missing = sorted({str(split.key) for split in rule.splits if split.key not in seen})
        if missing:
            problems.append(
                f"Route {rule.route_key} sends traffic to {', '.join(missing)}, which the model has no backend for."
            )
        if not rule.hosts:
            problems.append(f"Route {rule.route_key} has a rule with no hosts.")
    return problems


class _Memo:
    """Encoded values of the last translation; entries not used again are dropped."""

    def __init__(self) -> None:
        self._previous: dict[Hashable, object] = {}
        self._current: dict[Hashable, object] = {}

    def get(self, key: Hashable) -> object | None:
        value = self._current.get(key)
        if value is None:
            value = self._previous.get(key)
            if value is not None:
                self._current[key] = value
        return value

    def put(self, key: Hashable, value: object) -> None:
        self._current[key] = value

    def rotate(self) -> None:
        self._previous, self._current = self._current, {}


@dataclasses.dataclass(frozen=True, slots=True)
class _VirtualHost:
    entry: bytes
    """``RouteConfiguration.virtual_hosts`` entry: the encoded VirtualHost, length-delimited."""
    clusters: frozenset[str]


class Translator:
    """Turns successive models into successive snapshots, reusing unchanged encodings."""

    def __init__(self, settings: IngressSettings = IngressSettings()) -> None:
        self.settings = settings
        self._memo = _Memo()

    def translate(self, model: IngressModel, *, version: int) -> Translation:
        """The snapshot for ``model``; :class:`ModelError` when the model is not servable."""
        problems = check_model(model)
        if problems:
            raise ModelError(problems)
        try:
            external, internal, conflicts = self._route_configs(model.rules)
            snapshot = Snapshot.create(
                version,
                clusters=[self._cluster(backend.key) for backend in model.backends],
                endpoints=[self._endpoints(backend) for backend in model.backends],
                listeners=self._listeners(),
                routes=[external, internal],
            )
        finally:
            self._memo.rotate()
        return Translation(snapshot, conflicts)

    # --- clusters --------------------------------------------------------------------------------

    def _cluster(self, revision: RevisionKey) -> Resource:
        key = ("cluster", revision, self.settings.connect_timeout)
        resource = self._memo.get(key)
        if resource is None:
            name = names.cluster_name(revision)
            message = cluster.make_cluster(name, connect_timeout=self.settings.connect_timeout)
            resource = Resource.create(type_urls.CLUSTER, name, wire.encode(message), (name,))
            self._memo.put(key, resource)
        assert isinstance(resource, Resource)
        return resource

    def _endpoints(self, backend: RevisionBackend) -> Resource:
        key = ("endpoints", backend)
        resource = self._memo.get(key)
        if resource is None:
            name = names.cluster_name(backend.key)
            message = cluster.make_load_assignment(name, backend.endpoints)
            resource = Resource.create(type_urls.ENDPOINT, name, wire.encode(message))
            self._memo.put(key, resource)
        assert isinstance(resource, Resource)
        return resource

    # --- listeners -------------------------------------------------------------------------------

    def _listeners(self) -> list[Resource]:
        settings = self.settings
        key = ("listeners", settings)
        resources = self._memo.get(key)
        if resources is None:
            resources = [
                Resource.create(
                    type_urls.LISTENER,
                    name,
                    wire.encode(listener.make_listener(name, host=host, port=port, route_config_name=name)),
                    (name,),
                )
                for name, host, port in (
                    (names.EXTERNAL, settings.external_host, settings.external_port),
                    (names.INTERNAL, settings.internal_host, settings.internal_port),
                )
            ]
            self._memo.put(key, resources)
        assert isinstance(resources, list)
        return resources

    # --- routes ----------------------------------------------------------------------------------

    def _virtual_host(self, host: str, rule: IngressRule) -> _VirtualHost:
        targets = route.weights(rule.splits)
        key = ("vhost", host, targets)
        virtual_host = self._memo.get(key)
        if virtual_host is None:
            body = wire.encode(route.make_virtual_host(host, rule.splits))
            virtual_host = _VirtualHost(
                entry=wire.length_delimited(_ROUTE_CONFIG_VIRTUAL_HOSTS, body),
                clusters=frozenset(names.cluster_name(revision) for revision, _ in targets),
            )
            self._memo.put(key, virtual_host)
        assert isinstance(virtual_host, _VirtualHost)
        return virtual_host

    def _route_configs(self, rules: tuple[IngressRule, ...]) -> tuple[Resource, Resource, tuple[HostConflict, ...]]:
        claims: dict[str, dict[str, str]] = {names.EXTERNAL: {}, names.INTERNAL: {}}
        chosen: dict[str, list[_VirtualHost]] = {names.EXTERNAL: [], names.INTERNAL: []}
        conflicts = []
        for rule in rules:
            listeners = (names.INTERNAL,) if rule.visibility is Visibility.CLUSTER_LOCAL else (names.EXTERNAL, names.INTERNAL)
            for host in rule.hosts:
                for listener_name in listeners:
                    owner = claims[listener_name].get(host.lower())
                    if owner is None:
                        claims[listener_name][host.lower()] = rule.route_key
                        chosen[listener_name].append(self._virtual_host(host, rule))
                    elif owner != rule.route_key:
                        conflicts.append(HostConflict(host, listener_name, kept=owner, dropped=rule.route_key))
        return (
            self._route_config(names.EXTERNAL, chosen[names.EXTERNAL]),
            self._route_config(names.INTERNAL, chosen[names.INTERNAL]),
            tuple(conflicts),
        )

    def _route_config(self, name: str, virtual_hosts: list[_VirtualHost]) -> Resource:
        """``make_route_config(name, ...)`` encoded from cached virtual hosts (a test holds them equal)."""
        head = wire.length_delimited(_ROUTE_CONFIG_NAME, name.encode())
        empty = wire.encode(route.make_route_config(name, []))
        assert empty.startswith(head), "make_route_config must encode its name first"
        body = b"".join((head, *(virtual_host.entry for virtual_host in virtual_hosts), empty[len(head) :]))
        references = frozenset().union(*(virtual_host.clusters for virtual_host in virtual_hosts))
        return Resource.create(type_urls.ROUTE, name, body, references)
