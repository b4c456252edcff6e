"""One ADS stream, state of the world, as a sans-I/O protocol object.

Feed it every ``DiscoveryRequest`` Envoy sends (:meth:`AdsStream.receive`) and ask it what to
send (:meth:`AdsStream.pending`, encoded ``DiscoveryResponse`` bytes in ADS order). It keeps,
per type, the names Envoy subscribed to and the last response it got (set and nonce), and
applies the protocol rules:

- a request echoing the nonce of our last response for that type is its NACK when it
  carries ``error_detail``, its ACK when it quotes that response's version, and otherwise
  a re-request after a NACK (Envoy sends ``error_detail`` once and stays on its last good
  version); ACKs and NACKs are reported to the cache;
- a request with any other nonce is stale (Envoy had not yet seen our newer response) and
  is ignored; the ACK of the newer response carries everything it says;
- the first request of a type on a stream is a subscription, whatever ``version_info`` it
  carries: a control plane that restarted cannot know what that version held, so it answers
  with what it has (equal content has equal versions, so Envoy changes nothing); a first
  request on a stream without any version is a new Envoy process, which starts over;
- one response per request: after answering, the type waits for Envoy's next request;
- every response gets a fresh nonce; a set Envoy refused is never sent again;
- clusters and listeners go out whole (what a response leaves out, Envoy removes), but
  endpoints and route configurations only where they differ from what this stream already
  sent: Envoy updates just the named ones it gets, so one changed route configuration or
  endpoint list does not make it reprocess the others (each response still carries the
  version of the whole set, and its ACK counts for the whole set);
- a changed or newly added cluster is built anew by Envoy and waits for its endpoints
  (15 s, then it gives up waiting): so its endpoints go out again even though this stream
  sent the same ones before (a cluster removed and added back), and likewise the route
  configurations of a changed or added listener.

No I/O; the gRPC servicer moves the bytes.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterator

from envoy_data_plane.envoy.service.discovery.v3 import DiscoveryRequest

from serving.xds import type_urls, wire
from serving.xds.cache import Cache, NodeInfo, NodeSession
from serving.xds.snapshot import Resource, ResourceSet

log = logging.getLogger(__name__)

_WILDCARD = "*"


class ProtocolError(Exception):
    """Envoy's stream broke the xDS protocol; the sentence says how."""


@dataclasses.dataclass(slots=True)
class _TypeState:
    names: frozenset[str] | None = None
    """Subscribed resource names; None for the whole set (clusters, listeners)."""
    sent: ResourceSet | None = None
    nonce: str = ""
    waiting: bool = False
    """Envoy sent a request we have not answered yet."""
    resubscribed: bool = False
    """The subscribed names changed since the last response."""
    delivered: dict[str, bytes] = dataclasses.field(default_factory=dict)
    """Digest per resource Envoy got on this stream."""
    last_names: tuple[str, ...] = ()
    """The resources in the last response."""


def nonce_counter(prefix: str) -> Iterator[str]:
    """``prefix-1``, ``prefix-2``, ...: unique per control plane run when ``prefix`` is."""
    return (f"{prefix}-{number}" for number in itertools.count(1))


class AdsStream:
    """The protocol state of one ``StreamAggregatedResources`` call."""

    def __init__(self, cache: Cache, *, wake: Callable[[], None], nonces: Iterator[str]) -> None:
        self._cache = cache
        self._wake = wake
        self._nonces = nonces
        self._session: NodeSession | None = None
        self._types: dict[str, _TypeState] = {}
        self.node: NodeInfo | None = None

    def receive(self, request: DiscoveryRequest) -> None:
        if self._session is None:
            if request.node is None or not request.node.id:
                raise ProtocolError("the first request on an ADS stream must carry the node (with an id)")
            self.node = NodeInfo(id=request.node.id, cluster=request.node.cluster)
            # An Envoy that had config quotes its version; one without config is a new process.
            self._session = self._cache.open(self.node, self._wake, fresh=not request.version_info)
        type_url = request.type_url
        if type_url not in type_urls.SHORT_NAMES:
            log.warning("node %s asked for unknown type %s; ignoring it", self.node, type_url)
            return
        state = self._types.setdefault(type_url, _TypeState())
        if state.sent is not None:
            if request.response_nonce != state.nonce:
                return  # stale: a newer response is on its way to Envoy
            error = request.error_detail
            if error is not None and (error.code != 0 or error.message):
                rejection = self._session.nack(type_url, state.sent, error.message)
                log.warning("node %s: %s", self.node.id if self.node else "?", rejection)
                for name in state.last_names:  # which of them Envoy applied is unknown
                    state.delivered.pop(name, None)
            elif request.version_info == state.sent.version:
                self._session.ack(type_url, state.sent)
            # else: a new request after a NACK (Envoy drops error_detail once sent): still on
            # its last good version, so neither an ACK nor a new NACK.
        names = None if type_url in type_urls.WILDCARD_TYPES else frozenset(request.resource_names)
        if names is not None and _WILDCARD in names:
            names = None
        if state.sent is None or names != state.names:
            state.resubscribed = True
            if names is not None:
                state.delivered = {name: digest for name, digest in state.delivered.items() if name in names}
        state.names = names
        state.waiting = True

    def pending(self) -> list[bytes]:
        """Responses to send now, in ADS order (empty when Envoy is up to date or must wait)."""
        session = self._session
        if session is None:
            return []
        responses = []
        for type_url in type_urls.ADS_ORDER:
            state = self._types.get(type_url)
            if state is None or not state.waiting:
                continue
            offered = session.offered(type_url)
            if offered is None:
                continue
            unchanged = state.sent is not None and state.sent.version == offered.version
            if unchanged and not state.resubscribed:
                continue
            if session.is_rejected(type_url, offered.version):
                continue
            nonce = next(self._nonces)
            resources = self._changed(state, offered)
            responses.append(
                wire.discovery_response(
                    version_info=offered.version,
                    type_url=type_url,
                    nonce=nonce,
                    entries=[resource.entry for resource in resources],
                )
            )
            state.sent, state.nonce = offered, nonce
            state.last_names = tuple(resource.name for resource in resources)
            state.waiting = state.resubscribed = False
        return responses

    def _changed(self, state: _TypeState, offered: ResourceSet) -> list[Resource]:
        """What to put in a response: everything for whole-set types, else what Envoy lacks."""
        delivered = state.delivered
        if state.names is None:
            resources = list(offered.items.values())
            # New names count too: a cluster removed and added again (a Service deleted and
            # applied anew) is a new cluster to Envoy, waiting for endpoints it once had.
            rebuilt = [resource for resource in resources if delivered.get(resource.name) != resource.digest]
            if rebuilt:
                self._redeliver(offered.type_url, rebuilt)
            state.delivered = {resource.name: resource.digest for resource in resources}
            return resources
        resources = [
            resource
            for name, resource in offered.items.items()
            if name in state.names and delivered.get(name) != resource.digest
        ]
        delivered.update((resource.name, resource.digest) for resource in resources)
        return resources

    def _redeliver(self, type_url: str, rebuilt: list[Resource]) -> None:
        """Envoy builds ``rebuilt`` anew: send what they refer to again, changed or not."""
        dependent = self._types.get(type_urls.ADS_ORDER[type_urls.ADS_ORDER.index(type_url) + 1])
        if dependent is None:
            return
        for resource in rebuilt:
            for name in resource.references:
                dependent.delivered.pop(name, None)
        dependent.resubscribed = True

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
