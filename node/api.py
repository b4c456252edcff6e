"""The node agent's calls to the Kubernetes API, over kubernetes_asyncio's ApiClient.

The ApiClient brings kubeconfig loading, TLS and credentials; requests go through its
``call_api`` with ``_preload_content=False`` and objects travel as plain JSON dicts, which
also sidesteps the generated models' failure to parse the ``binding`` reply
(kubernetes-client/python#547). This is the only module of the agent that imports
kubernetes_asyncio.

Side effects: network calls to the API server.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

log = logging.getLogger(__name__)

JSON = dict[str, Any]
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """The API server refused a request; ``status`` is the HTTP status (0: not reached)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class Gone(ApiError):
    """A watch's resourceVersion is too old (410): list again."""


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """How pods reach the API server: its URL and the CA bundle that verifies it."""

    url: str
    ca_pem: bytes | None
    host: str
    port: int
    tls_server_name: str | None = None  # the name to check the certificate against, when not host

    def reached_at(self, address: str) -> ServerInfo:
        """The same server through another of its addresses, checked against its DNS name
        ``kubernetes.default.svc`` (every API server certificate carries it)."""
        scheme = urllib.parse.urlsplit(self.url).scheme or "https"
        return dataclasses.replace(
            self, url=f"{scheme}://{address}:{self.port}", host=address, tls_server_name="kubernetes.default.svc"
        )


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    type: str
    object: JSON


class NodeApi:
    """The API server as the node agent uses it."""

    def __init__(self, api_client: k8s_client.ApiClient) -> None:
        self._client = api_client

    @classmethod
    async def connect(cls, kubeconfig: str) -> NodeApi:
        configuration = k8s_client.Configuration()
        await k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        return cls(k8s_client.ApiClient(configuration))

    async def close(self) -> None:
        await self._client.close()

    def server_info(self) -> ServerInfo:
        configuration = self._client.configuration
        url = str(configuration.host).rstrip("/")
        ca_pem: bytes | None = None
        if configuration.ssl_ca_cert:
            ca_pem = Path(configuration.ssl_ca_cert).read_bytes()
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return ServerInfo(url=url, ca_pem=ca_pem, host=parsed.hostname or "127.0.0.1", port=port)

    # --- plumbing ------------------------------------------------------------------------

    async def _open(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: aiohttp.ClientTimeout | float | None = 30.0,
    ) -> aiohttp.ClientResponse:
        response: aiohttp.ClientResponse = await self._client.call_api(
            path,
            method,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )
        return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSON:
        try:
            response = await self._open(method, path, query=query, body=body, content_type=content_type)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise ApiError(0, "Unreachable", f"The API server did not answer {method} {path}: {error}") from error
        async with response:
            raw = await response.read()
        decoded: Any = None
        if raw:
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = None
        if 200 <= response.status < 300:
            return decoded if isinstance(decoded, dict) else {}
        raise _error(response.status, decoded, raw)

    # --- nodes and leases -------------------------------------------------------------------

    async def get_node(self, name: str) -> JSON | None:
        try:
            return await self.request("GET", f"/api/v1/nodes/{name}")
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def create_node(self, node: JSON) -> JSON:
        return await self.request("POST", "/api/v1/nodes", body=node)

    async def patch_node_status(self, name: str, patch: JSON) -> JSON:
        return await self.request(
            "PATCH", f"/api/v1/nodes/{name}/status", body=patch, content_type=STRATEGIC_MERGE_PATCH
        )

    async def patch_node(self, name: str, patch: JSON) -> JSON:
        return await self.request("PATCH", f"/api/v1/nodes/{name}", body=patch, content_type=MERGE_PATCH)

    def _lease_path(self, namespace: str, name: str = "") -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        return f"{base}/{name}" if name else base

    async def get_lease(self, namespace: str, name: str) -> JSON | None:
        try:
            return await self.request("GET", self._lease_path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def create_lease(self, namespace: str, lease: JSON) -> JSON:
        return await self.request("POST", self._lease_path(namespace), body=lease)

    async def replace_lease(self, namespace: str, name: str, lease: JSON) -> JSON:
        return await self.request("PUT", self._lease_path(namespace, name), body=lease)

    # --- pods ----------------------------------------------------------------------------

    async def list_pods(self, *, field_selector: str) -> tuple[list[JSON], str]:
        listed = await self.request("GET", "/api/v1/pods", query=[("fieldSelector", field_selector)])
        return list(listed.get("items") or []), str((listed.get("metadata") or {}).get("resourceVersion", ""))

    async def watch_pods(
        self, *, field_selector: str, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[WatchEvent]:
        """Events after ``resource_version`` until the server ends the watch; raises ``Gone``."""
        async for event in self.watch("/api/v1/pods", resource_version=resource_version,
                                      timeout_seconds=timeout_seconds, query=[("fieldSelector", field_selector)]):
            yield event

    async def list_objects(self, path: str) -> tuple[list[JSON], str]:
        """Every object at a collection ``path`` (all namespaces), and the list's resourceVersion."""
        listed = await self.request("GET", path)
        return list(listed.get("items") or []), str((listed.get("metadata") or {}).get("resourceVersion", ""))

    async def watch(
        self, path: str, *, resource_version: str, timeout_seconds: int, query: list[tuple[str, str]] | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Events of the collection at ``path`` after ``resource_version`` until the server ends
        the watch; raises ``Gone`` when that version is too old."""
        query = [
            *(query or []),
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_seconds + 30)
        response = await self._open("GET", path, query=query, timeout=timeout)
        async with response:
            if response.status != 200:
                raw = await response.read()
                try:
                    decoded = json.loads(raw)
                except ValueError:
                    decoded = None
                raise _error(response.status, decoded, raw)
            while True:
                line = await response.content.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                kind = event.get("type", "")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    raise _error(int(obj.get("code") or 500), obj, line)
                yield WatchEvent(kind, obj)

    async def bind_pod(self, namespace: str, name: str, *, uid: str, node_name: str) -> None:
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        await self.request("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", body=binding)

    async def patch_pod_status(self, namespace: str, name: str, patch: JSON) -> JSON:
        return await self.request(
            "PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status", body=patch, content_type=STRATEGIC_MERGE_PATCH
        )

    async def delete_pod_now(self, namespace: str, name: str, *, uid: str) -> None:
        """Delete with grace 0 and a UID precondition (a same-named successor is left alone)."""
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        }
        try:
            await self.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", body=body)
        except ApiError as error:
            if error.status not in (404, 409):
                raise

    # --- what containers read --------------------------------------------------------------

    async def get_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            config_map = await self.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        data: dict[str, str] = dict(config_map.get("data") or {})
        for key, value in (config_map.get("binaryData") or {}).items():
            data[key] = base64.b64decode(value).decode("utf-8", "replace")
        return data

    async def get_secret(self, namespace: str, name: str) -> JSON | None:
        try:
            return await self.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except ApiError as error:
            if error.status == 404:
                return None
            raise

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
        answer = await self.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token", body=request
        )
        status = answer.get("status") or {}
        return str(status.get("token", "")), str(status.get("expirationTimestamp", ""))


def _error(status: int, decoded: Any, raw: bytes) -> ApiError:
    if isinstance(decoded, dict):
        reason = str(decoded.get("reason", ""))
        message = str(decoded.get("message", "")) or raw[:300].decode("utf-8", "replace")
    else:
        reason, message = "", raw[:300].decode("utf-8", "replace")
    if status == 410:
        return Gone(status, reason or "Expired", message)
    return ApiError(status, reason, message or f"HTTP {status}")


async def retry_forever(what: str, attempt: Any, *, delay: float = 1.0, max_delay: float = 10.0) -> Any:
    """Run ``attempt()`` until it succeeds, logging failures; for startup steps."""
    while True:
        try:
            return await attempt()
        except (ApiError, aiohttp.ClientError, OSError) as error:
            log.warning("%s failed, retrying in %.0fs: %s", what, delay, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
