"""The webhook's aiohttp application and an HTTPS server for it.

``make_app(config)`` serves ``POST /defaulting`` and ``POST /resource-validation``
(AdmissionReview v1) and ``GET /healthz`` (503 while ``ready()`` says no: before the
configuration is read, and while a stopping process drains); ``config`` is a zero-argument
callable returning the current ``ConfigSnapshot``, read once per request. With ``client``, a
Service or Configuration that validation allows also has its Pod dry-run against the API
server when ``config-features`` asks for it (``serving.webhook.dryrun``). ``WebhookServer`` binds the app with
TLS (the API server only calls webhooks over HTTPS); its process owns its lifetime.
Side effects: listens on a socket while started.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from kube.client import KubeClient
from serving.config.snapshot import ConfigSnapshot
from serving.webhook.dryrun import check_pod, dry_run_pod
from serving.webhook.review import DEFAULTING_PATH, VALIDATION_PATH, admit, denied

log = logging.getLogger(__name__)
ConfigSource = Callable[[], ConfigSnapshot]


def make_app(
    config: ConfigSource, ready: Callable[[], bool] = lambda: True, client: KubeClient | None = None
) -> web.Application:
    async def review(request: web.Request, *, mutate: bool) -> web.Response:
        try:
            body: Any = await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "the body is not an AdmissionReview (JSON)"}, status=400)
        if not isinstance(body, dict) or body.get("kind") != "AdmissionReview" or not isinstance(body.get("request"), dict):
            return web.json_response({"error": "expected an admission.k8s.io/v1 AdmissionReview with a request"}, status=400)
        snapshot = config()
        answer = admit(body, snapshot, mutate=mutate)
        if not mutate and client is not None and answer["response"]["allowed"]:
            found = dry_run_pod(body, snapshot)
            if found is not None:
                problem = await check_pod(client, *found)
                if problem is not None:
                    answer = denied(body, f"validation failed: {problem}")
        result = answer["response"]
        req = body["request"]
        log.info(
            "admission %s",
            "defaulted" if mutate else ("allowed" if result["allowed"] else "denied"),
            extra={"key": f"{req.get('namespace', '')}/{req.get('name', '')}", "kind": (req.get("kind") or {}).get("kind"),
                   "operation": req.get("operation")},
        )
        return web.json_response(answer)

    async def defaulting(request: web.Request) -> web.Response:
        return await review(request, mutate=True)

    async def validation(request: web.Request) -> web.Response:
        return await review(request, mutate=False)

    async def healthz(_: web.Request) -> web.Response:
        if not ready():
            return web.Response(status=503, text="not ready")
        return web.Response(text="ok")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post(DEFAULTING_PATH, defaulting)
    app.router.add_post(VALIDATION_PATH, validation)
    app.router.add_get("/healthz", healthz)
    return app


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class WebhookServer:
    """Serves ``make_app(config)`` on ``host:port`` with TLS until ``stop``."""

    def __init__(self, config: ConfigSource, *, host: str, port: int, ssl_context: ssl.SSLContext | None,
                 ready: Callable[[], bool] = lambda: True, client: KubeClient | None = None) -> None:
        self._app = make_app(config, ready, client)
        self._host = host
        self._port = port
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started with port 0)."""
        if self._runner is None or not self._runner.addresses:
            return self._port
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl_context)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
