import pytest

from serving.xds.bootstrap import (
    FIXED_HEAP,
    GLOBAL_CONNECTIONS,
    XDS_CLUSTER,
    BootstrapSettings,
    connections_for_open_files,
    make_bootstrap,
)


@pytest.mark.parametrize(
    ("host", "cluster_type"),
    [
        pytest.param("127.0.0.1", "STATIC", id="an IP: static"),
        pytest.param("::1", "STATIC", id="an IPv6 address: static"),
        pytest.param("controller.knative-serving.svc", "STRICT_DNS", id="a Service name: DNS"),
    ],
)
def test_xds_server_address(host: str, cluster_type: str) -> None:
    bootstrap = make_bootstrap(BootstrapSettings(node_id="n", xds_host=host, xds_port=18000))
    [xds] = bootstrap["static_resources"]["clusters"]
    assert xds["name"] == XDS_CLUSTER
    assert xds["type"] == cluster_type
    [locality] = xds["load_assignment"]["endpoints"]
    assert locality["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == {"address": host, "port_value": 18000}


def test_bootstrap_names_the_node_and_gets_everything_over_ads() -> None:
    bootstrap = make_bootstrap(BootstrapSettings(node_id="envoy-7", node_cluster="ingress", xds_host="127.0.0.1",
                                                 xds_port=1, admin_port=19000))
    assert bootstrap["node"] == {"id": "envoy-7", "cluster": "ingress"}
    assert bootstrap["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 19000}
    dynamic = bootstrap["dynamic_resources"]
    assert dynamic["cds_config"] == dynamic["lds_config"] == {"ads": {}, "resource_api_version": "V3"}
    ads = dynamic["ads_config"]
    assert (ads["api_type"], ads["transport_api_version"], ads["set_node_on_first_message_only"]) == ("GRPC", "V3", True)
    assert ads["grpc_services"][0]["envoy_grpc"]["cluster_name"] == XDS_CLUSTER


def test_envoy_keeps_the_stream_alive_with_pings_the_server_accepts() -> None:
    bootstrap = make_bootstrap(BootstrapSettings(node_id="n", xds_host="127.0.0.1", xds_port=1))
    options = bootstrap["static_resources"]["clusters"][0]["typed_extension_protocol_options"]
    http2 = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"]["http2_protocol_options"]
    assert http2["connection_keepalive"] == {"interval": "30s", "timeout": "5s"}


@pytest.mark.parametrize(
    ("open_files", "connections"),
    [
        pytest.param(20_000, 9_488, id="a 20,000-file limit: under half of it, after Envoy's own"),
        pytest.param(1_048_576, 50_000, id="a large limit: the default"),
        pytest.param(-1, 50_000, id="no limit (RLIM_INFINITY): the default"),
        pytest.param(1_024, 64, id="a tiny limit still leaves a few connections"),
    ],
)
def test_connections_fit_in_the_open_file_limit(open_files: int, connections: int) -> None:
    assert connections_for_open_files(open_files) == connections


def test_overload_manager_bounds_connections_and_heap_and_sheds_idle_connections_first() -> None:
    settings = BootstrapSettings(node_id="n", xds_host="127.0.0.1", xds_port=1, max_connections=1_000,
                                 max_heap_bytes=1 << 29, min_idle_timeout_seconds=3)
    overload = make_bootstrap(settings)["overload_manager"]

    monitors = {monitor["name"]: monitor["typed_config"] for monitor in overload["resource_monitors"]}
    assert monitors[GLOBAL_CONNECTIONS]["max_active_downstream_connections"] == 1_000
    assert monitors[FIXED_HEAP]["max_heap_size_bytes"] == 1 << 29
    actions = {action["name"]: action for action in overload["actions"]}
    reduce = actions["envoy.overload_actions.reduce_timeouts"]
    assert {trigger["name"] for trigger in reduce["triggers"]} == {GLOBAL_CONNECTIONS, FIXED_HEAP}
    assert reduce["typed_config"]["timer_scale_factors"] == [
        {"timer": "HTTP_DOWNSTREAM_CONNECTION_IDLE", "min_timeout": "3s"}]
    heap_thresholds = {name: action["triggers"][0]["threshold"]["value"] for name, action in actions.items()
                       if name != "envoy.overload_actions.reduce_timeouts"}
    # Give memory back first, then stop keep-alive, then refuse requests.
    assert heap_thresholds == {
        "envoy.overload_actions.shrink_heap": 0.9,
        "envoy.overload_actions.disable_http_keepalive": 0.92,
        "envoy.overload_actions.stop_accepting_requests": 0.98,
    }


def test_freed_memory_is_given_back_to_the_system() -> None:
    bootstrap = make_bootstrap(BootstrapSettings(node_id="n", xds_host="127.0.0.1", xds_port=1))
    assert bootstrap["memory_allocator_manager"] == {"bytes_to_release": str(32 << 20), "memory_release_interval": "1s"}
