"""Envoy's bootstrap: who it is, where its xDS server is, and an admin port for 127.0.0.1 only.

Everything else (listeners, routes, clusters, endpoints) comes over one ADS stream. The xDS
server is reached through a static cluster (an IP) or a DNS one (a Service name) over HTTP/2
with keepalive pings the server is configured to accept; with ``tls`` set, over mutual TLS:
Envoy presents its client certificate and checks the server's against the CA and the name
the xDS server's certificate carries (``serving.xds.tls``).

The overload manager keeps the edge answering under a flood of connections or memory use:

- at most ``max_connections`` downstream connections; Envoy closes the ones beyond at once
  (instead of leaving them unaccepted once it runs out of file descriptors, which is what
  locks new clients out). Each connection can need a second descriptor upstream, so the
  limit must stay under half the open-file limit: :func:`connections_for_open_files`;
- as connections near that limit or the heap nears ``max_heap_bytes``, idle connections are
  closed sooner (down to ``min_idle_timeout_seconds``); then keep-alive is turned off, then
  new connections and requests are refused;
- tcmalloc hands freed memory back to the system (``release_bytes_per_second``), so the
  memory a flood of connections took comes back once they are gone (it first waits out a
  recent peak: a few minutes; without this Envoy keeps it for good).

Pure builder of a JSON-able dict; no side effects.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any, Final

XDS_CLUSTER: Final = "xds_cluster"
DEFAULT_MAX_CONNECTIONS: Final = 50_000


@dataclasses.dataclass(frozen=True, slots=True)
class XdsClientTls:
    """Files Envoy reads its xDS client certificate, key and the CA from (a mounted Secret)."""

    cert_file: str
    key_file: str
    ca_file: str
    server_name: str
    """The DNS name the server's certificate must carry; also sent as SNI."""


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
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Downstream connections; needs an open-file limit above ``2 * max_connections + RESERVED_FILES``."""
    max_heap_bytes: int = 768 * 1024 * 1024
    """The heap the overload manager measures against (the ingress pod's memory limit is 1 GiB)."""
    min_idle_timeout_seconds: float = 2.0
    release_bytes_per_second: int = 32 * 1024 * 1024
    reconnect_base_seconds: float = 0.25
    reconnect_max_seconds: float = 5.0
    """Envoy retries a lost ADS stream with back-off up to this; short so a restarted server is seen soon."""
    tls: XdsClientTls | None = None
    """Mutual TLS to the xDS server; None for plain text (a server without certificates)."""


RESERVED_FILES: Final = 1024
"""Descriptors Envoy needs besides client and upstream connections (xDS, admin, logs, threads)."""
_MIN_CONNECTIONS: Final = 64
GLOBAL_CONNECTIONS: Final = "envoy.resource_monitors.global_downstream_max_connections"
FIXED_HEAP: Final = "envoy.resource_monitors.fixed_heap"


def connections_for_open_files(open_files: int) -> int:
    """The downstream connections an Envoy with ``open_files`` descriptors can hold safely.

    At most ``DEFAULT_MAX_CONNECTIONS``; a negative limit is no limit (``RLIM_INFINITY``).
    """
    if open_files < 0:
        return DEFAULT_MAX_CONNECTIONS
    return max(_MIN_CONNECTIONS, min(DEFAULT_MAX_CONNECTIONS, (open_files - RESERVED_FILES) // 2))


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _transport_socket(tls: XdsClientTls) -> dict[str, Any]:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": tls.server_name,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "tls_certificates": [{"certificate_chain": {"filename": tls.cert_file},
                                      "private_key": {"filename": tls.key_file}}],
                "validation_context": {
                    "trusted_ca": {"filename": tls.ca_file},
                    "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": tls.server_name}}],
                },
            },
        },
    }


def make_bootstrap(settings: BootstrapSettings) -> dict[str, Any]:
    """The bootstrap as a dict; write it as JSON and pass it with ``envoy -c``."""
    bootstrap = _make_bootstrap(settings)
    if settings.tls is not None:
        bootstrap["static_resources"]["clusters"][0]["transport_socket"] = _transport_socket(settings.tls)
    return bootstrap


def _make_bootstrap(settings: BootstrapSettings) -> dict[str, Any]:
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
        "overload_manager": _overload_manager(settings),
        "memory_allocator_manager": {
            "bytes_to_release": str(settings.release_bytes_per_second),
            "memory_release_interval": "1s",
        },
    }


def _threshold(monitor: str, value: float) -> dict[str, Any]:
    return {"name": monitor, "threshold": {"value": value}}


def _overload_manager(settings: BootstrapSettings) -> dict[str, Any]:
    """Connection and heap limits, and what Envoy gives up as it nears them."""
    return {
        "refresh_interval": "0.25s",
        "resource_monitors": [
            {
                "name": GLOBAL_CONNECTIONS,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3"
                             ".DownstreamConnectionsConfig",
                    "max_active_downstream_connections": settings.max_connections,
                },
            },
            {
                "name": FIXED_HEAP,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
                    "max_heap_size_bytes": settings.max_heap_bytes,
                },
            },
        ],
        "actions": [
            {
                # Idle connections (kept alive, or never used) go first, earlier the closer the limits.
                "name": "envoy.overload_actions.reduce_timeouts",
                "triggers": [
                    {"name": GLOBAL_CONNECTIONS, "scaled": {"scaling_threshold": 0.5, "saturation_threshold": 0.9}},
                    {"name": FIXED_HEAP, "scaled": {"scaling_threshold": 0.8, "saturation_threshold": 0.95}},
                ],
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.overload.v3.ScaleTimersOverloadActionConfig",
                    "timer_scale_factors": [
                        {"timer": "HTTP_DOWNSTREAM_CONNECTION_IDLE",
                         "min_timeout": _duration(settings.min_idle_timeout_seconds)},
                    ],
                },
            },
            {"name": "envoy.overload_actions.shrink_heap", "triggers": [_threshold(FIXED_HEAP, 0.9)]},
            {"name": "envoy.overload_actions.disable_http_keepalive", "triggers": [_threshold(FIXED_HEAP, 0.92)]},
            {"name": "envoy.overload_actions.stop_accepting_requests", "triggers": [_threshold(FIXED_HEAP, 0.98)]},
        ],
        "loadshed_points": [
            {"name": "envoy.load_shed_points.tcp_listener_accept", "triggers": [_threshold(FIXED_HEAP, 0.95)]},
        ],
    }
