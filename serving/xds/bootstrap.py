"""Envoy's bootstrap: who it is, where its xDS server is, and an admin port for 127.0.0.1 only.

Everything else (listeners, routes, clusters, endpoints) comes over one ADS stream. The xDS
server is reached through a static cluster (an IP) or a DNS one (a Service name) over HTTP/2
with keepalive pings the server is configured to accept. Pure builder of a JSON-able dict;
no side effects.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any, Final

XDS_CLUSTER: Final = "xds_cluster"


@dataclasses.dataclass(frozen=True, slots=True)
class BootstrapSettings:
    node_id: str
    xds_host: str
    xds_port: int
    node_cluster: str = "knserve-ingress"
    admin_port: int = 9901
    """0 lets Envoy pick; it writes the address to ``--admin-address-path``."""
    keepalive_interval_seconds: int = 30
    keepalive_timeout_seconds: int = 5
    max_connections: int = 50_000
    reconnect_base_seconds: float = 0.25
    reconnect_max_seconds: float = 5.0
    """Envoy retries a lost ADS stream with back-off up to this; short so a restarted server is seen soon."""


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def make_bootstrap(settings: BootstrapSettings) -> dict[str, Any]:
    """The bootstrap as a dict; write it as JSON and pass it with ``envoy -c``."""
    ads_source = {"ads": {}, "resource_api_version": "V3"}
    return {
        "node": {"id": settings.node_id, "cluster": settings.node_cluster},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": settings.admin_port}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                # The node (with its long list of extensions) once per stream, not in every request.
                "set_node_on_first_message_only": True,
                "grpc_services": [
                    {
                        "envoy_grpc": {
                            "cluster_name": XDS_CLUSTER,
                            "retry_policy": {
                                "retry_back_off": {
                                    "base_interval": _duration(settings.reconnect_base_seconds),
                                    "max_interval": _duration(settings.reconnect_max_seconds),
                                }
                            },
                        }
                    }
                ],
            },
            "cds_config": ads_source,
            "lds_config": ads_source,
        },
        "static_resources": {
            "clusters": [
                {
                    "name": XDS_CLUSTER,
                    "type": "STATIC" if _is_ip(settings.xds_host) else "STRICT_DNS",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": XDS_CLUSTER,
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": settings.xds_host,
                                                    "port_value": settings.xds_port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {
                                "http2_protocol_options": {
                                    "connection_keepalive": {
                                        "interval": _duration(settings.keepalive_interval_seconds),
                                        "timeout": _duration(settings.keepalive_timeout_seconds),
                                    }
                                }
                            },
                        }
                    },
                }
            ]
        },
        # An edge proxy should bound its connections (and Envoy warns when it does not).
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": settings.max_connections,
                    },
                }
            ]
        },
    }
