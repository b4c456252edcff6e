import datetime

import pytest
from envoy_data_plane.envoy.config.cluster import v3 as cluster_v3
from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.config.endpoint import v3 as endpoint_v3
from envoy_data_plane.envoy.extensions.upstreams.http import v3 as upstream_http_v3

from knserve.networking import SERVER_IDLE_TIMEOUT_SECONDS
from serving.xds.model import Endpoint
from serving.xds.resources import cluster

LIMIT = cluster.CIRCUIT_BREAKER_LIMIT


def test_make_cluster_is_an_eds_cluster_over_ads() -> None:
    assert cluster.make_cluster("default/hello-00001", connect_timeout=datetime.timedelta(seconds=2)) == cluster_v3.Cluster(
        name="default/hello-00001",
        type=cluster_v3.ClusterDiscoveryType.EDS,
        eds_cluster_config=cluster_v3.ClusterEdsClusterConfig(
            eds_config=core_v3.ConfigSource(ads=core_v3.AggregatedConfigSource(), resource_api_version=core_v3.ApiVersion.V3)
        ),
        connect_timeout=datetime.timedelta(seconds=2),
        per_connection_buffer_limit_bytes=32 * 1024,
        typed_extension_protocol_options={
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": cluster.make_upstream_http_options()},
        lb_policy=cluster_v3.ClusterLbPolicy.LEAST_REQUEST,
        outlier_detection=cluster_v3.OutlierDetection(
            split_external_local_origin_errors=True, consecutive_local_origin_failure=3,
            enforcing_consecutive_local_origin_failure=100, enforcing_consecutive_5xx=0,
            enforcing_consecutive_gateway_failure=0, enforcing_success_rate=0, enforcing_local_origin_success_rate=0,
            interval=datetime.timedelta(seconds=1), base_ejection_time=datetime.timedelta(seconds=5),
            max_ejection_percent=100,
        ),
        circuit_breakers=cluster_v3.CircuitBreakers(
            thresholds=[
                cluster_v3.CircuitBreakersThresholds(
                    priority=core_v3.RoutingPriority.DEFAULT,
                    max_connections=LIMIT,
                    max_pending_requests=LIMIT,
                    max_requests=LIMIT,
                    max_retries=LIMIT,
                )
            ]
        ),
    )


def test_envoy_lets_pooled_connections_idle_for_less_than_the_activator_does() -> None:
    options = upstream_http_v3.HttpProtocolOptions.parse(cluster.make_upstream_http_options().value)
    assert options.common_http_protocol_options is not None
    assert options.common_http_protocol_options.idle_timeout < datetime.timedelta(seconds=SERVER_IDLE_TIMEOUT_SECONDS)
    assert options.explicit_http_config == upstream_http_v3.HttpProtocolOptionsExplicitHttpConfig(
        http_protocol_options=core_v3.Http1ProtocolOptions())


def lb_endpoint(host: str, port: int) -> endpoint_v3.LbEndpoint:
    return endpoint_v3.LbEndpoint(
        endpoint=endpoint_v3.Endpoint(
            address=core_v3.Address(socket_address=core_v3.SocketAddress(address=host, port_value=port))
        )
    )


@pytest.mark.parametrize(
    ("endpoints", "want"),
    [
        pytest.param((), endpoint_v3.ClusterLoadAssignment(cluster_name="ns/r"), id="no ready endpoint: 503"),
        pytest.param(
            (Endpoint("127.0.0.3"), Endpoint("127.0.0.2", 9000), Endpoint("127.0.0.3")),
            endpoint_v3.ClusterLoadAssignment(
                cluster_name="ns/r",
                endpoints=[
                    endpoint_v3.LocalityLbEndpoints(
                        lb_endpoints=[lb_endpoint("127.0.0.2", 9000), lb_endpoint("127.0.0.3", 8012)]
                    )
                ],
            ),
            id="pods at the queue-proxy port, sorted, once each",
        ),
    ],
)
def test_make_load_assignment(endpoints: tuple[Endpoint, ...], want: endpoint_v3.ClusterLoadAssignment) -> None:
    assert cluster.make_load_assignment("ns/r", endpoints) == want
