"""Envoy listeners (LDS resources): one HTTP connection manager whose routes come over RDS.

Routes are fetched by name (RDS), so a weight change is a route-only update and never
touches the listener (a listener change makes Envoy drain connections).

The connection manager is the edge, and it is set up to be one:

- a client has ``REQUEST_HEADERS_TIMEOUT`` from the first byte of a request to its last
  header, and a connection with no request in flight is closed after ``IDLE_TIMEOUT``
  (sooner when the bootstrap's overload manager sees the connection limit near), so
  half-sent and idle connections cannot hold the ingress;
- each connection buffers at most ``cluster.CONNECTION_BUFFER_BYTES`` before Envoy stops reading;
- HTTP/1.0 is served (``ab``, old clients); one without a Host gets ``HTTP10_DEFAULT_HOST``,
  which no virtual host claims, so a 404;
- every internal header (``knserve.networking.INTERNAL_HEADERS`` and the
  ``INTERNAL_HEADER_PREFIXES``) is removed as the request arrives, before routing, on both
  listeners: only knserve's own components set them, and none sends through the ingress.
  The route then adds its own ``Knative-Serving-Revision`` / ``-Namespace``.

Pure builders; no side effects.
"""

from __future__ import annotations

import datetime
from typing import Final

from envoy_data_plane.envoy.config.common.mutation_rules import v3 as mutation_v3
from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.config.listener import v3 as listener_v3
from envoy_data_plane.envoy.extensions.filters.http.router import v3 as router_v3
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager import v3 as hcm_v3
from envoy_data_plane.envoy.extensions.http.early_header_mutation.header_mutation import v3 as early_v3
from envoy_data_plane.envoy.type.matcher import v3 as matcher_v3
from envoy_data_plane.google import protobuf

from knserve.networking import INTERNAL_HEADER_PREFIXES, INTERNAL_HEADERS
from serving.xds import wire
from serving.xds.resources.cluster import CONNECTION_BUFFER_BYTES, ads_config_source, make_socket_address

HTTP_CONNECTION_MANAGER: str = "envoy.filters.network.http_connection_manager"
ROUTER: str = "envoy.filters.http.router"
EARLY_HEADER_MUTATION: str = "envoy.http.early_header_mutation.header_mutation"

REQUEST_HEADERS_TIMEOUT: Final = datetime.timedelta(seconds=10)
"""From a request's first byte to its last header; then Envoy answers 408 and closes."""
IDLE_TIMEOUT: Final = datetime.timedelta(minutes=5)
"""A downstream connection with no request in flight (kept alive, or never used) is closed."""
HTTP10_DEFAULT_HOST: Final = "no-host.invalid"
"""The Host of an HTTP/1.0 request that names none (``.invalid`` is reserved: no route has it)."""


def pack(type_name: str, body: bytes) -> protobuf.Any:
    """An ``Any`` holding the already encoded message ``body`` of the fully qualified ``type_name``."""
    return protobuf.Any(type_url=f"type.googleapis.com/{type_name}", value=body)


def make_internal_header_removal() -> core_v3.TypedExtensionConfig:
    """An early header mutation that drops every internal header a client sent (case-insensitive)."""
    matchers = [matcher_v3.StringMatcher(prefix=prefix, ignore_case=True) for prefix in INTERNAL_HEADER_PREFIXES]
    matchers += [matcher_v3.StringMatcher(exact=name, ignore_case=True) for name in INTERNAL_HEADERS]
    mutation = early_v3.HeaderMutation(
        mutations=[
            mutation_v3.HeaderMutation(remove_on_match=mutation_v3.HeaderMutationRemoveOnMatch(key_matcher=matcher))
            for matcher in matchers
        ]
    )
    return core_v3.TypedExtensionConfig(
        name=EARLY_HEADER_MUTATION,
        typed_config=pack("envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
                          wire.encode(mutation)),
    )


def make_http_connection_manager(*, stat_prefix: str, route_config_name: str) -> hcm_v3.HttpConnectionManager:
    """HTTP/1.0, HTTP/1.1 and HTTP/2 (prior knowledge) in, routes from RDS, websockets allowed.

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
        request_headers_timeout=REQUEST_HEADERS_TIMEOUT,
        common_http_protocol_options=core_v3.HttpProtocolOptions(idle_timeout=IDLE_TIMEOUT),
        http_protocol_options=core_v3.Http1ProtocolOptions(accept_http_10=True,
                                                           default_host_for_http_10=HTTP10_DEFAULT_HOST),
        early_header_mutation_extensions=[make_internal_header_removal()],
    )


def make_listener(name: str, *, host: str, port: int, route_config_name: str) -> listener_v3.Listener:
    """A listener on ``host:port`` serving the route configuration ``route_config_name``."""
    manager = make_http_connection_manager(stat_prefix=name, route_config_name=route_config_name)
    return listener_v3.Listener(
        name=name,
        address=make_socket_address(host, port),
        per_connection_buffer_limit_bytes=CONNECTION_BUFFER_BYTES,
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
