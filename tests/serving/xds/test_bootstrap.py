import pytest

from serving.xds.bootstrap import XDS_CLUSTER, BootstrapSettings, make_bootstrap


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
