"""The xDS port over mutual TLS, with a real Envoy and hand-made ADS clients (grpc.aio).

Only a client holding the ingress certificate the controller issued gets any config; an
authenticated client that stalls or refuses everything does not keep a new Route from being
served by the real Envoy beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
import pytest
from envoy_data_plane.envoy.config.core.v3 import Node
from envoy_data_plane.envoy.service.discovery.v3 import DiscoveryRequest, DiscoveryResponse
from envoy_data_plane.google.rpc import Status

from knserve import pki
from serving.xds import type_urls
from serving.xds.controller import INGRESS_NODE_CLUSTER, XdsController
from serving.xds.model import Endpoint, IngressModel, IngressRule, RevisionBackend, Split
from serving.xds.tls import ENVOY_IDENTITY, SERVER_NAME, XdsCertificates, make_certificates
from serving.xds.translate import IngressSettings
from tests.support.xds_backends import NamedBackend
from tests.support.ports import free_port
from tests.support.xds_runner import LocalIngress

METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
CDS = type_urls.CLUSTER


@pytest.fixture(scope="module")
def certificates() -> XdsCertificates:
    return make_certificates()


def _pair_from(ca_cert: bytes, ca_key: bytes, common_name: str) -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        ca = pki.KeyPair(directory / "ca.crt", directory / "ca.key")
        ca.cert.write_bytes(ca_cert)
        ca.key.write_bytes(ca_key)
        pair = pki.issue(ca, directory, "client", common_name=common_name, client=True)
        return pair.cert.read_bytes(), pair.key.read_bytes()


def _channel(port: int, certificates: XdsCertificates | None, client: tuple[bytes, bytes] | None) -> grpc.aio.Channel:
    target = f"127.0.0.1:{port}"
    if certificates is None:
        return grpc.aio.insecure_channel(target)
    key_cert = (client[1], client[0]) if client is not None else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates=certificates.ca, private_key=key_cert[0],
                                               certificate_chain=key_cert[1])
    return grpc.aio.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", SERVER_NAME)])


def _request(node_id: str, *, nonce: str = "", version: str = "", error: str = "") -> bytes:
    return bytes(DiscoveryRequest(
        node=Node(id=node_id, cluster=INGRESS_NODE_CLUSTER), type_url=CDS, version_info=version,
        response_nonce=nonce, error_detail=Status(code=3, message=error) if error else None,
    ))


async def _first_response(port: int, certificates: XdsCertificates | None,
                          client: tuple[bytes, bytes] | None) -> DiscoveryResponse:
    async with _channel(port, certificates, client) as channel:
        call = channel.stream_stream(METHOD, request_serializer=lambda raw: raw,
                                     response_deserializer=DiscoveryResponse.parse)
        stream = call()
        await stream.write(_request("curious"))
        async with asyncio.timeout(30):
            response: DiscoveryResponse = await stream.read()
        stream.cancel()
        return response


def _model(backend: NamedBackend, generation: int) -> IngressModel:
    return IngressModel(
        rules=(IngressRule("default", "hello", (f"hello-{generation}.default.example.com",),
                           (Split(backend.name, "default", 100),), generation=generation),),
        backends=(RevisionBackend("default", backend.name, (Endpoint("127.0.0.1", backend.port),)),),
    )


async def test_only_the_ingress_certificate_gets_the_config(certificates: XdsCertificates) -> None:
    controller = XdsController(certificates=certificates)
    port = await controller.start()
    controller.update(IngressModel(
        rules=(IngressRule("secret-ns", "internal", ("internal.secret-ns.svc.cluster.local",),
                           (Split("internal-00001", "secret-ns", 100),)),),
        backends=(RevisionBackend("secret-ns", "internal-00001", (Endpoint("10.244.0.9", 8012),)),),
    ))
    other_ca = make_certificates()
    try:
        refused = {
            "plain text": (None, None),
            "TLS without a client certificate": (certificates, None),
            "a certificate from another CA": (certificates, (other_ca.client_cert, other_ca.client_key)),
        }
        for what, (tls, client) in refused.items():
            # The handshake fails (UNAVAILABLE, or the stream breaks as the server's alert
            # arrives): no response either way.
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await _first_response(port, tls, client)
            assert failed.value.code() is not grpc.StatusCode.OK, what

        intruder = _pair_from(certificates.ca, certificates.ca_key, "someone-else")
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await _first_response(port, certificates, intruder)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED, denied.value
        assert ENVOY_IDENTITY in (denied.value.details() or "")
        assert controller.statuses() == [], "no refused client reached the cache"

        response = await _first_response(port, certificates, (certificates.client_cert, certificates.client_key))
        assert response.type_url == CDS and response.resources, response
    finally:
        await controller.stop(grace=0.1)


@contextlib.asynccontextmanager
async def _stalled_client(port: int, certificates: XdsCertificates) -> AsyncIterator[None]:
    """Subscribes to clusters and never acknowledges anything; the stream stays open."""
    async with _channel(port, certificates, (certificates.client_cert, certificates.client_key)) as channel:
        stream = channel.stream_stream(METHOD, request_serializer=lambda raw: raw,
                                       response_deserializer=DiscoveryResponse.parse)()
        await stream.write(_request("stalled"))
        yield
        stream.cancel()


@contextlib.asynccontextmanager
async def _refusing_client(port: int, certificates: XdsCertificates) -> AsyncIterator[None]:
    """NACKs every response it gets."""
    async with _channel(port, certificates, (certificates.client_cert, certificates.client_key)) as channel:
        stream = channel.stream_stream(METHOD, request_serializer=lambda raw: raw,
                                       response_deserializer=DiscoveryResponse.parse)()
        await stream.write(_request("refusing"))

        async def refuse() -> None:
            while True:
                response = await stream.read()
                if response is grpc.aio.EOF:
                    return
                await stream.write(_request("refusing", nonce=response.nonce, error="refused by a test client"))

        refusing = asyncio.create_task(refuse())
        yield
        refusing.cancel()
        stream.cancel()


async def test_a_stalled_and_a_refusing_client_do_not_hold_a_new_route_back(
    tmp_path: Path, certificates: XdsCertificates
) -> None:
    backend = await NamedBackend("hello-00001").start()
    try:
        settings = IngressSettings(external_port=free_port(), internal_port=free_port(), ingress_token="s3cret")
        async with LocalIngress(tmp_path / "envoy", certificates=certificates, settings=settings) as ingress:
            controller = ingress.controller
            controller.ack_timeout = 2.0
            controller.update(_model(backend, 1))
            await controller.wait_route_served("default/hello", 1, timeout=30)
            async with aiohttp.ClientSession() as session, \
                    session.get(ingress.external_url, headers={"Host": "hello-1.default.example.com"}) as response:
                assert response.status == 200, "Envoy serves the routes with the ingress token added"
            async with _stalled_client(ingress.xds_port, certificates), \
                    _refusing_client(ingress.xds_port, certificates):
                controller.update(_model(backend, 2))
                await controller.wait_route_served("default/hello", 2, timeout=30)
                lagging = controller.lagging()
                assert set(lagging) == {"stalled", "refusing"}
                assert "refused by a test client" in lagging["refusing"]
                connected = {status.node.id for status in controller.statuses() if status.connected}
                assert {"stalled", "refusing"} <= connected, "their streams are kept"

                # A Route published now is served as soon as the real Envoy has it.
                controller.update(_model(backend, 3))
                loop = asyncio.get_running_loop()
                started = loop.time()
                await controller.wait_route_served("default/hello", 3, timeout=30)
                assert loop.time() - started < controller.ack_timeout
    finally:
        await backend.stop()
