"""The xDS certificates, kept in two Secrets the controller's replicas share."""

from __future__ import annotations

import asyncio
import base64

from cryptography import x509
from cryptography.x509.oid import NameOID

from kube.fake import FakeKubeClient
from kube.resources import SECRETS
from serving.xds.tls import CA_CERT, CERT, ENVOY_IDENTITY, ENVOY_SECRET, SERVER_SECRET, shared_certificates

NS = "knative-serving"


def _common_name(pem: bytes) -> str:
    value = x509.load_pem_x509_certificate(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return value if isinstance(value, str) else value.decode()


async def test_replicas_share_one_ca_and_envoy_gets_only_its_client_pair() -> None:
    client = FakeKubeClient()
    first, second = await asyncio.gather(shared_certificates(client), shared_certificates(client))
    assert first == second
    assert await shared_certificates(client) == first
    envoy = client.peek(SECRETS, NS, ENVOY_SECRET)
    assert envoy is not None
    assert sorted(envoy["data"]) == ["ca.crt", "tls.crt", "tls.key"], "no CA key and no server key for Envoy"
    assert base64.b64decode(envoy["data"][CERT]) == first.client_cert
    assert _common_name(first.client_cert) == ENVOY_IDENTITY


async def test_envoys_pair_from_an_older_ca_is_issued_anew() -> None:
    client = FakeKubeClient()
    old = await shared_certificates(client)
    await client.delete(SECRETS, NS, SERVER_SECRET)
    new = await shared_certificates(client)
    assert new.ca != old.ca
    envoy = client.peek(SECRETS, NS, ENVOY_SECRET)
    assert envoy is not None and base64.b64decode(envoy["data"][CA_CERT]) == new.ca
    assert new.client_cert != old.client_cert
