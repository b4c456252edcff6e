"""The ADS gRPC server (grpc.aio): moves bytes between Envoy's streams and :class:`AdsStream`.

It knows only the cache (``cache.Cache``). Responses are prebuilt bytes, so the response
serializer is the identity; requests are parsed with envoy-data-plane. Keepalive settings
let Envoy ping an idle stream (grpcio's default policy answers Envoy's keepalive pings with
"too many pings" and closes the stream).

Given certificates (``tls.XdsCertificates``), it serves over TLS and requires a client
certificate from the same CA: a peer without one fails the handshake, and one whose
certificate names anyone but ``ENVOY_IDENTITY`` is refused (PERMISSION_DENIED) before it
reaches the cache, so it neither gets config nor counts for readiness.

Side effects: listens on a TCP address; one task per open stream, owned by grpc.aio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Final

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
from envoy_data_plane.envoy.service.discovery.v3 import DiscoveryRequest

from serving.xds.cache import Cache
from serving.xds.stream import AdsStream, ProtocolError, nonce_counter
from serving.xds.tls import ENVOY_IDENTITY, XdsCertificates

log = logging.getLogger(__name__)

SERVICE: Final = "envoy.service.discovery.v3.AggregatedDiscoveryService"

SERVER_OPTIONS: Final = (
    # Accept Envoy's keepalive pings (bootstrap: every 30 s) on streams with no data flowing,
    # never count them as abuse; ping Envoy ourselves to notice a vanished peer.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # Whole-config responses for thousands of services exceed the 4 MiB default.
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


def _identity(response: bytes) -> bytes:
    return response


class AdsServer:
    """Serves ``StreamAggregatedResources`` from ``cache`` on one listening address."""

    def __init__(self, cache: Cache, *, certificates: XdsCertificates | None = None,
                 client_identity: str = ENVOY_IDENTITY) -> None:
        self._cache = cache
        self._certificates = certificates
        self._client_identity = client_identity
        self._nonces: Iterator[str] = nonce_counter(secrets.token_hex(4))
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self, address: str = "127.0.0.1:0") -> int:
        """Listen on ``address`` (``host:port``, port 0 for any free one); returns the port."""
        server = grpc.aio.server(options=SERVER_OPTIONS)
        handler = grpc.stream_stream_rpc_method_handler(
            self._stream_aggregated_resources,
            request_deserializer=DiscoveryRequest.parse,
            response_serializer=_identity,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"StreamAggregatedResources": handler}),)
        )
        certificates = self._certificates
        if certificates is None:
            self.port = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials(
                [(certificates.server_key, certificates.server_cert)],
                root_certificates=certificates.ca, require_client_auth=True)
            self.port = server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"the xDS server could not listen on {address}: is the address in use?")
        await server.start()
        self._server = server
        log.info("xDS server listening on %s (port %d, %s)", address, self.port,
                 "plain text" if certificates is None else "mutual TLS")
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Close every stream (Envoy keeps serving its config and reconnects later) and stop."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    async def _stream_aggregated_resources(
        self, requests: AsyncIterator[DiscoveryRequest], context: grpc.aio.ServicerContext
    ) -> None:
        if self._certificates is not None:
            names = context.auth_context().get("x509_common_name") or []
            if self._client_identity.encode() not in names:
                peer = context.peer()
                log.warning("refused an ADS stream from %s: its certificate names %s, not %s", peer,
                            b", ".join(names).decode(errors="replace") or "nobody", self._client_identity)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    f"only {self._client_identity} may receive the ingress configuration")
        wake = asyncio.Event()
        stream = AdsStream(self._cache, wake=wake.set, nonces=self._nonces)
        reader = asyncio.create_task(self._read(requests, stream, wake), name="xds-stream-reader")
        try:
            while True:
                await wake.wait()
                wake.clear()
                if reader.done():
                    break
                for response in stream.pending():
                    await context.write(response)
            error = reader.exception()
            if isinstance(error, ProtocolError):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            stream.close()
            log.info("ADS stream from %s closed", stream.node)

    @staticmethod
    async def _read(requests: AsyncIterator[DiscoveryRequest], stream: AdsStream, wake: asyncio.Event) -> None:
        try:
            async for request in requests:
                stream.receive(request)
                wake.set()
        finally:
            wake.set()
