"""Envoy listeners (LDS resources): one HTTP connection manager whose routes come over RDS.

Routes are fetched by name (RDS), so a weight change is a route-only update and never
touches the listener (a listener change makes Envoy drain connections). Pure builders; no
side effects.
"""

from __future__ import annotations

from envoy_data_plane.envoy.config.listener import v3 as listener_v3
from envoy_data_plane.envoy.extensions.filters.http.router import v3 as router_v3
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager import v3 as hcm_v3
from envoy_data_plane.google import protobuf

from serving.xds import wire
from serving.xds.resources.cluster import ads_config_source, make_socket_address

HTTP_CONNECTION_MANAGER: str = "envoy.filters.network.http_connection_manager"
ROUTER: str = "envoy.filters.http.router"


def pack(type_name: str, body: bytes) -> protobuf.Any:
    """An ``Any`` holding the already encoded message ``body`` of the fully qualified ``type_name``."""
    return protobuf.Any(type_url=f"type.googleapis.com/{type_name}", value=body)


def make_http_connection_manager(*, stat_prefix: str, route_config_name: str) -> hcm_v3.HttpConnectionManager:
    """HTTP/1.1 and HTTP/2 (prior knowledge) in, routes from RDS, websockets allowed.

    ``use_remote_address`` makes Envoy the edge: it appends the client address to
    ``X-Forwarded-For`` and sets ``X-Forwarded-Proto``, which queue-proxy turns into ``Forwarded``.
    """
    router = pack("envoy.extensions.filters.http.router.v3.Router", wire.encode(router_v3.Router()))
    return hcm_v3.HttpConnectionManager(
        codec_type=hcm_v3.HttpConnectionManagerCodecType.AUTO,
        stat_prefix=stat_prefix,
        rds=hcm_v3.Rds(config_source=ads_config_source(), route_config_name=route_config_name),
        http_filters=[hcm_v3.HttpFilter(name=ROUTER, typed_config=router)],
        upgrade_configs=[hcm_v3.HttpConnectionManagerUpgradeConfig(upgrade_type="websocket")],
        use_remote_address=True,
    )


def make_listener(name: str, *, host: str, port: int, route_config_name: str) -> listener_v3.Listener:
    """A listener on ``host:port`` serving the route configuration ``route_config_name``."""
    manager = make_http_connection_manager(stat_prefix=name, route_config_name=route_config_name)
    return listener_v3.Listener(
        name=name,
        address=make_socket_address(host, port),
        filter_chains=[
            listener_v3.FilterChain(
                filters=[
                    listener_v3.Filter(
                        name=HTTP_CONNECTION_MANAGER,
                        typed_config=pack(
                            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            wire.encode(manager),
                        ),
                    )
                ]
            )
        ],
    )
