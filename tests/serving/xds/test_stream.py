"""The ADS protocol of one stream: subscriptions, nonces, ACK and NACK, against the real cache."""

import pytest
from envoy_data_plane.envoy.config.core.v3 import Node
from envoy_data_plane.envoy.service.discovery.v3 import DiscoveryRequest, DiscoveryResponse
from envoy_data_plane.google.rpc import Status

from serving.xds import type_urls
from serving.xds.cache import SnapshotCache
from serving.xds.sequencer import Stage
from serving.xds.snapshot import Snapshot
from serving.xds.stream import AdsStream, ProtocolError, nonce_counter
from tests.serving.xds.factories import make_snapshot, resource

CDS, EDS, LDS, RDS = type_urls.ADS_ORDER
NODE = Node(id="envoy-1", cluster="ingress")


class Envoy:
    """Plays Envoy's side of one stream: sends requests, keeps the last response per type."""

    def __init__(self, cache: SnapshotCache) -> None:
        self.wakes = 0
        self.stream = AdsStream(cache, wake=self._wake, nonces=nonce_counter("t"))
        self.last: dict[str, DiscoveryResponse] = {}
        self._sent_node = False

    def _wake(self) -> None:
        self.wakes += 1

    def request(self, type_url: str, *, names: tuple[str, ...] = (), version: str = "", nonce: str = "",
                error: str | None = None) -> list[DiscoveryResponse]:
        node = None if self._sent_node else NODE
        self._sent_node = True
        self.stream.receive(DiscoveryRequest(
            node=node, type_url=type_url, resource_names=list(names), version_info=version, response_nonce=nonce,
            error_detail=Status(code=3, message=error) if error is not None else None,
        ))
        return self.responses()

    def responses(self) -> list[DiscoveryResponse]:
        responses = [DiscoveryResponse.parse(response) for response in self.stream.pending()]
        for response in responses:
            self.last[response.type_url] = response
        return responses

    def ack(self, type_url: str, *, names: tuple[str, ...] = ()) -> list[DiscoveryResponse]:
        last = self.last[type_url]
        return self.request(type_url, names=names, version=last.version_info, nonce=last.nonce)

    def nack(self, type_url: str, error: str, *, names: tuple[str, ...] = (), previous: str = "") -> list[DiscoveryResponse]:
        return self.request(type_url, names=names, version=previous, nonce=self.last[type_url].nonce, error=error)


def names_in(response: DiscoveryResponse) -> list[bytes]:
    return [resource.value.split(b":")[0] for resource in response.resources]


@pytest.fixture
def cache() -> SnapshotCache:
    cache = SnapshotCache()
    cache.set_snapshot("ingress", make_snapshot(1, clusters=("a", "b")))
    return cache


def test_the_first_request_must_name_the_node(cache: SnapshotCache) -> None:
    stream = AdsStream(cache, wake=lambda: None, nonces=nonce_counter("t"))
    with pytest.raises(ProtocolError, match="node"):
        stream.receive(DiscoveryRequest(type_url=CDS))


def test_a_fresh_envoy_gets_clusters_then_endpoints_then_listeners_and_routes(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)

    [clusters] = envoy.request(CDS)
    assert envoy.request(LDS) == [], "listeners wait until clusters and endpoints are ACKed"
    [endpoints] = envoy.request(EDS, names=("a", "b"))
    assert names_in(clusters) == [b"a", b"b"] and names_in(endpoints) == [b"a", b"b"]
    assert envoy.ack(CDS) == []

    [listeners] = envoy.ack(EDS, names=("a", "b"))
    assert names_in(listeners) == [b"l"]
    [routes] = envoy.request(RDS, names=("r",))
    assert envoy.ack(LDS) == [] and envoy.ack(RDS, names=("r",)) == []

    [status] = cache.statuses()
    assert status.stage is Stage.SETTLED and status.served_version == 1
    assert len({clusters.nonce, endpoints.nonce, listeners.nonce, routes.nonce}) == 4


def test_endpoints_and_routes_are_sent_only_as_subscribed(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)
    envoy.request(CDS)

    [endpoints] = envoy.request(EDS, names=("b", "unknown"))
    assert names_in(endpoints) == [b"b"]
    [again] = envoy.ack(EDS, names=("a", "b"))
    assert again.version_info == endpoints.version_info and names_in(again) == [b"a"], "b is there already"
    [dropped_a] = envoy.ack(EDS, names=("b",))
    assert names_in(dropped_a) == []
    [a_again] = envoy.ack(EDS, names=("a", "b"))
    assert names_in(a_again) == [b"a"], "unsubscribed, then asked for again: sent again"


def test_only_changed_endpoints_and_routes_are_sent_but_clusters_whole(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)
    envoy.request(CDS)
    envoy.request(EDS, names=("a", "b"))
    envoy.ack(CDS)
    envoy.ack(EDS, names=("a", "b"))

    cache.set_snapshot("ingress", make_snapshot(2, clusters=("a", "b"), endpoints={"b": "new pod"}))
    [endpoints] = envoy.responses()
    assert names_in(endpoints) == [b"b"]
    envoy.ack(EDS, names=("a", "b"))

    cache.set_snapshot("ingress", make_snapshot(3, clusters=("a", "b", "c"), endpoints={"b": "new pod"}))
    [clusters, endpoints] = envoy.responses()
    assert names_in(clusters) == [b"a", b"b", b"c"]
    assert names_in(endpoints) == [], "c is not subscribed yet; the new version still goes out to be ACKed"


def test_a_changed_cluster_gets_its_unchanged_endpoints_again(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)
    envoy.request(CDS)
    envoy.request(EDS, names=("a", "b"))
    envoy.ack(CDS)
    envoy.ack(EDS, names=("a", "b"))
    changed = make_snapshot(2, clusters=("a", "b"))
    rebuilt = dict(changed[CDS].items)
    rebuilt["b"] = resource(CDS, "b", "connect timeout 2s", ("b",))
    cache.set_snapshot("ingress", Snapshot.create(
        2, clusters=rebuilt.values(), endpoints=changed[EDS].items.values(),
        listeners=changed[LDS].items.values(), routes=changed[RDS].items.values(),
    ))

    before = envoy.last[EDS]
    [clusters, endpoints] = envoy.responses()
    assert names_in(clusters) == [b"a", b"b"]
    assert names_in(endpoints) == [b"b"], "the endpoints of the cluster Envoy builds anew"
    assert endpoints.version_info == before.version_info


def test_after_a_nack_the_refused_resources_are_sent_again(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)
    envoy.request(CDS)
    envoy.request(EDS, names=("a", "b"))
    envoy.ack(CDS)
    envoy.ack(EDS, names=("a", "b"))
    cache.set_snapshot("ingress", make_snapshot(2, clusters=("a", "b"), endpoints={"a": "bad", "b": "bad"}))
    [refused] = envoy.responses()
    assert names_in(refused) == [b"a", b"b"]
    envoy.nack(EDS, "bad endpoints", names=("a", "b"))

    cache.set_snapshot("ingress", make_snapshot(3, clusters=("a", "b"), endpoints={"a": "good", "b": "bad"}))
    [fixed] = envoy.responses()
    assert names_in(fixed) == [b"a", b"b"], "Envoy may have applied neither"


def test_one_response_per_request(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)
    envoy.request(CDS)

    cache.set_snapshot("ingress", make_snapshot(2, clusters=("a", "b", "c")))

    assert envoy.responses() == [], "the first response is not ACKed yet"
    [newer] = envoy.ack(CDS)
    assert names_in(newer) == [b"a", b"b", b"c"]


def test_a_stale_nonce_is_ignored(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)
    [first] = envoy.request(CDS)
    cache.set_snapshot("ingress", make_snapshot(2, clusters=("a", "b", "c")))
    [second] = envoy.ack(CDS)

    assert envoy.request(CDS, version=first.version_info, nonce=first.nonce, error="late") == []
    assert cache.statuses()[0].last_rejection is None


def test_a_nack_is_reported_and_the_refused_version_never_resent(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)
    [good] = envoy.request(CDS)
    envoy.ack(CDS)
    cache.set_snapshot("ingress", make_snapshot(2, clusters=("a", "b", "bad")))
    [refused] = envoy.responses()

    assert envoy.nack(CDS, "cluster bad: invalid", previous=good.version_info) == []

    [status] = cache.statuses()
    assert status.rejection is not None and status.rejection.message == "cluster bad: invalid"
    assert status.rejection.version == refused.version_info
    assert envoy.request(CDS, version=good.version_info, nonce=refused.nonce) == [], "not even when asked again"

    cache.set_snapshot("ingress", make_snapshot(3, clusters=("a", "b", "fixed")))
    [fixed] = envoy.responses()
    assert names_in(fixed) == [b"a", b"b", b"fixed"]


def test_a_reconnecting_envoy_is_answered_whatever_version_it_quotes(cache: SnapshotCache) -> None:
    first = Envoy(cache)
    [clusters] = first.request(CDS)
    first.stream.close()

    restarted = SnapshotCache()
    restarted.set_snapshot("ingress", make_snapshot(1, clusters=("a", "b")))
    again = Envoy(restarted)
    [resent] = again.request(CDS, version=clusters.version_info, nonce=clusters.nonce)
    assert resent.version_info == clusters.version_info, "same content, same version"
    assert again.request(LDS, version="from-a-previous-server") == []


def test_an_envoy_quoting_no_version_is_a_new_process(cache: SnapshotCache) -> None:
    first = Envoy(cache)
    first.request(CDS)
    first.request(EDS, names=("a", "b"))
    first.ack(CDS)
    first.ack(EDS, names=("a", "b"))
    assert first.request(LDS) != []
    first.stream.close()

    reconnected = Envoy(cache)
    assert len(reconnected.request(LDS, version=first.last[LDS].version_info)) == 1, "a reconnect keeps its progress"
    reconnected.stream.close()

    restarted = Envoy(cache)
    assert restarted.request(LDS) == [], "a new process gets clusters and endpoints first again"
    assert len(restarted.request(CDS)) == 1


def test_requests_for_unknown_types_are_ignored(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)
    assert envoy.request("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret") == []
    assert len(envoy.request(CDS)) == 1


def test_closing_the_stream_disconnects_the_node(cache: SnapshotCache) -> None:
    envoy = Envoy(cache)
    envoy.request(CDS)
    envoy.stream.close()
    envoy.stream.close()
    assert cache.statuses()[0].connected is False
    assert envoy.stream.pending() == []
