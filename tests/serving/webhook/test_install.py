"""The webhook's certificate, shared by its replicas through a Secret, and its registration."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import yaml

from kube.fake import FakeKubeClient
from kube.resources import SECRETS
from serving.webhook import registration
from serving.webhook.install import (
    CERTIFICATE_SECRET,
    MUTATING_WEBHOOKS,
    VALIDATING_WEBHOOKS,
    register_webhooks,
    shared_certificate,
)
from serving.webhook.server import server_ssl_context

NS = "knative-serving"


async def test_replicas_starting_together_serve_one_certificate(tmp_path: Path) -> None:
    client = FakeKubeClient()
    first, second = await asyncio.gather(shared_certificate(client), shared_certificate(client))
    assert first == second
    assert client.peek(SECRETS, NS, CERTIFICATE_SECRET) is not None
    assert await shared_certificate(client) == first  # a replica started later reads it too
    pair = first.write(tmp_path)
    server_ssl_context(str(pair.cert), str(pair.key))  # a usable certificate and key
    trust = ssl.create_default_context(cadata=first.ca.decode())
    assert trust.cert_store_stats()["x509_ca"] == 1


async def test_registration_replaces_what_another_replica_registered() -> None:
    client = FakeKubeClient()
    await register_webhooks(client, ca_pem=b"old ca", url=None)
    await register_webhooks(client, ca_pem=b"new ca", url=None)
    for resource in (MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS):
        [configuration] = client.objects(resource)
        [webhook] = configuration["webhooks"]
        assert webhook["clientConfig"]["service"] == {
            "namespace": NS, "name": "webhook", "port": 443, "path": webhook["clientConfig"]["service"]["path"]}
        assert webhook["clientConfig"]["caBundle"] == "bmV3IGNh"  # base64 of "new ca"


async def test_registration_adds_the_ca_to_what_the_install_declared_and_keeps_its_annotations() -> None:
    """config/400-webhooks.yaml applied with kubectl, then the webhook starts: the configurations
    get its CA, and kubectl's last-applied configuration stays (a later apply leaves the CA alone)."""
    client = FakeKubeClient()
    applied = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    for document in yaml.safe_load_all(registration.install_manifest()):
        document["metadata"]["annotations"] = applied
        await client.create(MUTATING_WEBHOOKS if document["kind"].startswith("Mutating") else VALIDATING_WEBHOOKS,
                            document)
        assert "caBundle" not in document["webhooks"][0]["clientConfig"]
    await register_webhooks(client, ca_pem=b"the ca", url=None)
    for resource in (MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS):
        [configuration] = client.objects(resource)
        assert configuration["metadata"]["annotations"] == applied
        assert configuration["webhooks"][0]["clientConfig"]["caBundle"] == "dGhlIGNh"  # base64 of "the ca"
        assert configuration["webhooks"][0]["failurePolicy"] == "Fail"
