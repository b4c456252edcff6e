"""The node agent's calls to the Kubernetes API: a kubelet's verbs over ``kube.client.KubeClient``.

``NodeApi`` names what the agent asks of the API server (its Node and Lease, binding a pod,
a pod's status, deleting a pod it stopped, the ConfigMaps, Secrets and service-account
tokens containers use) and turns a server that cannot be reached into ``ApiError`` with
status 0, so callers catch one exception. The agent watches pods, Services and
EndpointSlices with ``kube.informer`` over the same client (``NodeApi.client``).
``ServerInfo`` says how the agent, and the pods, reach the API server.

Side effects: network calls to the API server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import aiohttp

from kube.client import STRATEGIC_MERGE_PATCH, KubeClient, RestKubeClient
from kube.errors import ApiError, Conflict, NotFound
from kube.objects import JSON
from kube.resources import CONFIGMAPS, LEASES, NODES, PODS, SECRETS, SERVICE_ACCOUNTS

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """How pods reach the API server: its URL and the CA bundle that verifies it."""

    url: str
    ca_pem: bytes | None
    host: str
    port: int
    tls_server_name: str | None = None  # the name to check the certificate against, when not host

    @classmethod
    def of(cls, client: RestKubeClient) -> ServerInfo:
        """The server ``client`` talks to, as the agent reaches it."""
        parsed = urllib.parse.urlsplit(client.host)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        ca_pem = Path(client.ca_file).read_bytes() if client.ca_file else None
        return cls(url=client.host, ca_pem=ca_pem, host=parsed.hostname or "127.0.0.1", port=port)

    def reached_at(self, address: str) -> ServerInfo:
        """The same server through another of its addresses, checked against its DNS name
        ``kubernetes.default.svc`` (every API server certificate carries it)."""
        scheme = urllib.parse.urlsplit(self.url).scheme or "https"
        return dataclasses.replace(
            self, url=f"{scheme}://{address}:{self.port}", host=address, tls_server_name="kubernetes.default.svc"
        )


@contextlib.contextmanager
def _answering(what: str) -> Iterator[None]:
    """Turn a connection failure (aiohttp's errors, the socket's, timeouts) into ``ApiError``."""
    try:
        yield
    except (aiohttp.ClientError, OSError) as error:  # TimeoutError is an OSError
        raise ApiError(0, "Unreachable", f"The API server did not answer {what}: {error}") from error


class NodeApi:
    """The API server as the node agent uses it."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    # --- the Node and its Lease ---------------------------------------------------------------

    async def get_node(self, name: str) -> JSON | None:
        with _answering(f"GET node {name}"), contextlib.suppress(NotFound):
            return await self.client.get(NODES, None, name)
        return None

    async def create_node(self, node: JSON) -> JSON:
        with _answering("POST node"):
            return await self.client.create(NODES, node)

    async def patch_node_status(self, name: str, patch: JSON) -> JSON:
        with _answering(f"PATCH node {name} status"):
            return await self.client.patch(NODES, None, name, patch, content_type=STRATEGIC_MERGE_PATCH,
                                           subresource="status")

    async def get_lease(self, namespace: str, name: str) -> JSON | None:
        with _answering(f"GET lease {namespace}/{name}"), contextlib.suppress(NotFound):
            return await self.client.get(LEASES, namespace, name)
        return None

    async def create_lease(self, lease: JSON) -> JSON:
        with _answering("POST lease"):
            return await self.client.create(LEASES, lease)

    async def replace_lease(self, lease: JSON) -> JSON:
        with _answering("PUT lease"):
            return await self.client.update(LEASES, lease)

    # --- pods --------------------------------------------------------------------------------

    async def bind_pod(self, namespace: str, name: str, *, uid: str, node_name: str) -> None:
        """Place the pod on ``node_name`` through its ``binding`` subresource (no scheduler runs)."""
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        with _answering(f"POST pod {namespace}/{name} binding"):
            await self.client.create_subresource(PODS, namespace, name, "binding", binding)

    async def patch_pod_status(self, namespace: str, name: str, patch: JSON) -> JSON:
        with _answering(f"PATCH pod {namespace}/{name} status"):
            return await self.client.patch(PODS, namespace, name, patch, content_type=STRATEGIC_MERGE_PATCH,
                                           subresource="status")

    async def delete_pod_now(self, namespace: str, name: str, *, uid: str) -> None:
        """Delete with grace 0 and a UID precondition (a same-named successor is left alone)."""
        with _answering(f"DELETE pod {namespace}/{name}"), contextlib.suppress(NotFound, Conflict):
            await self.client.delete(PODS, namespace, name, uid=uid, grace_period_seconds=0)

    # --- what containers read ----------------------------------------------------------------

    async def get_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The ConfigMap's ``data`` and ``binaryData`` (decoded as UTF-8) together; None if absent."""
        with _answering(f"GET configmap {namespace}/{name}"):
            try:
                config_map = await self.client.get(CONFIGMAPS, namespace, name)
            except NotFound:
                return None
        data: dict[str, str] = dict(config_map.get("data") or {})
        for key, value in (config_map.get("binaryData") or {}).items():
            data[key] = base64.b64decode(value).decode("utf-8", "replace")
        return data

    async def get_secret(self, namespace: str, name: str) -> JSON | None:
        with _answering(f"GET secret {namespace}/{name}"), contextlib.suppress(NotFound):
            return await self.client.get(SECRETS, namespace, name)
        return None

    async def request_token(
        self, namespace: str, service_account: str, *, pod_name: str, pod_uid: str, expiration_seconds: int
    ) -> tuple[str, str]:
        """A bound token for ``service_account`` tied to the pod; (token, expirationTimestamp)."""
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [],
                "expirationSeconds": expiration_seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": pod_uid},
            },
        }
        with _answering(f"POST serviceaccount {namespace}/{service_account} token"):
            answer = await self.client.create_subresource(SERVICE_ACCOUNTS, namespace, service_account, "token",
                                                          request)
        status = answer.get("status") or {}
        return str(status.get("token", "")), str(status.get("expirationTimestamp", ""))


async def retry_forever(what: str, attempt: Callable[[], Awaitable[T]], *, delay: float = 1.0,
                        max_delay: float = 10.0) -> T:
    """Run ``attempt()`` until it succeeds, logging failures; for startup steps."""
    while True:
        try:
            return await attempt()
        except (ApiError, aiohttp.ClientError, OSError) as error:
            log.warning("%s failed, retrying in %.0fs: %s", what, delay, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
