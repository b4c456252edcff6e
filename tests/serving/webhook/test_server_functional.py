"""The webhook server over real HTTPS sockets."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp

from serving.config import ConfigSnapshot
from serving.webhook.review import DEFAULTING_PATH, VALIDATION_PATH
from serving.webhook.server import WebhookServer, server_ssl_context
from tests.serving.webhook.certs import make_certs
from tests.support.factories import service, with_traffic


async def test_serves_admission_reviews_over_tls(tmp_path: Path) -> None:
    cert, key, ca = make_certs(tmp_path)
    server = WebhookServer(lambda: ConfigSnapshot(), host="127.0.0.1", port=0, ssl_context=server_ssl_context(str(cert), str(key)))
    await server.start()
    try:
        client_context = ssl.create_default_context(cadata=ca.decode())
        base = f"https://127.0.0.1:{server.port}"
        bad = service("hello", with_traffic({"latestRevision": True, "percent": 90}))
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "x", "operation": "CREATE", "object": bad,
            "kind": {"group": "serving.knative.dev", "version": "v1", "kind": "Service"}}}
        async with aiohttp.ClientSession() as session:
            async with session.post(base + VALIDATION_PATH, json=body, ssl=client_context) as response:
                answer = await response.json()
            assert answer["response"]["allowed"] is False
            assert answer["response"]["status"]["message"] == "validation failed: Traffic targets sum to 90, want 100: spec.traffic"
            async with session.post(base + DEFAULTING_PATH, json=body, ssl=client_context) as response:
                assert (await response.json())["response"]["patchType"] == "JSONPatch"
            async with session.post(base + VALIDATION_PATH, data=b"not json", ssl=client_context) as response:
                assert response.status == 400
            async with session.get(base + "/healthz", ssl=client_context) as response:
                assert await response.text() == "ok"
    finally:
        await server.stop()
