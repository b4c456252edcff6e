"""Ingress model -> xDS snapshot, encoding only what changed since the last translation.

Two listeners: the external one serves ExternalIP rules, the internal one ClusterLocal
rules (as Knative's public and local gateways do; every Route has cluster-local hosts for
in-cluster callers). Each listener has a route configuration of the same name with one
virtual host per rule (see ``resources.route``). A host name claimed by two Routes stays
with the earlier rule. Every backend becomes an EDS cluster plus its endpoints, whether or
not a rule sends traffic to it yet.

Building envoy-data-plane messages is slow (pydantic validates every nested message), so
the :class:`Translator` builds as few as it can and keeps what it encoded, keyed by the
immutable model values it came from:

- a rule's parts (its problems, revisions and encoded virtual host) by the rule;
- a route (the weighted clusters) by its weights, shared by the rules of a Route;
- endpoints by backend;
- clusters from one encoded template: every cluster is ``make_cluster(name)``, and only
  the name differs; the listeners once;
- a virtual host and a route configuration are put together from those bytes exactly as
  ``make_virtual_host`` and ``make_route_config`` encode (the tests hold the bytes equal).

When the model has a call queue (``IngressModel.queue``), it gets a cluster of its own and
every virtual host starts with ``route.make_queue_routes`` (encoded once per kind: asked for
with ``Prefer``, or every request but the queue's own for an ``async_always`` rule); the
rules' memo starts afresh when the queue comes or goes. The queue's own dispatches are told
apart by the ingress token in ``K-Call-Dispatch``; without an ingress token nothing could
tell them apart, so an ``async_always`` rule then gets the ``Prefer`` routes (no Service is
forced asynchronous; queuing everything would send the queue's dispatches back to it).

So the first 1,000-service config builds a route per service, and a later change builds only
what it touched. No I/O; the memo is the translator's only state.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Callable, Hashable
from typing import Any, Final, Generic, TypeVar

from serving.xds import type_urls, wire
from serving.xds.model import Endpoint, IngressModel, IngressRule, RevisionBackend, RevisionKey, Split, Visibility
from serving.xds.resources import cluster, listener, names, route
from serving.xds.snapshot import Resource, ResourceSet, Snapshot

# Field numbers used to put encoded parts together (envoy.config.route.v3 / cluster.v3).
_CLUSTER_NAME: Final = 1
_VIRTUAL_HOST_NAME: Final = 1
_VIRTUAL_HOST_DOMAINS: Final = 2
_VIRTUAL_HOST_ROUTES: Final = 3
_VIRTUAL_HOST_RETRY_POLICY: Final = 16
_RETRY_POLICY: Final = wire.length_delimited(_VIRTUAL_HOST_RETRY_POLICY, wire.encode(route.RETRY_POLICY))
"""Every virtual host's retry policy, encoded once."""
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
    ingress_token: str = ""
    """Added to every routed request (``route.make_route_config``); the activator requires it,
    and the call queue marks its dispatches with it (``async_always`` rules need it)."""

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

    route_key: str
    problems: tuple[str, ...]
    revisions: frozenset[RevisionKey]
    listener: str
    hosts: tuple[str, ...]
    """Each host once, lower-cased (as Envoy matches them), in the rule's order."""
    domains: tuple[bytes, ...]
    """Per host, its ``VirtualHost.domains`` entries."""
    route: _Route | None
    entry: bytes
    """The rule's ``RouteConfiguration.virtual_hosts`` entry when it gets all its hosts."""
    async_always: bool = False


# --- translator --------------------------------------------------------------------------------


class Translator:
    """Turns successive models into successive snapshots, reusing unchanged encodings."""

    def __init__(self, settings: IngressSettings = IngressSettings()) -> None:
        self.settings = settings
        self._rules = _Memo(self._make_rule_parts)
        self._routes = _Memo(self._make_route)
        self._endpoints = _Memo(self._make_endpoints)
        self._clusters = _Memo(self._make_cluster)
        self._memos: tuple[_Memo[Any, Any], ...] = (self._rules, self._routes, self._endpoints, self._clusters)
        self._previous: dict[str, ResourceSet] = {}
        self._queue_routes = b""
        """``VirtualHost.routes`` entries sending asynchronous calls to the queue (empty: no queue)."""
        self._queue_routes_always = b""
        """The same for an ``async_always`` rule: every request but the queue's own (the ``Prefer``
        routes when there is no ingress token)."""

    def _use_queue(self, on: bool) -> None:
        if on == bool(self._queue_routes):
            return
        token = self.settings.ingress_token
        encoded = [b"".join(wire.length_delimited(_VIRTUAL_HOST_ROUTES, wire.encode(queue_route))
                            for queue_route in route.make_queue_routes(names.QUEUE_CLUSTER, always=always,
                                                                       dispatch_token=token))
                   if on else b"" for always in (False, bool(token))]
        self._queue_routes, self._queue_routes_always = encoded
        self._rules = _Memo(self._make_rule_parts)  # every virtual host changes
        self._memos = (self._rules, self._routes, self._endpoints, self._clusters)

    def translate(self, model: IngressModel, *, version: int) -> Translation:
        """The snapshot for ``model``; :class:`ModelError` when the model is not servable."""
        try:
            self._use_queue(model.queue is not None)
            known, problems = _backend_problems(model.backends)
            parts = [self._rules(rule) for rule in model.rules]
            for rule, rule_parts in zip(model.rules, parts):
                problems += rule_parts.problems
                problems += _missing_problems(rule, rule_parts.revisions, known)
            if problems:
                raise ModelError(problems)
            external, internal, conflicts = self._route_configs(parts)
            sets = {
                type_urls.CLUSTER: [self._clusters(backend.key) for backend in model.backends]
                + ([self._queue_cluster] if model.queue is not None else []),
                type_urls.ENDPOINT: [self._endpoints(backend) for backend in model.backends]
                + ([self._queue_endpoints(model.queue)] if model.queue is not None else []),
                type_urls.LISTENER: self._listeners,
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

    @functools.cached_property
    def _cluster_template(self) -> bytes:
        """``make_cluster(name)`` minus its name, which it encodes first."""
        return wire.encode(cluster.make_cluster("", connect_timeout=self.settings.connect_timeout))

    def _make_cluster(self, revision: RevisionKey) -> Resource:
        name = names.cluster_name(revision)
        body = wire.length_delimited(_CLUSTER_NAME, name.encode()) + self._cluster_template
        return Resource.create(type_urls.CLUSTER, name, body, (name,))

    @functools.cached_property
    def _queue_cluster(self) -> Resource:
        name = names.QUEUE_CLUSTER
        body = wire.length_delimited(_CLUSTER_NAME, name.encode()) + self._cluster_template
        return Resource.create(type_urls.CLUSTER, name, body, (name,))

    @staticmethod
    def _queue_endpoints(endpoints: tuple[Endpoint, ...]) -> Resource:
        name = names.QUEUE_CLUSTER
        return Resource.create(type_urls.ENDPOINT, name, wire.encode(cluster.make_load_assignment(name, endpoints)))

    @staticmethod
    def _make_endpoints(backend: RevisionBackend) -> Resource:
        name = names.cluster_name(backend.key)
        return Resource.create(type_urls.ENDPOINT, name, wire.encode(cluster.make_load_assignment(name, backend.endpoints)))

    @functools.cached_property
    def _listeners(self) -> list[Resource]:
        settings = self.settings
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

    def _virtual_host_entry(self, hosts: tuple[str, ...], domains: tuple[bytes, ...], routes: _Route, *,
                            async_always: bool = False) -> bytes:
        """``make_virtual_host(hosts[0], hosts, ...)``, encoded: name, domains, then the queue's
        routes (if any), the route and the retry policy."""
        name = wire.length_delimited(_VIRTUAL_HOST_NAME, hosts[0].encode())
        queue = self._queue_routes_always if async_always else self._queue_routes
        return wire.length_delimited(_ROUTE_CONFIG_VIRTUAL_HOSTS,
                                     b"".join((name, *domains, queue, routes.entry, _RETRY_POLICY)))

    def _make_rule_parts(self, rule: IngressRule) -> _RuleParts:
        problems = tuple(rule_problems(rule))
        revisions = frozenset(split.key for split in rule.splits)
        listener_name = names.INTERNAL if rule.visibility is Visibility.CLUSTER_LOCAL else names.EXTERNAL
        if problems:
            return _RuleParts(rule.route_key, problems, revisions, listener_name, (), (), None, b"")
        hosts = tuple(dict.fromkeys(host.lower() for host in rule.hosts))
        domains = tuple(
            b"".join(wire.length_delimited(_VIRTUAL_HOST_DOMAINS, domain.encode()) for domain in route.domains(host))
            for host in hosts
        )
        routes = self._routes(route.weights(rule.splits))
        return _RuleParts(rule.route_key, problems, revisions, listener_name, hosts, domains, routes,
                          self._virtual_host_entry(hosts, domains, routes, async_always=rule.async_always),
                          rule.async_always)

    def _route_configs(self, parts: list[_RuleParts]) -> tuple[Resource, Resource, tuple[HostConflict, ...]]:
        # per listener: host -> position of the rule that has it
        claims: dict[str, dict[str, int]] = {names.EXTERNAL: {}, names.INTERNAL: {}}
        entries: dict[str, list[bytes]] = {names.EXTERNAL: [], names.INTERNAL: []}
        clusters: dict[str, list[frozenset[str]]] = {names.EXTERNAL: [], names.INTERNAL: []}
        conflicts = []
        for position, rule_parts in enumerate(parts):
            if rule_parts.route is None:
                continue
            listener_claims = claims[rule_parts.listener]
            taken = [index for index, host in enumerate(rule_parts.hosts)
                     if listener_claims.setdefault(host, position) != position]
            entry = rule_parts.entry
            if taken:
                for index in taken:
                    owner = parts[listener_claims[rule_parts.hosts[index]]].route_key
                    if owner != rule_parts.route_key:  # a Route's own earlier rule is no conflict
                        conflicts.append(HostConflict(rule_parts.hosts[index], rule_parts.listener, kept=owner,
                                                      dropped=rule_parts.route_key))
                if len(taken) == len(rule_parts.hosts):
                    continue
                kept = [index for index in range(len(rule_parts.hosts)) if index not in taken]
                entry = self._virtual_host_entry(tuple(rule_parts.hosts[index] for index in kept),
                                                 tuple(rule_parts.domains[index] for index in kept), rule_parts.route,
                                                 async_always=rule_parts.async_always)
            entries[rule_parts.listener].append(entry)
            clusters[rule_parts.listener].append(rule_parts.route.clusters)
        queue = frozenset({names.QUEUE_CLUSTER}) if self._queue_routes else frozenset()
        return (
            self._route_config(names.EXTERNAL, entries[names.EXTERNAL], queue.union(*clusters[names.EXTERNAL])),
            self._route_config(names.INTERNAL, entries[names.INTERNAL], queue.union(*clusters[names.INTERNAL])),
            tuple(conflicts),
        )

    def _route_config(self, name: str, virtual_hosts: list[bytes], clusters: frozenset[str]) -> Resource:
        """``make_route_config(name, ...)``, encoded: name, the virtual hosts, then the rest."""
        head = wire.length_delimited(_ROUTE_CONFIG_NAME, name.encode())
        rest = wire.encode(route.make_route_config(name, [], ingress_token=self.settings.ingress_token))[len(head) :]
        return Resource.create(type_urls.ROUTE, name, b"".join((head, *virtual_hosts, rest)), clusters)
