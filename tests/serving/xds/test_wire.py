import datetime

import betterproto2
import pytest
from envoy_data_plane.envoy.config.cluster import v3 as cluster_v3
from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.config.route import v3 as route_v3
from envoy_data_plane.envoy.service.discovery.v3 import DiscoveryResponse
from envoy_data_plane.envoy.type import v3 as type_v3
from envoy_data_plane.google import protobuf

from serving.xds import wire
from serving.xds.model import Endpoint, Split
from serving.xds.resources import cluster, listener, route


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(cluster.make_cluster("default/hello-00001"), id="cluster: enums, wrappers, duration"),
        pytest.param(
            cluster.make_load_assignment("ns/r", (Endpoint("10.0.0.2"), Endpoint("10.0.0.1", 9000))),
            id="load assignment: nested repeated",
        ),
        pytest.param(listener.make_listener("external", host="0.0.0.0", port=8080, route_config_name="external"),
                     id="listener: Any inside Any"),
        pytest.param(route.make_route_config("external", [route.make_virtual_host("a.example.com", ("a.example.com", "b.example.com"), (
            Split("r1", "ns", 90), Split("r2", "ns", 10)))]), id="route configuration"),
        pytest.param(route_v3.RetryPolicy(retry_on="5xx", retriable_status_codes=[503, 504, 1]),
                     id="packed repeated uint32"),
        pytest.param(route_v3.RouteMatch(prefix=""), id="oneof member at its zero value is kept"),
        pytest.param(type_v3.Percent(value=12.5), id="double"),
        pytest.param(route_v3.RouteAction(timeout=datetime.timedelta(seconds=-1, microseconds=5)),
                     id="negative duration"),
        pytest.param(cluster_v3.Cluster(name="c", typed_extension_protocol_options={
            "b": protobuf.Any(type_url="t/x", value=b"\x01"), "a": protobuf.Any(type_url="t/y")}), id="map of messages"),
        pytest.param(core_v3.Metadata(), id="empty message"),
    ],
)
def test_encode_writes_what_betterproto_writes(message: betterproto2.Message) -> None:
    assert wire.encode(message) == bytes(message)


def test_encode_keeps_unknown_fields() -> None:
    parsed = core_v3.SocketAddress.parse(bytes(core_v3.SocketAddress(address="a")) + wire.length_delimited(99, b"x"))
    assert wire.encode(parsed) == bytes(parsed)
    assert wire.encode(parsed).endswith(wire.length_delimited(99, b"x"))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        pytest.param(0, b"\x00", id="zero"),
        pytest.param(300, b"\xac\x02", id="two bytes"),
        pytest.param(-1, b"\xff" * 9 + b"\x01", id="negative as 64-bit"),
    ],
)
def test_varint(value: int, encoded: bytes) -> None:
    assert wire.varint(value) == encoded


def test_discovery_response_built_from_entries_parses_back() -> None:
    bodies = [bytes(cluster.make_cluster("ns/a")), bytes(cluster.make_cluster("ns/b"))]
    type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    encoded = wire.discovery_response(
        version_info="v1", type_url=type_url, nonce="n-1", entries=[wire.any_entry(type_url, body) for body in bodies]
    )

    assert DiscoveryResponse.parse(encoded) == DiscoveryResponse(
        version_info="v1",
        type_url=type_url,
        nonce="n-1",
        resources=[protobuf.Any(type_url=type_url, value=body) for body in bodies],
    )
