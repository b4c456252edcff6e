import datetime

import pytest
from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.config.route import v3 as route_v3

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


def test_make_route_config_validates_clusters() -> None:
    host = route.make_virtual_host("a", ("a",), (Split("r", "n", 100),))
    assert route.make_route_config("external", [host]) == route_v3.RouteConfiguration(
        name="external", virtual_hosts=[host], validate_clusters=True
    )
