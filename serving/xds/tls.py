"""Mutual TLS for the ADS stream: the certificates the controller issues, and where they live.

The xDS port hands out the whole ingress configuration (every host name, cluster-local ones
included, and every pod address), so only knserve's Envoys may open a stream: the server
requires a client certificate signed by the xDS CA and naming :data:`ENVOY_IDENTITY`, and
Envoy checks the server's certificate against the same CA (and its name,
:data:`SERVER_NAME`).

The controller makes the CA, its serving certificate and Envoy's client certificate once and
keeps them in two Secrets in knative-serving, so every controller replica serves the same
certificate and Envoy mounts its own:

    knserve-xds-certs   ca.crt ca.key tls.crt tls.key   the CA and the server's pair (the controller only)
    knserve-envoy-xds   ca.crt tls.crt tls.key          Envoy's client pair and the CA (mounted into Envoy)

It also makes the ingress token (:func:`shared_ingress_token`, Secret ``knserve-ingress-token``,
key ``token``): Envoy adds it to every request it routes, and the activator (which mounts it)
serves only requests carrying it, so a pod cannot reach a revision through the activator
with made-up ``Knative-Serving-*`` headers, around the ingress's routes and visibility.

:func:`make_certificates` is pure but for a scratch directory; :func:`shared_certificates`
reads or creates the Secrets (the first replica makes them; one racing it reads the winner's).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import secrets
import tempfile
from pathlib import Path
from typing import Any, Final

from knserve import pki
from knserve.networking import SYSTEM_NAMESPACE
from kube.client import KubeClient
from kube.errors import AlreadyExists, NotFound
from kube.resources import SECRETS

log = logging.getLogger(__name__)

ENVOY_IDENTITY: Final = "knserve-ingress"
"""The common name of Envoy's client certificate: the one peer the xDS server accepts."""
XDS_SERVICE: Final = "knserve-xds"
SERVER_NAME: Final = f"{XDS_SERVICE}.{SYSTEM_NAMESPACE}.svc"
"""The name Envoy expects in the server's certificate (and sends as SNI)."""
SERVER_SECRET: Final = "knserve-xds-certs"
ENVOY_SECRET: Final = "knserve-envoy-xds"
INGRESS_TOKEN_SECRET: Final = "knserve-ingress-token"
CA_CERT, CA_KEY, CERT, KEY, TOKEN = "ca.crt", "ca.key", "tls.crt", "tls.key", "token"


@dataclasses.dataclass(frozen=True)
class XdsCertificates:
    """PEM bytes: the CA, the server's pair and Envoy's client pair."""

    ca: bytes
    ca_key: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes

    def write_client(self, directory: Path) -> tuple[Path, Path, Path]:
        """Envoy's files (``tls.crt``, ``tls.key``, ``ca.crt``) in ``directory``, as the Secret mounts them."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key, ca = directory / CERT, directory / KEY, directory / CA_CERT
        cert.write_bytes(self.client_cert)
        key.touch(mode=0o600)
        key.write_bytes(self.client_key)
        ca.write_bytes(self.ca)
        return cert, key, ca


def make_certificates(*, server_addresses: tuple[str, ...] = ("127.0.0.1",)) -> XdsCertificates:
    """A new CA, a serving certificate for the ``knserve-xds`` Service (and ``server_addresses``)
    and Envoy's client certificate."""
    with tempfile.TemporaryDirectory(prefix="knserve-xds-") as scratch:
        directory = Path(scratch)
        ca = pki.ensure_ca(directory, common_name="knserve-xds-ca")
        names = (XDS_SERVICE, f"{XDS_SERVICE}.{SYSTEM_NAMESPACE}", SERVER_NAME, f"{SERVER_NAME}.cluster.local",
                 "localhost")
        server = pki.issue(ca, directory, "server", common_name=SERVER_NAME, dns_names=names,
                           ip_addresses=server_addresses, server=True)
        client = pki.issue(ca, directory, "envoy", common_name=ENVOY_IDENTITY, client=True)
        return XdsCertificates(
            ca=ca.cert.read_bytes(), ca_key=ca.key.read_bytes(),
            server_cert=server.cert.read_bytes(), server_key=server.key.read_bytes(),
            client_cert=client.cert.read_bytes(), client_key=client.key.read_bytes(),
        )


def _secret(name: str, namespace: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "knserve", "app.kubernetes.io/component": "controller"}},
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }


def _data(secret: dict[str, Any], keys: tuple[str, ...]) -> dict[str, bytes] | None:
    data = secret.get("data") or {}
    if not all(data.get(key) for key in keys):
        return None
    return {key: base64.b64decode(data[key]) for key in keys}


async def _get(client: KubeClient, namespace: str, name: str, keys: tuple[str, ...]) -> dict[str, bytes] | None:
    try:
        secret = await client.get(SECRETS, namespace, name)
    except NotFound:
        return None
    found = _data(secret, keys)
    if found is None:
        raise RuntimeError(f"the Secret {namespace}/{name} lacks one of {', '.join(keys)}: "
                           f"delete it (and {ENVOY_SECRET}) and the controller makes new certificates")
    return found


async def _create(client: KubeClient, namespace: str, name: str, data: dict[str, bytes]) -> dict[str, bytes]:
    try:
        await client.create(SECRETS, _secret(name, namespace, data))
        log.info("made the xDS certificates (Secret %s/%s)", namespace, name)
        return data
    except AlreadyExists:
        found = await _get(client, namespace, name, tuple(data))
        if found is None:
            raise RuntimeError(f"the Secret {namespace}/{name} vanished while it was being made") from None
        return found


async def shared_certificates(client: KubeClient, *, namespace: str = SYSTEM_NAMESPACE) -> XdsCertificates:
    """The certificates every controller replica serves, from the Secrets (made there first)."""
    server_keys = (CA_CERT, CA_KEY, CERT, KEY)
    server = await _get(client, namespace, SERVER_SECRET, server_keys)
    if server is None:
        made = make_certificates()
        server = await _create(client, namespace, SERVER_SECRET, {
            CA_CERT: made.ca, CA_KEY: made.ca_key, CERT: made.server_cert, KEY: made.server_key})
    found = await _get(client, namespace, ENVOY_SECRET, (CA_CERT, CERT, KEY))
    if found is not None and found[CA_CERT] == server[CA_CERT]:
        return _combined(server, found)
    envoy = await _issue_client(client, namespace, server, replace=found is not None)
    return _combined(server, envoy)


async def _issue_client(client: KubeClient, namespace: str, server: dict[str, bytes], *,
                        replace: bool) -> dict[str, bytes]:
    """Envoy's pair from the CA in ``server`` (its Secret was missing, or from another CA)."""
    with tempfile.TemporaryDirectory(prefix="knserve-xds-") as scratch:
        directory = Path(scratch)
        ca = pki.KeyPair(directory / "ca.crt", directory / "ca.key")
        ca.cert.write_bytes(server[CA_CERT])
        ca.key.touch(mode=0o600)
        ca.key.write_bytes(server[CA_KEY])
        pair = pki.issue(ca, directory, "envoy", common_name=ENVOY_IDENTITY, client=True)
        data = {CA_CERT: server[CA_CERT], CERT: pair.cert.read_bytes(), KEY: pair.key.read_bytes()}
    if replace:
        log.warning("the Secret %s/%s was signed by another CA: issuing Envoy's certificate anew", namespace,
                    ENVOY_SECRET)
        await client.delete(SECRETS, namespace, ENVOY_SECRET)
    return await _create(client, namespace, ENVOY_SECRET, data)


def _combined(server: dict[str, bytes], envoy: dict[str, bytes]) -> XdsCertificates:
    return XdsCertificates(ca=server[CA_CERT], ca_key=server[CA_KEY], server_cert=server[CERT],
                           server_key=server[KEY], client_cert=envoy[CERT], client_key=envoy[KEY])


async def shared_ingress_token(client: KubeClient, *, namespace: str = SYSTEM_NAMESPACE) -> str:
    """The token Envoy shows the activator: read from its Secret, made there first."""
    found = await _get(client, namespace, INGRESS_TOKEN_SECRET, (TOKEN,))
    if found is None:
        found = await _create(client, namespace, INGRESS_TOKEN_SECRET, {TOKEN: secrets.token_hex(32).encode()})
    return found[TOKEN].decode().strip()
