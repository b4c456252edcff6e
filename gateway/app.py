"""OpenFaaS's gateway API over Knative Services (aiohttp handlers; they only move bytes).

    GET/POST/PUT/DELETE /system/functions       list, deploy, update, delete
    GET  /system/function/<name>                 one function's status
    POST /system/scale-function/<name>           {"replicas": n} -> min-scale n
    GET  /system/namespaces, /system/info
    GET  /system/logs?name=&namespace=&follow=&tail=   NDJSON log messages
    ANY  /function/<name>[.<namespace>]/<path>   a call through the ingress
    ANY  /async-function/<name>[.<namespace>]/<path>  the same with Prefer: respond-async
                                                 (the call queue; X-Callback-Url passes through)
    GET  /healthz, /metrics                      (gateway_function_invocation_total,
                                                 gateway_functions_seconds, gateway_service_count)

``/system/*`` needs HTTP basic auth with the credentials of Secret ``knserve-gateway-auth``.
A function deployed here is an ordinary Knative Service: ``kubectl get ksvc`` lists it, and
canaries and rollbacks work on it as on any other.

Side effects: Kubernetes API calls, HTTP to the ingress, runs kubectl for logs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import platform
import re
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.translate import (
    FUNCTION_LABEL,
    MIN_SCALE,
    DeploymentError,
    function_status,
    knative_service,
    split_function_name,
)
from kube.client import KubeClient
from kube.errors import ApiError
from kube.resources import NAMESPACES, REVISIONS, SERVICES

log = logging.getLogger("knserve.gateway")
VERSION = "0.1.0"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                         "proxy-authorization", "proxy-authenticate", "host", "content-length"})


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str

    def accepts(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.user) & hmac.compare_digest(password, self.password)


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    ingress: str  # where the ingress answers, e.g. http://127.0.0.1:8080
    default_namespace: str = "default"
    credentials: Credentials | None = None
    kubeconfig: str | None = None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.invocations = Counter("gateway_function_invocation", "Function invocations",
                                   ["function_name", "code"], registry=self.registry)
        self.seconds = Histogram("gateway_functions_seconds", "Function call time",
                                 ["function_name", "code"], registry=self.registry)
        self.services = Gauge("gateway_service_count", "Replicas of a function", ["function_name"],
                              registry=self.registry)
        self.started = Counter("gateway_function_invocation_started", "Function invocations started",
                               ["function_name"], registry=self.registry)


def _json(document: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(document), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


class Gateway:
    def __init__(self, client: KubeClient, settings: GatewaySettings, *,
                 session: Callable[[], aiohttp.ClientSession] | None = None) -> None:
        self.client = client
        self.settings = settings
        self.metrics = Metrics()
        self._session_factory = session or (lambda: aiohttp.ClientSession(auto_decompress=False))
        self._session: aiohttp.ClientSession | None = None
        self._hosts: dict[tuple[str, str], tuple[float, str]] = {}

    # --- plumbing ---------------------------------------------------------------------------
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def namespace_of(self, request: web.Request, body: dict[str, Any] | None = None) -> str:
        return (body or {}).get("namespace") or request.query.get("namespace") or self.settings.default_namespace

    @web.middleware
    async def auth(self, request: web.Request,
                   handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        credentials = self.settings.credentials
        if request.path.startswith("/system/") and credentials is not None:
            if not credentials.accepts(request.headers.get("Authorization")):
                return web.Response(status=401, text="Unauthorized\n",
                                    headers={"WWW-Authenticate": 'Basic realm="Restricted"'})
        return await handler(request)

    # --- /system --------------------------------------------------------------------------------
    async def _replicas(self, service: dict[str, Any]) -> tuple[int, int]:
        name = (service.get("status") or {}).get("latestReadyRevisionName")
        if not name:
            return 0, 0
        try:
            revision = await self.client.get(REVISIONS, service["metadata"]["namespace"], name)
        except ApiError:
            return 0, 0
        status = revision.get("status") or {}
        return int(status.get("desiredReplicas") or 0), int(status.get("actualReplicas") or 0)

    def _invocations(self, name: str) -> float:
        total = 0.0
        for metric in self.metrics.invocations.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("function_name") == name:
                    total += sample.value
        return total

    async def _status(self, service: dict[str, Any]) -> dict[str, Any]:
        replicas, available = await self._replicas(service)
        name = service["metadata"]["name"]
        self.metrics.services.labels(function_name=name).set(available)
        return function_status(service, replicas=replicas, available=available, invocations=self._invocations(name))

    async def list_functions(self, request: web.Request) -> web.Response:
        namespace = self.namespace_of(request)
        result = await self.client.list(SERVICES, namespace=namespace)
        return _json([await self._status(service) for service in result.items])

    async def get_function(self, request: web.Request) -> web.Response:
        name, namespace = split_function_name(request.match_info["name"], self.namespace_of(request))
        try:
            service = await self.client.get(SERVICES, namespace, name)
        except ApiError as error:
            if error.status == 404:
                return _error(404, f"No such function: {name}")
            raise
        return _json(await self._status(service))

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="The body must be JSON.\n") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="The body must be a JSON object.\n")
        return body

    async def deploy(self, request: web.Request) -> web.Response:
        body = await self._read_body(request)
        namespace = self.namespace_of(request, body)
        try:
            service = knative_service(body, namespace=namespace)
        except DeploymentError as error:
            return _error(400, str(error))
        try:
            current = await self.client.get(SERVICES, namespace, service["metadata"]["name"])
        except ApiError as error:
            if error.status != 404:
                raise
            current = None
        if request.method == "PUT" and current is None:
            return _error(404, f"No such function: {service['metadata']['name']}")
        try:
            if current is None:
                await self.client.create(SERVICES, service)
            else:
                current["spec"]["template"] = service["spec"]["template"]
                current["metadata"].setdefault("labels", {}).update(service["metadata"]["labels"])
                current["metadata"]["annotations"] = {
                    **{k: v for k, v in (current["metadata"].get("annotations") or {}).items() if "/" in k and
                       k.split("/", 1)[0].endswith(("knative.dev", "kubernetes.io"))},
                    **service["metadata"]["annotations"],
                }
                await self.client.update(SERVICES, current)
        except ApiError as error:
            if error.status in (400, 422):
                return _error(400, str(error))
            raise
        log.info("deployed function %s/%s (%s)", namespace, service["metadata"]["name"], body.get("image"))
        return web.Response(status=202, text="")

    async def delete(self, request: web.Request) -> web.Response:
        body = await self._read_body(request)
        name = body.get("functionName") or ""
        if not name:
            return _error(400, "functionName is required")
        namespace = self.namespace_of(request, body)
        try:
            await self.client.delete(SERVICES, namespace, name)
        except ApiError as error:
            if error.status == 404:
                return _error(404, f"No such function: {name}")
            raise
        return web.Response(status=202, text="")

    async def scale(self, request: web.Request) -> web.Response:
        body = await self._read_body(request)
        name, namespace = split_function_name(request.match_info["name"], self.namespace_of(request, body))
        replicas = body.get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            return _error(400, "replicas must be a whole number >= 0")
        try:
            service = await self.client.get(SERVICES, namespace, name)
        except ApiError as error:
            if error.status == 404:
                return _error(404, f"No such function: {name}")
            raise
        annotations = service["spec"]["template"].setdefault("metadata", {}).setdefault("annotations", {})
        if replicas:
            annotations[MIN_SCALE] = str(replicas)
        else:
            annotations.pop(MIN_SCALE, None)
        await self.client.update(SERVICES, service)
        return web.Response(status=202, text="")

    async def namespaces(self, request: web.Request) -> web.Response:
        result = await self.client.list(NAMESPACES)
        names = [n["metadata"]["name"] for n in result.items
                 if not n["metadata"]["name"].startswith("kube-") and n["metadata"]["name"] != "knative-serving"]
        return _json(sorted(names))

    async def info(self, request: web.Request) -> web.Response:
        return _json({
            "provider": {"provider": "knserve", "orchestration": "kubernetes",
                         "version": {"release": VERSION, "sha": "", "commit_message": ""}},
            "version": {"release": VERSION, "sha": "", "commit_message": ""},
            "arch": platform.machine(),
        })

    async def logs(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("name") or ""
        if not name:
            return _error(400, "name is required")
        namespace = self.namespace_of(request)
        kubectl = shutil.which("kubectl", path=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin")
        if kubectl is None:
            return _error(500, "kubectl is not installed beside the gateway; it reads the logs")
        command = [kubectl, "logs", "-n", namespace, "-l", f"serving.knative.dev/service={name}",
                   "-c", "user-container", "--prefix", "--timestamps", "--max-log-requests", "20"]
        tail = request.query.get("tail")
        command += ["--tail", tail if tail and tail.lstrip("-").isdigit() else "-1"]
        since = request.query.get("since")
        if since:
            command += [f"--since-time={since}"]
        follow = request.query.get("follow", "").lower() in ("true", "1")
        if follow:
            command.append("-f")
        if self.settings.kubeconfig:
            command += ["--kubeconfig", self.settings.kubeconfig]
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        try:
            first = await process.stdout.readline()
            if not first:
                errors = (await process.stderr.read()).decode(errors="replace").strip()
                code = await process.wait()
                log.info("no log lines for %s/%s (kubectl exit %d): %s", namespace, name, code, errors)
                if code != 0:
                    log.warning("kubectl logs for %s/%s failed: %s", namespace, name, errors)
                    return _error(500, f"Cannot read the logs of {name}: {errors}")
            await response.prepare(request)
            line = first
            while line:
                message = parse_log_line(line.decode(errors="replace").rstrip("\n"), name=name, namespace=namespace)
                await response.write(json.dumps(message).encode() + b"\n")
                line = await process.stdout.readline()
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
        await response.write_eof()
        return response

    # --- calls --------------------------------------------------------------------------------
    async def _host(self, name: str, namespace: str) -> str | None:
        cached = self._hosts.get((namespace, name))
        now = time.monotonic()
        if cached and now - cached[0] < 5:
            return cached[1]
        try:
            service = await self.client.get(SERVICES, namespace, name)
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        url = (service.get("status") or {}).get("url")
        if not url:
            return None
        host = urlsplit(str(url)).netloc
        self._hosts[(namespace, name)] = (now, host)
        return host

    async def call(self, request: web.Request) -> web.StreamResponse:
        return await self._forward(request, asynchronous=False)

    async def call_async(self, request: web.Request) -> web.StreamResponse:
        return await self._forward(request, asynchronous=True)

    async def _forward(self, request: web.Request, *, asynchronous: bool) -> web.StreamResponse:
        name, namespace = split_function_name(request.match_info["name"], self.settings.default_namespace)
        host = await self._host(name, namespace)
        if host is None:
            return _error(404, f"error finding function {name}.{namespace}: not found")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Host"] = host
        headers["X-Forwarded-Host"] = request.host
        if asynchronous:
            headers["Prefer"] = "respond-async"
        path = "/" + request.match_info.get("path", "")
        target = self.settings.ingress.rstrip("/") + path + (f"?{request.query_string}" if request.query_string else "")
        body = await request.read()
        self.metrics.started.labels(function_name=f"{name}.{namespace}").inc()
        started = time.monotonic()
        try:
            async with self.session().request(request.method, target, headers=headers, data=body,
                                              allow_redirects=False) as upstream:
                payload = await upstream.read()
                status = upstream.status
                answer_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
        except aiohttp.ClientError as error:
            return _error(502, f"Can't reach service for: {name}.{namespace} ({error})")
        code = str(status)
        self.metrics.invocations.labels(function_name=f"{name}.{namespace}", code=code).inc()
        self.metrics.seconds.labels(function_name=f"{name}.{namespace}", code=code).observe(time.monotonic() - started)
        if asynchronous and status == 202:
            call_id = answer_headers.get("X-Call-Id", "")
            if call_id:
                answer_headers["X-Call-Id"] = call_id
        return web.Response(status=status, body=payload, headers=answer_headers)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": "text/plain"})


def parse_log_line(line: str, *, name: str, namespace: str) -> dict[str, str]:
    """``[pod/<pod>/<container>] <RFC3339 time> <text>`` (kubectl --prefix --timestamps) as
    OpenFaaS's log message."""
    instance = ""
    if line.startswith("[") and "] " in line:
        prefix, line = line[1:].split("] ", 1)
        parts = prefix.split("/")
        instance = parts[1] if len(parts) > 1 else prefix
    timestamp, _, text = line.partition(" ")
    if not TIMESTAMP.match(timestamp):  # a node that does not stamp its log lines: now will do
        timestamp, text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), line
    return {"name": name, "namespace": namespace, "instance": instance, "timestamp": timestamp, "text": text}


def make_app(gateway: Gateway) -> web.Application:
    app = web.Application(middlewares=[gateway.auth], client_max_size=64 << 20)
    app.router.add_get("/healthz", gateway.healthz)
    app.router.add_get("/metrics", gateway.prometheus)
    app.router.add_get("/system/functions", gateway.list_functions)
    app.router.add_post("/system/functions", gateway.deploy)
    app.router.add_put("/system/functions", gateway.deploy)
    app.router.add_delete("/system/functions", gateway.delete)
    app.router.add_get("/system/function/{name}", gateway.get_function)
    app.router.add_post("/system/scale-function/{name}", gateway.scale)
    app.router.add_get("/system/namespaces", gateway.namespaces)
    app.router.add_get("/system/info", gateway.info)
    app.router.add_get("/system/logs", gateway.logs)
    for prefix, handler in (("/function", gateway.call), ("/async-function", gateway.call_async)):
        app.router.add_route("*", prefix + "/{name}", handler)
        app.router.add_route("*", prefix + "/{name}/{path:.*}", handler)

    async def close(app: web.Application) -> None:
        await gateway.close()

    app.on_cleanup.append(close)
    return app


__all__ = ["Credentials", "Gateway", "GatewaySettings", "FUNCTION_LABEL", "make_app", "parse_log_line"]
