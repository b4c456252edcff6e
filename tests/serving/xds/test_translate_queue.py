"""The call queue in the ingress model: its cluster, and its routes in front of every virtual host."""

import dataclasses

from envoy_data_plane.envoy.config.route import v3 as route_v3

from serving.xds import type_urls, wire
from serving.xds.model import Endpoint, IngressModel
from serving.xds.resources import cluster, names, route
from serving.xds.translate import IngressSettings, Translator
from tests.serving.xds.test_translate import BACKENDS, HELLO, LOCAL

CDS, EDS, LDS, RDS = type_urls.ADS_ORDER
QUEUE = (Endpoint("10.244.0.9", 8080),)


def with_queue_routes(virtual_host: route_v3.VirtualHost) -> route_v3.VirtualHost:
    virtual_host.routes = [*route.make_queue_routes(names.QUEUE_CLUSTER), *virtual_host.routes]
    return virtual_host


def test_every_virtual_host_sends_asynchronous_calls_and_the_calls_api_to_the_queue() -> None:
    snapshot = Translator().translate(IngressModel(rules=(HELLO, LOCAL), backends=BACKENDS, queue=QUEUE),
                                      version=1).snapshot

    for name, rule in (("external", HELLO), ("internal", LOCAL)):
        want = route.make_route_config(name, [with_queue_routes(route.make_virtual_host(rule.hosts[0], rule.hosts,
                                                                                         rule.splits))])
        assert snapshot[RDS].items[name].body == wire.encode(want)
        assert names.QUEUE_CLUSTER in snapshot[RDS].items[name].references
    assert snapshot[CDS].items[names.QUEUE_CLUSTER].body == wire.encode(cluster.make_cluster(names.QUEUE_CLUSTER))
    assert snapshot[EDS].items[names.QUEUE_CLUSTER].body == wire.encode(
        cluster.make_load_assignment(names.QUEUE_CLUSTER, QUEUE))


def test_the_queue_routes_match_the_prefer_header_and_the_well_known_path() -> None:
    by_path, by_header = route.make_queue_routes("q")
    assert by_path.match.prefix == "/.well-known/knserve/" and by_path.route.cluster == "q"
    [prefer] = by_header.match.headers
    assert (by_header.match.prefix, prefer.name, prefer.string_match.contains, prefer.string_match.ignore_case) == (
        "/", "prefer", "respond-async", True)


def test_the_queue_coming_and_going_rebuilds_the_virtual_hosts() -> None:
    translator = Translator()
    plain = IngressModel(rules=(HELLO,), backends=BACKENDS)
    first = translator.translate(plain, version=1).snapshot
    queued = translator.translate(IngressModel(rules=(HELLO,), backends=BACKENDS, queue=()), version=2).snapshot
    again = translator.translate(plain, version=3).snapshot
    assert first[RDS].items["external"].body == again[RDS].items["external"].body != queued[RDS].items["external"].body
    assert names.QUEUE_CLUSTER not in again[CDS].items and names.QUEUE_CLUSTER in queued[CDS].items


def test_an_async_always_rule_queues_every_request_but_those_carrying_the_ingress_token() -> None:
    always = dataclasses.replace(HELLO, async_always=True)
    translator = Translator(IngressSettings(ingress_token="s3cret"))
    snapshot = translator.translate(IngressModel(rules=(always, LOCAL), backends=BACKENDS, queue=QUEUE),
                                    version=1).snapshot

    external = route.make_virtual_host(HELLO.hosts[0], HELLO.hosts, HELLO.splits)
    external.routes = [*route.make_queue_routes(names.QUEUE_CLUSTER, always=True, dispatch_token="s3cret"),
                       *external.routes]
    assert snapshot[RDS].items["external"].body == wire.encode(
        route.make_route_config("external", [external], ingress_token="s3cret"))
    assert snapshot[RDS].items["internal"].body == wire.encode(route.make_route_config("internal", [
        with_queue_routes(route.make_virtual_host(LOCAL.hosts[0], LOCAL.hosts, LOCAL.splits))],
        ingress_token="s3cret")), "other rules keep Prefer"


def test_without_an_ingress_token_an_async_always_rule_keeps_the_prefer_routes() -> None:
    """Nothing could tell the queue's dispatches apart: queuing everything would loop them back."""
    always = dataclasses.replace(HELLO, async_always=True)
    marked = Translator().translate(IngressModel(rules=(always,), backends=BACKENDS, queue=QUEUE), version=1).snapshot
    plain = Translator().translate(IngressModel(rules=(HELLO,), backends=BACKENDS, queue=QUEUE), version=1).snapshot
    assert marked[RDS].items["external"].body == plain[RDS].items["external"].body


def test_async_always_without_a_queue_changes_nothing() -> None:
    always = dataclasses.replace(HELLO, async_always=True)
    plain = Translator().translate(IngressModel(rules=(HELLO,), backends=BACKENDS), version=1).snapshot
    marked = Translator().translate(IngressModel(rules=(always,), backends=BACKENDS), version=1).snapshot
    assert plain[RDS].items["external"].body == marked[RDS].items["external"].body
