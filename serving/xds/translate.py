"""Ingress model -> xDS snapshot, encoding only what changed since the last translation.

Two listeners: the external one serves ExternalIP rules; the internal one serves every rule
(cluster-local ones only there), like Knative's local gateway. Each listener has a route
configuration of the same name with one virtual host per host name. Every backend becomes an
EDS cluster plus its endpoints, whether or not a rule sends traffic to it yet.

Building envoy-data-plane messages is slow (pydantic validates every nested message), so
the :class:`Translator` builds as few as it can and keeps what it encoded, keyed by the
immutable model values it came from:

- a rule's parts (its problems, revisions and virtual hosts) by the rule;
- a route (the weighted clusters) by its weights, shared by all hosts of a rule;
- endpoints by backend;
- clusters from one encoded template per settings: every cluster is ``make_cluster(name)``,
  and only the name differs;
- a virtual host and a route configuration are put together from those bytes exactly as
  ``make_virtual_host`` and ``make_route_config`` encode (the tests hold the bytes equal).

So the first 1,000-service config builds a route per service, and a later change builds only
what it touched. No I/O; the memo is the translator's only state.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

from serving.xds import type_urls, wire
from serving.xds.model import IngressModel, IngressRule, RevisionBackend, RevisionKey, Split, Visibility
from serving.xds.resources import cluster, listener, names, route
from serving.xds.snapshot import Resource, ResourceSet, Snapshot

# Field numbers used to put encoded parts together (envoy.config.route.v3 / cluster.v3).
_CLUSTER_NAME: Final = 1
_VIRTUAL_HOST_NAME: Final = 1
_VIRTUAL_HOST_DOMAINS: Final = 2
_VIRTUAL_HOST_ROUTES: Final = 3
_ROUTE_CONFIG_NAME: Final = 1
_ROUTE_CONFIG_VIRTUAL_HOSTS: Final = 2

Targets = tuple[tuple[RevisionKey, int], ...]


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


# --- checks ------------------------------------------------------------------------------------


def rule_problems(rule: IngressRule) -> list[str]:
    """What makes one rule unservable on its own (its backends are checked with the model)."""
    problems = []
    if not rule.hosts:
        problems.append(f"Route {rule.route_key} has a rule with no hosts.")
    if not route.weights(rule.splits):
        problems.append(f"Route {rule.route_key} has a rule for {', '.join(rule.hosts)} with no positive percent.")
    return problems


def _backend_problems(backends: tuple[RevisionBackend, ...]) -> tuple[set[RevisionKey], list[str]]:
    keys: set[RevisionKey] = set()
    problems = []
    for backend in backends:
        key = backend.key
        if key in keys:
            problems.append(f"Revision {key} has more than one backend; give each revision one.")
        keys.add(key)
    return keys, problems


def _missing_problems(rule: IngressRule, revisions: frozenset[RevisionKey], known: set[RevisionKey]) -> list[str]:
    if revisions <= known:
        return []
    missing = ", ".join(sorted(map(str, revisions - known)))
    return [f"Route {rule.route_key} sends traffic to {missing}, which the model has no backend for."]


def check_model(model: IngressModel) -> list[str]:
    """Every reason ``model`` cannot be translated (empty when it can)."""
    known, problems = _backend_problems(model.backends)
    for rule in model.rules:
        problems += rule_problems(rule)
        problems += _missing_problems(rule, frozenset(split.key for split in rule.splits), known)
    return problems


# --- memo --------------------------------------------------------------------------------------

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class _Memo(Generic[_K, _V]):
    """What the last translation built, by the model value it came from; unused entries age out."""

    def __init__(self, build: Callable[[_K], _V]) -> None:
        self._build = build
        self._previous: dict[_K, _V] = {}
        self._current: dict[_K, _V] = {}

    def __call__(self, key: _K) -> _V:
        value = self._current.get(key)
        if value is None:
            value = self._previous.get(key)
            if value is None:
                value = self._build(key)
            self._current[key] = value
        return value

    def rotate(self) -> None:
        """End of a translation: keep what it used, forget the rest."""
        self._previous, self._current = self._current, {}


@dataclasses.dataclass(frozen=True, slots=True)
class _Route:
    entry: bytes
    """``VirtualHost.routes`` entry: the encoded Route, length-delimited."""
    clusters: frozenset[str]


@dataclasses.dataclass(frozen=True, slots=True)
class _RuleParts:
    """Everything the translator needs from one rule, computed once per distinct rule."""

    problems: tuple[str, ...]
    revisions: frozenset[RevisionKey]
    listeners: tuple[str, ...]
    virtual_hosts: tuple[tuple[str, bytes], ...]
    """(lower-cased host, ``RouteConfiguration.virtual_hosts`` entry) per host."""
    clusters: frozenset[str]


# --- translator --------------------------------------------------------------------------------


class Translator:
    """Turns successive models into successive snapshots, reusing unchanged encodings."""

    def __init__(self, settings: IngressSettings = IngressSettings()) -> None:
        self.settings = settings
        self._rules = _Memo(self._make_rule_parts)
        self._routes = _Memo(self._make_route)
        self._endpoints = _Memo(self._make_endpoints)
        self._cluster_templates = _Memo(self._make_cluster_template)
        self._clusters = _Memo(self._make_cluster)
        self._listeners = _Memo(self._make_listeners)
        self._memos: tuple[_Memo[object, object], ...] = (
            self._rules, self._routes, self._endpoints, self._cluster_templates, self._clusters, self._listeners,  # type: ignore[assignment]
        )
        self._previous: dict[str, ResourceSet] = {}

    def translate(self, model: IngressModel, *, version: int) -> Translation:
        """The snapshot for ``model``; :class:`ModelError` when the model is not servable."""
        try:
            known, problems = _backend_problems(model.backends)
            parts = [self._rules(rule) for rule in model.rules]
            for rule, rule_parts in zip(model.rules, parts):
                problems += rule_parts.problems
                problems += _missing_problems(rule, rule_parts.revisions, known)
            if problems:
                raise ModelError(problems)
            external, internal, conflicts = self._route_configs(model.rules, parts)
            sets = {
                type_urls.CLUSTER: [self._clusters(backend.key) for backend in model.backends],
                type_urls.ENDPOINT: [self._endpoints(backend) for backend in model.backends],
                type_urls.LISTENER: self._listeners(self.settings),
                type_urls.ROUTE: [external, internal],
            }
            self._previous = {
                type_url: ResourceSet.of(type_url, resources, previous=self._previous.get(type_url))
                for type_url, resources in sets.items()
            }
            snapshot = Snapshot.from_sets(version, self._previous)
        finally:
            for memo in self._memos:
                memo.rotate()
        return Translation(snapshot, conflicts)

    # --- clusters, endpoints, listeners ----------------------------------------------------------

    @staticmethod
    def _make_cluster_template(connect_timeout: datetime.timedelta) -> bytes:
        """``make_cluster(name)`` minus its name, which it encodes first."""
        return wire.encode(cluster.make_cluster("", connect_timeout=connect_timeout))

    def _make_cluster(self, revision: RevisionKey) -> Resource:
        name = names.cluster_name(revision)
        body = wire.length_delimited(_CLUSTER_NAME, name.encode()) + self._cluster_templates(self.settings.connect_timeout)
        return Resource.create(type_urls.CLUSTER, name, body, (name,))

    @staticmethod
    def _make_endpoints(backend: RevisionBackend) -> Resource:
        name = names.cluster_name(backend.key)
        return Resource.create(type_urls.ENDPOINT, name, wire.encode(cluster.make_load_assignment(name, backend.endpoints)))

    @staticmethod
    def _make_listeners(settings: IngressSettings) -> list[Resource]:
        return [
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

    # --- routes ----------------------------------------------------------------------------------

    @staticmethod
    def _make_route(targets: Targets) -> _Route:
        splits = tuple(Split(revision.revision, revision.namespace, weight) for revision, weight in targets)
        return _Route(
            entry=wire.length_delimited(_VIRTUAL_HOST_ROUTES, wire.encode(route.make_route(splits))),
            clusters=frozenset(names.cluster_name(revision) for revision, _ in targets),
        )

    @staticmethod
    def _virtual_host_entry(host: str, routes: _Route) -> bytes:
        """``make_virtual_host(host, ...)``, encoded: name, the domains, then the route."""
        fields = [wire.length_delimited(_VIRTUAL_HOST_NAME, host.encode())]
        fields += [wire.length_delimited(_VIRTUAL_HOST_DOMAINS, domain.encode()) for domain in route.domains(host)]
        return wire.length_delimited(_ROUTE_CONFIG_VIRTUAL_HOSTS, b"".join((*fields, routes.entry)))

    def _make_rule_parts(self, rule: IngressRule) -> _RuleParts:
        problems = tuple(rule_problems(rule))
        revisions = frozenset(split.key for split in rule.splits)
        listeners = (names.INTERNAL,) if rule.visibility is Visibility.CLUSTER_LOCAL else (names.EXTERNAL, names.INTERNAL)
        if problems:
            return _RuleParts(problems, revisions, listeners, (), frozenset())
        routes = self._routes(route.weights(rule.splits))
        virtual_hosts = tuple((host.lower(), self._virtual_host_entry(host, routes)) for host in rule.hosts)
        return _RuleParts(problems, revisions, listeners, virtual_hosts, routes.clusters)

    def _route_configs(
        self, rules: tuple[IngressRule, ...], parts: list[_RuleParts]
    ) -> tuple[Resource, Resource, tuple[HostConflict, ...]]:
        claims: dict[str, dict[str, str]] = {names.EXTERNAL: {}, names.INTERNAL: {}}
        entries: dict[str, list[bytes]] = {names.EXTERNAL: [], names.INTERNAL: []}
        clusters: dict[str, set[str]] = {names.EXTERNAL: set(), names.INTERNAL: set()}
        conflicts = []
        for rule, rule_parts in zip(rules, parts):
            route_key = rule.route_key
            for listener_name in rule_parts.listeners:
                listener_claims, listener_entries = claims[listener_name], entries[listener_name]
                for host, entry in rule_parts.virtual_hosts:
                    owner = listener_claims.get(host)
                    if owner is None:
                        listener_claims[host] = route_key
                        listener_entries.append(entry)
                        clusters[listener_name] |= rule_parts.clusters
                    elif owner != route_key:
                        conflicts.append(HostConflict(host, listener_name, kept=owner, dropped=route_key))
        return (
            self._route_config(names.EXTERNAL, entries[names.EXTERNAL], clusters[names.EXTERNAL]),
            self._route_config(names.INTERNAL, entries[names.INTERNAL], clusters[names.INTERNAL]),
            tuple(conflicts),
        )

    @staticmethod
    def _route_config(name: str, virtual_hosts: list[bytes], clusters: set[str]) -> Resource:
        """``make_route_config(name, ...)``, encoded: name, the virtual hosts, then the rest."""
        head = wire.length_delimited(_ROUTE_CONFIG_NAME, name.encode())
        rest = wire.encode(route.make_route_config(name, []))[len(head) :]
        return Resource.create(type_urls.ROUTE, name, b"".join((head, *virtual_hosts, rest)), clusters)
