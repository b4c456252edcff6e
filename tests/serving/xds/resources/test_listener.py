import datetime

from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager import v3 as hcm_v3
from envoy_data_plane.envoy.extensions.http.early_header_mutation.header_mutation import v3 as early_v3

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


def test_listener_bounds_what_each_connection_buffers() -> None:
    made = listener.make_listener("external", host="0.0.0.0", port=8080, route_config_name="external")
    assert made.per_connection_buffer_limit_bytes == 32 * 1024


def test_half_sent_and_idle_connections_are_timed_out() -> None:
    manager = listener.make_http_connection_manager(stat_prefix="external", route_config_name="external")

    assert manager.request_headers_timeout == datetime.timedelta(seconds=10)
    assert manager.common_http_protocol_options == core_v3.HttpProtocolOptions(
        idle_timeout=datetime.timedelta(minutes=5))


def test_http_10_is_accepted_and_a_missing_host_matches_no_route() -> None:
    manager = listener.make_http_connection_manager(stat_prefix="external", route_config_name="external")

    assert manager.http_protocol_options == core_v3.Http1ProtocolOptions(
        accept_http_10=True, default_host_for_http_10="no-host.invalid")


def test_every_internal_header_is_removed_before_routing() -> None:
    manager = listener.make_http_connection_manager(stat_prefix="external", route_config_name="external")

    [extension] = manager.early_header_mutation_extensions
    assert extension.name == "envoy.http.early_header_mutation.header_mutation"
    assert extension.typed_config is not None
    mutation = early_v3.HeaderMutation.parse(extension.typed_config.value)
    removed = [(rule.remove_on_match.key_matcher.prefix, rule.remove_on_match.key_matcher.exact,
                rule.remove_on_match.key_matcher.ignore_case)
               for rule in mutation.mutations if rule.remove_on_match and rule.remove_on_match.key_matcher]
    assert removed == [
        ("K-Network-", None, True),
        ("Knative-Serving-", None, True),
        (None, "K-Original-Host", True),
        (None, "K-Proxy-Request", True),
        (None, "K-Kubelet-Probe", True),
        (None, "K-Passthrough-Lb", True),
    ]
