"""The Kubernetes API as knserve's processes use it: a small Protocol and a real REST client.

``KubeClient`` is the boundary every reconciler, informer and the node agent talk to:
get, list, watch, create, update, patch and delete of any ``Resource``, plus requests to
subresources that answer with another kind (a pod's ``binding``, a service account's
``token``). ``RestKubeClient`` implements it over an aiohttp session, with
kubernetes_asyncio loading the configuration (kubeconfig, in-cluster service-account token,
TLS, token refresh), exchanging plain JSON dicts (orjson: JSON is a large share of the
controller's CPU when many objects change at once). ``connect`` builds one.
``fake.FakeKubeClient`` implements the same Protocol in memory.

Side effects: network calls to the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import ssl
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.config.config_exception import ConfigException

from kube.errors import ApiError, Gone, error_from_status
from kube.flow import PriorityGate, WriteStats, write_priority
from kube.objects import JSON
from kube.resources import Resource

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclasses.dataclass(frozen=True, slots=True)
class WatchEvent:
    """One line of a watch stream: ADDED, MODIFIED, DELETED or BOOKMARK, and the object."""

    type: str
    object: JSON


@dataclasses.dataclass(frozen=True, slots=True)
class ListResult:
    items: list[JSON]
    resource_version: str


class KubeClient(Protocol):
    """What knserve needs from an API server. Objects are JSON dicts."""

    async def get(self, resource: Resource, namespace: str | None, name: str) -> JSON: ...

    async def list(
        self, resource: Resource, *, namespace: str | None = None, label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ListResult: ...

    def watch(
        self, resource: Resource, *, namespace: str | None = None, resource_version: str,
        label_selector: str | None = None, field_selector: str | None = None, timeout_seconds: int = 300,
    ) -> AsyncIterator[WatchEvent]: ...

    async def create(self, resource: Resource, obj: JSON, *, dry_run: bool = False) -> JSON: ...

    async def update(self, resource: Resource, obj: JSON) -> JSON: ...

    async def update_status(self, resource: Resource, obj: JSON) -> JSON: ...

    async def patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Any, *,
        content_type: str = MERGE_PATCH, subresource: str | None = None, field_manager: str | None = None,
    ) -> JSON: ...

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, *, propagation_policy: str | None = None,
        uid: str | None = None, grace_period_seconds: int | None = None,
    ) -> None: ...

    async def create_subresource(
        self, resource: Resource, namespace: str | None, name: str, subresource: str, body: JSON
    ) -> JSON: ...


def _with_type(resource: Resource, obj: JSON) -> JSON:
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    return obj


def _ssl_context(configuration: k8s_client.Configuration) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class RestKubeClient:
    """``KubeClient`` over HTTP: kubernetes_asyncio's ``Configuration`` says where and how to
    authenticate (kubeconfig, in-cluster token, exec plugins that refresh it); requests go
    through our own aiohttp session with JSON bodies (no generated models, no per-request
    proxy lookups)."""

    def __init__(
        self, configuration: k8s_client.Configuration, *, field_manager: str = "knserve-controller",
        max_writes_in_flight: int = 16, request_timeout: float = 60.0,
    ) -> None:
        self._configuration = configuration
        self._field_manager = field_manager
        self._request_timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._gate = PriorityGate(max_writes_in_flight)
        self.write_stats = WriteStats()
        self._host = str(configuration.host).rstrip("/")
        self._server_hostname = getattr(configuration, "tls_server_name", None) or None
        connector = aiohttp.TCPConnector(limit=max(64, max_writes_in_flight + 32), ssl=_ssl_context(configuration))
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False, read_bufsize=2**21)

    @property
    def host(self) -> str:
        """The API server's URL, without a trailing slash."""
        return self._host

    @property
    def ca_file(self) -> str | None:
        """The CA bundle the server's certificate is checked against (None: the system's)."""
        return str(self._configuration.ssl_ca_cert) if self._configuration.ssl_ca_cert else None

    async def close(self) -> None:
        await self._session.close()

    async def _request(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
        content_type: str = "application/json", timeout: aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        token = await self._configuration.get_api_key_with_prefix("BearerToken")
        if token:
            headers["Authorization"] = token
        params = [(k, str(v)) for k, v in (query or {}).items() if v is not None]
        data = orjson.dumps(body) if body is not None else None
        extra: dict[str, Any] = {"server_hostname": self._server_hostname} if self._server_hostname else {}
        return await self._session.request(
            method, self._host + path, params=params, data=data, headers=headers,
            timeout=timeout or self._request_timeout, **extra,
        )

    async def _write(
        self, verb: str, resource: Resource, method: str, path: str, *, query: dict[str, Any] | None = None,
        body: Any = None, content_type: str = "application/json", subresource: str | None = None,
    ) -> JSON:
        """A write, through the priority gate (see ``flow``)."""
        async with self._gate.slot(write_priority(verb, resource)):
            started = time.monotonic()
            outcome = ""
            try:
                return await self._json(method, path, query=query, body=body, content_type=content_type)
            except ApiError as error:
                outcome = f" ({error.reason or error.status})"
                raise
            finally:
                what = f"{resource.plural}/{subresource}" if subresource else resource.plural
                self.write_stats.record(f"{verb} {what}{outcome}", time.monotonic() - started)

    async def _json(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
        content_type: str = "application/json",
    ) -> JSON:
        response = await self._request(method, path, query=query, body=body, content_type=content_type)
        async with response:
            raw = await response.read()
        try:
            payload = orjson.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw.decode(errors="replace")[:500]}
        if not 200 <= response.status <= 299:
            raise error_from_status(response.status, payload if isinstance(payload, dict) else None)
        return payload if isinstance(payload, dict) else {}

    async def get(self, resource: Resource, namespace: str | None, name: str) -> JSON:
        return _with_type(resource, await self._json("GET", resource.object_path(namespace, name)))

    async def list(
        self, resource: Resource, *, namespace: str | None = None, label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ListResult:
        items: list[JSON] = []
        continue_token: str | None = None
        while True:
            page = await self._json("GET", resource.collection_path(namespace), query={
                "labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                "limit": 500, "continue": continue_token,
            })
            items.extend(_with_type(resource, item) for item in page.get("items") or [])
            metadata = page.get("metadata") or {}
            continue_token = metadata.get("continue") or None
            if not continue_token:
                return ListResult(items, str(metadata.get("resourceVersion") or ""))

    async def watch(
        self, resource: Resource, *, namespace: str | None = None, resource_version: str,
        label_selector: str | None = None, field_selector: str | None = None, timeout_seconds: int = 300,
    ) -> AsyncIterator[WatchEvent]:
        """Stream events after ``resource_version``; ends when the server closes the watch.

        Raises ``Gone`` when the version is too old (the caller re-lists).
        """
        query = {
            "watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds, "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None,
        }
        timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=timeout_seconds + 30)
        response = await self._request("GET", resource.collection_path(namespace), query=query, timeout=timeout)
        async with response:
            if not 200 <= response.status <= 299:
                raw = await response.read()
                try:
                    payload = orjson.loads(raw)
                except ValueError:
                    payload = {"message": raw.decode(errors="replace")[:500]}
                raise error_from_status(response.status, payload)
            while True:
                line = await response.content.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                event = orjson.loads(line)
                event_type = str(event.get("type") or "")
                obj = event.get("object") or {}
                if event_type == "ERROR":
                    raise error_from_status(int(obj.get("code") or 500), obj)
                yield WatchEvent(event_type, _with_type(resource, obj))

    async def create(self, resource: Resource, obj: JSON, *, dry_run: bool = False) -> JSON:
        """Create; ``dry_run`` has the server admit and validate it without storing it."""
        metadata = obj.get("metadata") or {}
        path = resource.collection_path(metadata.get("namespace"))
        body = _with_type(resource, dict(obj))
        query = {"fieldManager": self._field_manager, **({"dryRun": "All"} if dry_run else {})}
        return _with_type(resource, await self._write("create", resource, "POST", path, body=body, query=query))

    async def update(self, resource: Resource, obj: JSON) -> JSON:
        metadata = obj.get("metadata") or {}
        path = resource.object_path(metadata.get("namespace"), metadata["name"])
        body = _with_type(resource, dict(obj))
        return _with_type(resource, await self._write("update", resource, "PUT", path, body=body,
                                                      query={"fieldManager": self._field_manager}))

    async def update_status(self, resource: Resource, obj: JSON) -> JSON:
        metadata = obj.get("metadata") or {}
        path = resource.object_path(metadata.get("namespace"), metadata["name"], "status")
        body = _with_type(resource, dict(obj))
        return _with_type(resource, await self._write("update_status", resource, "PUT", path, body=body,
                                                      query={"fieldManager": self._field_manager}))

    async def patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Any, *,
        content_type: str = MERGE_PATCH, subresource: str | None = None, field_manager: str | None = None,
    ) -> JSON:
        query: dict[str, Any] = {"fieldManager": field_manager or self._field_manager}
        if content_type == APPLY_PATCH:
            query["force"] = "true"
        path = resource.object_path(namespace, name, subresource)
        return _with_type(resource, await self._write("patch", resource, "PATCH", path, body=patch,
                                                      content_type=content_type, query=query))

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, *, propagation_policy: str | None = None,
        uid: str | None = None, grace_period_seconds: int | None = None,
    ) -> None:
        """Delete; ``uid`` makes it a precondition (409 when another object has the name now),
        ``grace_period_seconds`` overrides the object's own (0: at once)."""
        body: JSON = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if uid:
            body["preconditions"] = {"uid": uid}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        await self._write("delete", resource, "DELETE", resource.object_path(namespace, name), body=body)

    async def create_subresource(
        self, resource: Resource, namespace: str | None, name: str, subresource: str, body: JSON
    ) -> JSON:
        """POST ``body`` to a subresource of an object (``pods/binding``, ``serviceaccounts/token``)
        and return the server's answer as it came: its kind is the subresource's (a Status for a
        binding, which kubernetes_asyncio's generated models fail to read: kubernetes-client/python#547)."""
        path = resource.object_path(namespace, name, subresource)
        return await self._write("create", resource, "POST", path, body=body, subresource=subresource)


async def connect(
    kubeconfig: str | None = None, *, field_manager: str = "knserve-controller", max_writes_in_flight: int = 16,
    request_timeout: float = 60.0,
) -> RestKubeClient:
    """A client from ``kubeconfig``, else ``$KUBECONFIG``, else the in-cluster service account,
    else ``~/.kube/config``. ``request_timeout`` bounds each request but watches (seconds).

    Raises ``ApiError`` with a sentence saying what to pass when none of them works.
    """
    configuration = k8s_client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    if path and os.pathsep not in path and not os.path.exists(path):
        raise ApiError(0, "NoConfiguration", f"The kubeconfig file {path} does not exist; pass --kubeconfig with "
                       "the path of an existing one, or run inside a cluster with a service account.")
    try:
        if path:
            await k8s_config.load_kube_config(config_file=path, client_configuration=configuration)
        else:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except ConfigException:
                await k8s_config.load_kube_config(client_configuration=configuration)
    except (ConfigException, OSError) as error:
        raise ApiError(0, "NoConfiguration",
                       f"Could not load a Kubernetes client configuration ({error}); pass --kubeconfig "
                       "or set KUBECONFIG, or run inside a cluster with a service account.") from error
    return RestKubeClient(configuration, field_manager=field_manager, max_writes_in_flight=max_writes_in_flight,
                          request_timeout=request_timeout)


@contextlib.asynccontextmanager
async def connected(
    kubeconfig: str | None, *, field_manager: str, program: str
) -> AsyncIterator[RestKubeClient | None]:
    """A connected client, closed on exit; None (after ``program`` says why on stderr) when no
    configuration works, so an entry point can exit with a sentence instead of a traceback."""
    try:
        client = await connect(kubeconfig, field_manager=field_manager)
    except ApiError as error:
        print(f"{program}: {error}", file=sys.stderr)
        yield None
        return
    try:
        yield client
    finally:
        await client.close()


async def wait_until_reachable(client: KubeClient, *, attempts: int = 30, delay: float = 1.0) -> None:
    """Retry a cheap read until the API server answers (it may still be starting)."""
    from kube.resources import NAMESPACES

    last: Exception | None = None
    for _ in range(attempts):
        try:
            await client.list(NAMESPACES, label_selector="knserve.dev/probe-never-matches")
            return
        except (ApiError, aiohttp.ClientError, OSError) as error:
            last = error
            await asyncio.sleep(delay)
    raise ApiError(0, "Unreachable", f"The Kubernetes API server did not answer: {last}")


__all__ = [
    "APPLY_PATCH", "JSON_PATCH", "MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "Gone", "KubeClient", "ListResult",
    "RestKubeClient", "WatchEvent", "connect", "wait_until_reachable",
]
