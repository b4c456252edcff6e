"""The ingress model: what the Route reconciler hands to the xDS layer, as frozen dataclasses.

This is the whole interface between the controller and Envoy. The Route reconciler fills an
:class:`IngressModel` from Routes, Revisions and their ready endpoints; ``translate`` turns it
into Envoy resources. Nothing here knows about Kubernetes or Envoy, and every value is
immutable and hashable, so the translator can cache what it built for an unchanged rule or
backend and serialize only what changed. Hand the same rule and backend objects over again
while they do not change: the translator then finds them at the cost of a dict lookup.

Shape (mirrors Knative's KIngress, flattened)::

    IngressModel
      rules:    IngressRule  one per (route, host set): the route's main hosts, one per tag host,
                             the cluster-local hosts; each says which revisions get what percent
      backends: RevisionBackend  one per revision that any rule (or a warm-up) needs, with the
                             endpoints Envoy should send its traffic to

A rule's splits name revisions; each named revision must have a backend in the model (the
translator refuses a model where one is missing, see ``translate.ModelError``). Backends
with no rule are allowed: give a new revision a backend before any rule points at it and its
cluster is warm in Envoy when traffic moves.

Endpoints are deliberately just (host, port): today they are the revision's ready pod IPs at
the queue-proxy port 8012; when the activator arrives, the reconciler puts the activator's
endpoints into the same backend instead (a revision at zero, or with too little spare
capacity). The cluster, the routes and the weights stay as they are, and only the revision's
endpoint list changes: an EDS-only update, the cheapest one Envoy knows. A backend with no
endpoints is valid and answers 503 at once ("no healthy upstream").

Pure data; no side effects.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final, NamedTuple

from knserve.networking import QUEUE_HTTP_PORT


class Visibility(enum.Enum):
    """Where a rule is reachable (Knative's ``IngressVisibility``)."""

    EXTERNAL_IP = "ExternalIP"
    """On the external listener only (in-cluster callers use the Route's cluster-local rule)."""
    CLUSTER_LOCAL = "ClusterLocal"
    """Only on the internal listener: ``networking.knative.dev/visibility: cluster-local``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """One address Envoy sends a revision's requests to: a pod's queue-proxy, or the activator."""

    host: str
    """An IP address (Envoy resolves nothing here: EDS endpoints are static addresses)."""
    port: int = QUEUE_HTTP_PORT


class RevisionKey(NamedTuple):
    """``namespace/revision``: how splits name backends (a tuple: cheap to make and to hash)."""

    namespace: str
    revision: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.revision}"


@dataclasses.dataclass(frozen=True, slots=True)
class RevisionBackend:
    """A revision as Envoy sees it: one cluster, fed with ``endpoints`` through EDS.

    ``endpoints`` is the full current list; order does not matter (the translator sorts it).
    Empty means "nothing can take a request now": Envoy answers 503 at once.
    """

    namespace: str
    revision: str
    endpoints: tuple[Endpoint, ...] = ()
    _key: RevisionKey = dataclasses.field(init=False, repr=False, compare=False)
    _hash: int = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: the translator looks every backend up on every update.
        object.__setattr__(self, "_key", RevisionKey(self.namespace, self.revision))
        object.__setattr__(self, "_hash", hash((self.namespace, self.revision, self.endpoints)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def key(self) -> RevisionKey:
        return self._key


@dataclasses.dataclass(frozen=True, slots=True)
class Split:
    """``percent`` of a rule's traffic goes to ``revision`` in ``namespace``.

    Percents are non-negative integers. They need not sum to 100 (a gradual rollout moves
    whole points from one split to another, and Envoy takes weights as relative), but a rule
    must have at least one positive percent. Zero-percent splits are dropped from the route;
    two splits naming the same revision are added together.
    """

    revision: str
    namespace: str
    percent: int

    @property
    def key(self) -> RevisionKey:
        return RevisionKey(self.namespace, self.revision)


@dataclasses.dataclass(frozen=True, slots=True)
class IngressRule:
    """A set of host names that route one way, on behalf of one Route.

    ``hosts`` are full host names without a port (``hello.default.example.com``,
    ``canary-hello.default.example.com``, ``hello.default.svc.cluster.local``); the rule becomes
    one Envoy virtual host answering each as ``host`` and ``host:<any port>``. A host another
    Route already has on the same listener (an earlier rule in the model) is left out and
    reported (``XdsController.conflicts``). A Route usually gives several rules: its main host
    with the traffic split, one rule per tag host with a single 100% split, and a
    cluster-local rule. ``generation`` grows with every change of the Route's rules (the Route
    reconciler's ``IngressState`` stamps it); it is how the reconciler learns that Envoy serves
    what it asked for (``XdsController.wait_route_served``).
    """

    namespace: str
    name: str
    hosts: tuple[str, ...]
    splits: tuple[Split, ...]
    visibility: Visibility = Visibility.EXTERNAL_IP
    generation: int = 0
    async_always: bool = False
    """Every request to these hosts goes to the call queue (``knserve.dev/async: always``), but
    the queue's own dispatches; without a queue in the model it has no effect."""
    _hash: int = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.namespace, self.name, self.hosts, self.splits, self.visibility, self.generation,
                  self.async_always)
        object.__setattr__(self, "_hash", hash(fields))

    def __hash__(self) -> int:
        # Computed once: the translator looks every rule up on every update.
        return self._hash

    @property
    def route_key(self) -> str:
        """``namespace/name`` of the Route this rule belongs to."""
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class IngressModel:
    """Everything Envoy should serve, as one immutable value (a new one per change)."""

    rules: tuple[IngressRule, ...] = ()
    backends: tuple[RevisionBackend, ...] = ()
    queue: tuple[Endpoint, ...] | None = None
    """Where the call queue listens (``knserve-queue``'s ready endpoints); None when it is not
    installed. With it, every virtual host sends asynchronous calls there first."""

    def route_generations(self) -> dict[str, int]:
        """The generation of every Route in the model (the lowest, if its rules disagree)."""
        generations: dict[str, int] = {}
        for rule in self.rules:
            known = generations.get(rule.route_key)
            generations[rule.route_key] = rule.generation if known is None else min(known, rule.generation)
        return generations


EMPTY_MODEL: Final = IngressModel()
