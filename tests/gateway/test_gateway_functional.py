"""The gateway's HTTP API on a real socket, over the in-memory API server and a stand-in ingress."""

from __future__ import annotations

import base64
import json
import re

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import Credentials, Gateway, GatewaySettings, make_app, parse_log_line
from gateway.auth import SECRET_NAME, ensure_credentials
from kube.fake import FakeKubeClient
from kube.resources import NAMESPACES, REVISIONS, SECRETS, SERVICES

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()}


@pytest.fixture
async def ingress():
    """Answers as a function would, echoing what reached it (Host, method, path, Prefer)."""
    seen: list[dict[str, str]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append({"host": request.host, "method": request.method, "path": request.path_qs,
                     "prefer": request.headers.get("Prefer", ""), "body": (await request.read()).decode(),
                     "callback": request.headers.get("X-Callback-Url", "")})
        if request.headers.get("Prefer") == "respond-async":
            return web.Response(status=202, headers={"X-Call-Id": "call-1"})
        return web.json_response({"tax": 4.7}, headers={"X-From": "function"})

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", answer)
    server = TestServer(app)
    await server.start_server()
    server.seen = seen  # type: ignore[attr-defined]
    yield server
    await server.close()


@pytest.fixture
async def gateway(ingress):
    kube = FakeKubeClient()
    kube.seed(NAMESPACES, {"metadata": {"name": "default"}})
    kube.seed(NAMESPACES, {"metadata": {"name": "shop"}})
    kube.seed(NAMESPACES, {"metadata": {"name": "kube-system"}})
    settings = GatewaySettings(ingress=str(ingress.make_url("/")), credentials=Credentials("admin", "secret"))
    server = TestServer(make_app(Gateway(kube, settings)))
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
        session.kube = kube  # type: ignore[attr-defined]
        yield session
    await server.close()


async def test_system_needs_basic_auth_and_healthz_does_not(gateway):
    async with gateway.get("/system/functions") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:guess").decode()}
    async with gateway.get("/system/functions", headers=wrong) as response:
        assert response.status == 401
    async with gateway.get("/healthz") as response:
        assert response.status == 200


async def test_deploy_list_describe_scale_delete(gateway):
    deployment = {"service": "tax", "image": "ghcr.io/knative/helloworld-go", "envVars": {"RATE": "0.047"},
                  "labels": {"com.openfaas.scale.max": "4"}}
    async with gateway.post("/system/functions", json=deployment, headers=AUTH) as response:
        assert response.status == 202
    service = gateway.kube.peek(SERVICES, "default", "tax")
    assert service["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "4"

    service["status"] = {"url": "http://tax.default.example.com", "latestReadyRevisionName": "tax-00001"}
    await gateway.kube.update_status(SERVICES, service)
    gateway.kube.seed(REVISIONS, {"metadata": {"name": "tax-00001", "namespace": "default"},
                                  "status": {"desiredReplicas": 1, "actualReplicas": 1}})
    async with gateway.get("/system/functions", headers=AUTH) as response:
        listed = await response.json()
    assert [(f["name"], f["image"], f["replicas"], f["availableReplicas"]) for f in listed] == [
        ("tax", "ghcr.io/knative/helloworld-go", 1, 1)]
    async with gateway.get("/system/function/tax", headers=AUTH) as response:
        assert (await response.json())["envVars"] == {"RATE": "0.047"}
    async with gateway.get("/system/function/nope", headers=AUTH) as response:
        assert response.status == 404

    async with gateway.put("/system/functions", json={**deployment, "image": "ghcr.io/knative/autoscale-go"},
                           headers=AUTH) as response:
        assert response.status == 202
    assert gateway.kube.peek(SERVICES, "default", "tax")["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "ghcr.io/knative/autoscale-go"

    async with gateway.post("/system/scale-function/tax", json={"serviceName": "tax", "replicas": 2},
                            headers=AUTH) as response:
        assert response.status == 202
    annotations = gateway.kube.peek(SERVICES, "default", "tax")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "2"

    async with gateway.delete("/system/functions", json={"functionName": "tax"}, headers=AUTH) as response:
        assert response.status == 202
    assert gateway.kube.peek(SERVICES, "default", "tax") is None
    async with gateway.delete("/system/functions", json={"functionName": "tax"}, headers=AUTH) as response:
        assert response.status == 404


async def test_a_bad_deployment_is_a_400_sentence(gateway):
    async with gateway.post("/system/functions", json={"service": "x"}, headers=AUTH) as response:
        assert response.status == 400
        assert "image is required" in await response.text()


async def test_namespaces_and_info(gateway):
    async with gateway.get("/system/namespaces", headers=AUTH) as response:
        assert await response.json() == ["default", "shop"]
    async with gateway.get("/system/info", headers=AUTH) as response:
        info = await response.json()
    assert info["provider"]["provider"] == "knserve" and info["provider"]["orchestration"] == "kubernetes"


async def _ready_function(gateway, name: str, namespace: str) -> None:
    await gateway.kube.create(SERVICES, {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                         "metadata": {"name": name, "namespace": namespace},
                                         "spec": {"template": {"spec": {"containers": [{"image": "i"}]}}}})
    service = gateway.kube.peek(SERVICES, namespace, name)
    service["status"] = {"url": f"http://{name}.{namespace}.example.com"}
    await gateway.kube.update_status(SERVICES, service)


async def test_function_calls_go_through_the_ingress_by_host(gateway, ingress):
    await _ready_function(gateway, "tax", "shop")
    async with gateway.post("/function/tax.shop/rates?region=eu", data=b'{"subtotal": 100}') as response:
        assert response.status == 200
        assert await response.json() == {"tax": 4.7}
        assert response.headers["X-From"] == "function"
    assert ingress.seen[-1] == {"host": "tax.shop.example.com", "method": "POST", "path": "/rates?region=eu",
                                "prefer": "", "body": '{"subtotal": 100}', "callback": ""}
    async with gateway.get("/function/nothing") as response:
        assert response.status == 404

    async with gateway.get("/metrics") as response:
        text = await response.text()
    assert 'gateway_function_invocation_total{code="200",function_name="tax.shop"} 1.0' in text


async def test_async_calls_go_to_the_queue_with_their_callback(gateway, ingress):
    await _ready_function(gateway, "tax", "default")
    async with gateway.post("/async-function/tax", data=b"{}",
                            headers={"X-Callback-Url": "http://127.0.0.1:9/done"}) as response:
        assert response.status == 202
        assert response.headers["X-Call-Id"] == "call-1"
    assert ingress.seen[-1]["prefer"] == "respond-async"
    assert ingress.seen[-1]["callback"] == "http://127.0.0.1:9/done"


def test_log_lines_without_a_timestamp_get_one_go_can_parse():
    message = parse_log_line("[pod/tax-1/user-container] function: loaded tax", name="tax", namespace="shop")
    assert message["text"] == "function: loaded tax" and message["instance"] == "tax-1"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", message["timestamp"])


def test_log_lines_become_openfaas_messages():
    line = "[pod/tax-00001-deployment-abc/user-container] 2026-01-01T00:00:01.5Z function: loaded tax"
    assert parse_log_line(line, name="tax", namespace="shop") == {
        "name": "tax", "namespace": "shop", "instance": "tax-00001-deployment-abc",
        "timestamp": "2026-01-01T00:00:01.5Z", "text": "function: loaded tax"}


async def test_credentials_are_generated_once_into_the_secret():
    kube = FakeKubeClient()
    first = await ensure_credentials(kube)
    assert first.user == "admin" and len(first.password) >= 24
    secret = kube.peek(SECRETS, "knative-serving", SECRET_NAME)
    assert base64.b64decode(secret["data"]["basic-auth-password"]).decode() == first.password
    assert await ensure_credentials(kube) == first  # a restart reads the same password
    assert json.dumps(secret).count(first.password) == 0  # stored encoded, as Secrets are
