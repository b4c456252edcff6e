"""The webhook's serving certificate and its registration with the API server.

``webhook_certificate`` makes a CA and a certificate for the ``webhook`` Service in a
directory (one process on its own). ``shared_certificate`` keeps them in the Secret
``webhook-certs`` instead, as Knative does, so every replica of the webhook serves the same
certificate: the first replica makes it (a second one racing it reads the winner's).
``register_webhooks`` creates or replaces the Validating/MutatingWebhookConfiguration that send
knserve's kinds to the webhook, with the CA that signed the certificate.

Side effects: API reads and writes (Secret, webhook configurations); files in the directory given.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Any, Final

from knserve import pki
from knserve.networking import SYSTEM_NAMESPACE
from kube.client import KubeClient
from kube.errors import AlreadyExists, Conflict, NotFound
from kube.resources import SECRETS, Resource
from serving.webhook.registration import (
    NOT_SYSTEM_NAMESPACES,
    mutating_webhook_configuration,
    validating_webhook_configuration,
)

log = logging.getLogger(__name__)

VALIDATING_WEBHOOKS: Final = Resource("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
                                      "ValidatingWebhookConfiguration", namespaced=False, has_status=False)
MUTATING_WEBHOOKS: Final = Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
                                    "MutatingWebhookConfiguration", namespaced=False, has_status=False)
WEBHOOK_SERVICE: Final = "webhook"
CERTIFICATE_SECRET: Final = "webhook-certs"
# The Secret's keys (a kubernetes.io/tls Secret plus the CA).
CA_KEY, CERT_KEY, PRIVATE_KEY = "ca.crt", "tls.crt", "tls.key"


@dataclasses.dataclass(frozen=True)
class ServingCertificate:
    """PEM bytes of the CA, the serving certificate and its key."""

    ca: bytes
    cert: bytes
    key: bytes

    def write(self, directory: Path) -> pki.KeyPair:
        """Write the certificate and key into ``directory`` (for ``ssl.load_cert_chain``)."""
        directory.mkdir(parents=True, exist_ok=True)
        pair = pki.KeyPair(directory / "webhook.crt", directory / "webhook.key")
        (directory / "ca.crt").write_bytes(self.ca)
        pair.cert.write_bytes(self.cert)
        pair.key.touch(mode=0o600)
        pair.key.write_bytes(self.key)
        return pair


def webhook_certificate(directory: Path, host: str) -> pki.KeyPair:
    """The webhook's serving certificate (and its CA), made once and kept in ``directory``."""
    ca = pki.ensure_ca(directory)
    names = (WEBHOOK_SERVICE, f"{WEBHOOK_SERVICE}.{SYSTEM_NAMESPACE}", f"{WEBHOOK_SERVICE}.{SYSTEM_NAMESPACE}.svc",
             f"{WEBHOOK_SERVICE}.{SYSTEM_NAMESPACE}.svc.cluster.local", "localhost")
    addresses = tuple(sorted({"127.0.0.1", host} - {"0.0.0.0"}))
    return pki.issue(ca, directory, "webhook", common_name=f"{WEBHOOK_SERVICE}.{SYSTEM_NAMESPACE}.svc",
                     dns_names=names, ip_addresses=addresses, server=True)


def _certificate_of(secret: dict[str, Any]) -> ServingCertificate | None:
    data = secret.get("data") or {}
    if not all(data.get(key) for key in (CA_KEY, CERT_KEY, PRIVATE_KEY)):
        return None
    return ServingCertificate(*(base64.b64decode(data[key]) for key in (CA_KEY, CERT_KEY, PRIVATE_KEY)))


async def shared_certificate(client: KubeClient, *, namespace: str = SYSTEM_NAMESPACE,
                             name: str = CERTIFICATE_SECRET) -> ServingCertificate:
    """The certificate every webhook replica serves: read from the Secret, made there first."""
    try:
        found = _certificate_of(await client.get(SECRETS, namespace, name))
        if found is not None:
            return found
        raise RuntimeError(f"the Secret {namespace}/{name} lacks {CA_KEY}, {CERT_KEY} or {PRIVATE_KEY}: "
                           "delete it and the webhook makes a new one")
    except NotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="knserve-webhook-") as scratch:
        pair = webhook_certificate(Path(scratch), "0.0.0.0")
        made = ServingCertificate((Path(scratch) / "ca.crt").read_bytes(), pair.cert.read_bytes(), pair.key.read_bytes())
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "knserve", "app.kubernetes.io/component": "webhook"}},
        "data": {key: base64.b64encode(value).decode() for key, value in
                 ((CA_KEY, made.ca), (CERT_KEY, made.cert), (PRIVATE_KEY, made.key))},
    }
    try:
        await client.create(SECRETS, secret)
        log.info("made the webhook's certificate (Secret %s/%s)", namespace, name)
        return made
    except AlreadyExists:
        found = _certificate_of(await client.get(SECRETS, namespace, name))
        if found is None:
            raise RuntimeError(f"the Secret {namespace}/{name} another replica made is incomplete") from None
        return found


async def _create_or_replace(client: KubeClient, resource: Resource, desired: dict[str, Any]) -> None:
    try:
        await client.create(resource, desired)
        return
    except AlreadyExists:
        pass
    for attempt in range(3):
        current = await client.get(resource, None, desired["metadata"]["name"])
        # The install's annotations stay (kubectl's last-applied configuration among them: a later
        # `kubectl apply` of config/ then leaves the CA alone).
        annotations = {**(current["metadata"].get("annotations") or {}), **(desired["metadata"].get("annotations") or {})}
        replacement = {**desired, "metadata": {**desired["metadata"], "annotations": annotations,
                                               "resourceVersion": current["metadata"]["resourceVersion"]}}
        try:
            await client.update(resource, replacement)
            return
        except Conflict:
            if attempt == 2:
                raise  # another replica keeps writing it (with the same CA): it is registered


async def register_webhooks(client: KubeClient, *, ca_pem: bytes, url: str | None) -> None:
    target: dict[str, Any] = {"url": url} if url else {"service_namespace": SYSTEM_NAMESPACE,
                                                       "service_name": WEBHOOK_SERVICE, "service_port": 443}
    await _create_or_replace(client, MUTATING_WEBHOOKS, mutating_webhook_configuration(
        ca_pem=ca_pem, namespace_selector=NOT_SYSTEM_NAMESPACES, **target))
    await _create_or_replace(client, VALIDATING_WEBHOOKS, validating_webhook_configuration(
        ca_pem=ca_pem, namespace_selector=NOT_SYSTEM_NAMESPACES, **target))
