import datetime

import pytest
from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.config.route import v3 as route_v3
from envoy_data_plane.envoy.type.matcher import v3 as matcher_v3
from envoy_data_plane.google import protobuf

from serving.xds.model import RevisionKey, Split
from serving.xds.resources import route

OVERWRITE = core_v3.HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD


def weight(namespace: str, revision: str, percent: int) -> route_v3.WeightedClusterClusterWeight:
    return route_v3.WeightedClusterClusterWeight(
        name=f"{namespace}/{revision}",
        weight=percent,
        request_headers_to_add=[
            core_v3.HeaderValueOption(
                header=core_v3.HeaderValue(key="Knative-Serving-Revision", value=revision), append_action=OVERWRITE
            ),
            core_v3.HeaderValueOption(
                header=core_v3.HeaderValue(key="Knative-Serving-Namespace", value=namespace), append_action=OVERWRITE
            ),
        ],
    )


RETRY_ONLY_UNSENT = route_v3.RetryPolicy(
    retry_on="connect-failure,reset-before-request",
    num_retries=2,
    retry_host_predicate=[route_v3.RetryPolicyRetryHostPredicate(
        name="envoy.retry_host_predicates.previous_hosts",
        typed_config=protobuf.Any(
            type_url="type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"))],
    host_selection_retry_max_attempts=3,
)
"""Requests no pod has seen, tried again up to twice, each time on another pod."""


def virtual_host(hosts: tuple[str, ...], *weights: route_v3.WeightedClusterClusterWeight) -> route_v3.VirtualHost:
    return route_v3.VirtualHost(
        name=hosts[0],
        domains=[domain for host in hosts for domain in (host, f"{host}:*")],
        routes=[
            route_v3.Route(
                match=route_v3.RouteMatch(prefix="/"),
                route=route_v3.RouteAction(
                    weighted_clusters=route_v3.WeightedCluster(clusters=list(weights)),
                    timeout=datetime.timedelta(0),
                    idle_timeout=datetime.timedelta(0),
                ),
            )
        ],
        retry_policy=RETRY_ONLY_UNSENT,
    )


HELLO = ("hello.default.example.com",)
LOCAL = ("hello.default.svc.cluster.local", "hello.default.svc", "hello.default")


@pytest.mark.parametrize(
    ("hosts", "splits", "want"),
    [
        pytest.param(
            HELLO,
            (Split("hello-00001", "default", 100),),
            virtual_host(HELLO, weight("default", "hello-00001", 100)),
            id="one revision",
        ),
        pytest.param(
            HELLO,
            (Split("hello-00001", "default", 90), Split("hello-00002", "default", 10)),
            virtual_host(HELLO, weight("default", "hello-00001", 90), weight("default", "hello-00002", 10)),
            id="90/10 split",
        ),
        pytest.param(
            ("canary-hello.default.example.com",),
            (Split("hello-00002", "default", 100),),
            virtual_host(("canary-hello.default.example.com",), weight("default", "hello-00002", 100)),
            id="tag host",
        ),
        pytest.param(
            LOCAL,
            (Split("hello-00001", "default", 100),),
            virtual_host(LOCAL, weight("default", "hello-00001", 100)),
            id="cluster-local hosts: each with and without a port",
        ),
        pytest.param(
            ("h.ns.example.com",),
            (Split("r1", "ns", 33), Split("r2", "ns", 0), Split("r1", "ns", 33), Split("r3", "ns", 34)),
            virtual_host(("h.ns.example.com",), weight("ns", "r1", 66), weight("ns", "r3", 34)),
            id="repeated revisions add up, zero percent drops out",
        ),
        pytest.param(
            ("h.ns.example.com",),
            (Split("r1", "ns", 1), Split("r2", "ns", 98)),
            virtual_host(("h.ns.example.com",), weight("ns", "r1", 1), weight("ns", "r2", 98)),
            id="rollout step: percents need not sum to 100",
        ),
    ],
)
def test_make_virtual_host(hosts: tuple[str, ...], splits: tuple[Split, ...], want: route_v3.VirtualHost) -> None:
    assert route.make_virtual_host(hosts[0], hosts, splits) == want


def test_make_route_refuses_a_rule_without_traffic() -> None:
    with pytest.raises(ValueError, match="positive percent"):
        route.make_route((Split("r1", "ns", 0),))


@pytest.mark.parametrize(
    ("splits", "want"),
    [
        pytest.param((), (), id="none"),
        pytest.param((Split("a", "n", 0),), (), id="only zero"),
        pytest.param(
            (Split("b", "n", 10), Split("a", "n", 80), Split("b", "n", 10)),
            ((RevisionKey("n", "b"), 20), (RevisionKey("n", "a"), 80)),
            id="first-mention order, summed",
        ),
        pytest.param(
            (Split("a", "n1", 50), Split("a", "n2", 50)),
            ((RevisionKey("n1", "a"), 50), (RevisionKey("n2", "a"), 50)),
            id="same name in two namespaces",
        ),
    ],
)
def test_weights(splits: tuple[Split, ...], want: tuple[tuple[RevisionKey, int], ...]) -> None:
    assert route.weights(splits) == want


@pytest.mark.parametrize(
    ("token", "want_added"),
    [
        pytest.param("", [], id="no ingress token"),
        pytest.param("s3cret", [core_v3.HeaderValueOption(
            header=core_v3.HeaderValue(key="K-Network-Ingress-Token", value="s3cret"), append_action=OVERWRITE)],
            id="the ingress token on every routed request"),
    ],
)
def test_make_route_config_validates_clusters_and_never_forwards_k_call_dispatch(
        token: str, want_added: list[core_v3.HeaderValueOption]) -> None:
    host = route.make_virtual_host("a", ("a",), (Split("r", "n", 100),))
    assert route.make_route_config("external", [host], ingress_token=token) == route_v3.RouteConfiguration(
        name="external", virtual_hosts=[host], validate_clusters=True, request_headers_to_add=want_added,
        request_headers_to_remove=["k-call-dispatch"],
    )


def queue_route(match: route_v3.RouteMatch) -> route_v3.Route:
    return route_v3.Route(match=match, route=route_v3.RouteAction(cluster="queue", timeout=datetime.timedelta(0)))


WELL_KNOWN = queue_route(route_v3.RouteMatch(prefix="/.well-known/knserve/"))


@pytest.mark.parametrize(
    ("always", "token", "want"),
    [
        pytest.param(False, "", [WELL_KNOWN, queue_route(route_v3.RouteMatch(prefix="/", headers=[
            route_v3.HeaderMatcher(name="prefer", string_match=matcher_v3.StringMatcher(
                contains="respond-async", ignore_case=True))]))], id="requested: Prefer respond-async"),
        pytest.param(False, "s3cret", [WELL_KNOWN, queue_route(route_v3.RouteMatch(prefix="/", headers=[
            route_v3.HeaderMatcher(name="prefer", string_match=matcher_v3.StringMatcher(
                contains="respond-async", ignore_case=True))]))], id="requested: the token changes nothing"),
        pytest.param(True, "s3cret", [WELL_KNOWN, queue_route(route_v3.RouteMatch(prefix="/", headers=[
            route_v3.HeaderMatcher(name="k-call-dispatch", string_match=matcher_v3.StringMatcher(exact="s3cret"),
                                   invert_match=True, treat_missing_header_as_empty=True)]))],
            id="always: every request whose K-Call-Dispatch is not exactly the token, missing or not"),
    ],
)
def test_make_queue_routes(always: bool, token: str, want: list[route_v3.Route]) -> None:
    assert route.make_queue_routes("queue", always=always, dispatch_token=token) == want


def test_an_always_queue_route_without_the_ingress_token_is_refused() -> None:
    with pytest.raises(ValueError, match="needs the ingress token"):
        route.make_queue_routes("queue", always=True)
