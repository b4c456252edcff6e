from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager import v3 as hcm_v3

from serving.xds.resources import listener


def test_make_listener_serves_routes_from_rds() -> None:
    made = listener.make_listener("external", host="0.0.0.0", port=8080, route_config_name="external")

    assert made.name == "external"
    assert made.address == core_v3.Address(socket_address=core_v3.SocketAddress(address="0.0.0.0", port_value=8080))
    [chain] = made.filter_chains
    [network_filter] = chain.filters
    assert network_filter.name == "envoy.filters.network.http_connection_manager"
    assert network_filter.typed_config is not None
    manager = hcm_v3.HttpConnectionManager.parse(network_filter.typed_config.value)
    assert manager == listener.make_http_connection_manager(stat_prefix="external", route_config_name="external")


def test_http_connection_manager_allows_websockets_and_is_the_edge() -> None:
    manager = listener.make_http_connection_manager(stat_prefix="internal", route_config_name="internal")

    assert manager.rds is not None and manager.rds.route_config_name == "internal"
    assert manager.rds.config_source is not None and manager.rds.config_source.ads is not None
    assert [config.upgrade_type for config in manager.upgrade_configs] == ["websocket"]
    assert manager.use_remote_address is True
    assert [http_filter.name for http_filter in manager.http_filters] == ["envoy.filters.http.router"]
    assert manager.codec_type == hcm_v3.HttpConnectionManagerCodecType.AUTO
