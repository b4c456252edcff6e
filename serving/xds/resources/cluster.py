"""Envoy clusters and their endpoints (CDS and EDS resources), one pair per revision.

A revision's cluster is EDS-fed over ADS, so moving it between its pods and the activator,
or adding a pod, is an endpoint-only update.

An endpoint that cannot be connected to (its node is gone, its pod's address unreachable) is
set aside after ``EJECT_AFTER_CONNECT_FAILURES`` failed connections in a row, for
``EJECTION_TIME`` and longer each time again, until the endpoints catch up: without it every
request Envoy gives such an endpoint fails until the pod is NotReady, tens of seconds after a
node is lost. Only failures to connect count (local-origin errors): a pod answering 503 because
it is full stays in, as the queue-proxy's fast 503s are load shedding, not a dead pod.

Pure builders; no side effects.
"""

from __future__ import annotations

import datetime
from typing import Final

from envoy_data_plane.envoy.config.cluster import v3 as cluster_v3
from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.config.endpoint import v3 as endpoint_v3
from envoy_data_plane.envoy.extensions.upstreams.http import v3 as upstream_http_v3
from envoy_data_plane.google import protobuf

from knserve.networking import SERVER_IDLE_TIMEOUT_SECONDS
from serving.xds import wire
from serving.xds.model import Endpoint

CONNECT_TIMEOUT: Final = datetime.timedelta(seconds=5)
# Envoy's default circuit breakers (1024 connections/requests per cluster) would shed load
# at a busy revision; queue-proxy and the activator do the limiting, so Envoy gets out of the way.
CIRCUIT_BREAKER_LIMIT: Final = 1_000_000
CONNECTION_BUFFER_BYTES: Final = 32 * 1024
"""Per upstream connection, as Envoy's edge proxy guidance has it (the listeners use the same)."""
UPSTREAM_IDLE_TIMEOUT: Final = datetime.timedelta(seconds=SERVER_IDLE_TIMEOUT_SECONDS - 10)
"""Envoy closes an idle pooled connection before the activator would (a request sent on a
connection the server is closing fails with a 503)."""
HTTP_PROTOCOL_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
EJECT_AFTER_CONNECT_FAILURES: Final = 3
EJECTION_TIME: Final = datetime.timedelta(seconds=5)


def make_outlier_detection() -> cluster_v3.OutlierDetection:
    """Eject an endpoint after consecutive failed connections, never for its HTTP answers."""
    return cluster_v3.OutlierDetection(
        split_external_local_origin_errors=True,
        consecutive_local_origin_failure=EJECT_AFTER_CONNECT_FAILURES,
        enforcing_consecutive_local_origin_failure=100,
        enforcing_consecutive_5xx=0,
        enforcing_consecutive_gateway_failure=0,
        enforcing_success_rate=0,
        enforcing_local_origin_success_rate=0,
        interval=datetime.timedelta(seconds=1),
        base_ejection_time=EJECTION_TIME,
        max_ejection_percent=100,
    )


def ads_config_source() -> core_v3.ConfigSource:
    """Fetch over the one ADS stream Envoy already has (bootstrap ``ads_config``)."""
    return core_v3.ConfigSource(ads=core_v3.AggregatedConfigSource(), resource_api_version=core_v3.ApiVersion.V3)


def make_upstream_http_options() -> protobuf.Any:
    """HTTP/1.1 to queue-proxies and the activator, idle connections closed after ``UPSTREAM_IDLE_TIMEOUT``."""
    options = upstream_http_v3.HttpProtocolOptions(
        common_http_protocol_options=core_v3.HttpProtocolOptions(idle_timeout=UPSTREAM_IDLE_TIMEOUT),
        explicit_http_config=upstream_http_v3.HttpProtocolOptionsExplicitHttpConfig(
            http_protocol_options=core_v3.Http1ProtocolOptions()),
    )
    return protobuf.Any(type_url=f"type.googleapis.com/{HTTP_PROTOCOL_OPTIONS}", value=wire.encode(options))


def make_cluster(name: str, *, connect_timeout: datetime.timedelta = CONNECT_TIMEOUT) -> cluster_v3.Cluster:
    """An EDS cluster named ``name`` whose endpoints come from the EDS resource of the same name."""
    limit = CIRCUIT_BREAKER_LIMIT
    return cluster_v3.Cluster(
        name=name,
        type=cluster_v3.ClusterDiscoveryType.EDS,
        eds_cluster_config=cluster_v3.ClusterEdsClusterConfig(eds_config=ads_config_source()),
        connect_timeout=connect_timeout,
        per_connection_buffer_limit_bytes=CONNECTION_BUFFER_BYTES,
        typed_extension_protocol_options={HTTP_PROTOCOL_OPTIONS: make_upstream_http_options()},
        lb_policy=cluster_v3.ClusterLbPolicy.LEAST_REQUEST,
        outlier_detection=make_outlier_detection(),
        circuit_breakers=cluster_v3.CircuitBreakers(
            thresholds=[
                cluster_v3.CircuitBreakersThresholds(
                    priority=core_v3.RoutingPriority.DEFAULT,
                    max_connections=limit,
                    max_pending_requests=limit,
                    max_requests=limit,
                    max_retries=limit,
                )
            ]
        ),
    )


def make_socket_address(host: str, port: int) -> core_v3.Address:
    return core_v3.Address(socket_address=core_v3.SocketAddress(address=host, port_value=port))


def make_load_assignment(name: str, endpoints: tuple[Endpoint, ...]) -> endpoint_v3.ClusterLoadAssignment:
    """The endpoints of cluster ``name``, sorted; none at all is valid and makes Envoy answer 503."""
    lb_endpoints = [
        endpoint_v3.LbEndpoint(endpoint=endpoint_v3.Endpoint(address=make_socket_address(endpoint.host, endpoint.port)))
        for endpoint in sorted(set(endpoints), key=lambda endpoint: (endpoint.host, endpoint.port))
    ]
    localities = [endpoint_v3.LocalityLbEndpoints(lb_endpoints=lb_endpoints)] if lb_endpoints else []
    return endpoint_v3.ClusterLoadAssignment(cluster_name=name, endpoints=localities)
