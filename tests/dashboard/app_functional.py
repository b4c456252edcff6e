"""The dashboard's server on a real socket, over a fake API server and a fake ingress on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dashboard.app import Dashboard, DashboardSettings, make_app
from dashboard.invoke import Ingress
from dashboard.metrics import FakeMetrics
from dashboard.queue import Backlog, FakeQueue
from knserve.clock import SystemClock
from knserve.request_metrics import SecondSample
from kube.errors import Invalid
from kube.fake import FakeKubeClient
from kube.resources import EVENTS, REVISIONS, SERVICES
from tests.dashboard.factories import entry, revision, service

HX = {"HX-Request": "true"}


class FakeIngress:
    """Answers like the ingress: echoes what it got; dead letters for one host."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append((request.method, request.path_qs, dict(request.headers), body))
        if request.path == "/.well-known/knserve/calls":
            return web.json_response({"items": [{"id": "c-1", "state": "dead", "method": "POST", "path": "/x",
                                                 "attempts": 3, "lastStatus": 500}]})
        return web.Response(status=201, text=f"got {request.method} {request.path_qs} {body.decode()}",
                            headers={"X-Answer": "yes"})


async def started(edits: bool, kube: FakeKubeClient, metrics: FakeMetrics,
                  queue: FakeQueue | None = None) -> AsyncIterator[tuple[TestClient, FakeIngress]]:
    fake_ingress = FakeIngress()
    ingress_app = web.Application()
    ingress_app.router.add_route("*", "/{tail:.*}", fake_ingress.handle)
    ingress_server = TestServer(ingress_app, host="127.0.0.1")
    await ingress_server.start_server()
    async with aiohttp.ClientSession() as session:
        clock = SystemClock()
        dashboard = Dashboard(kube, metrics, Ingress(str(ingress_server.make_url("")), session, clock), clock,
                              DashboardSettings(edits=edits, stream_interval=0.05, chart_seconds=60), queue=queue)
        client = TestClient(TestServer(make_app(dashboard), host="127.0.0.1"))
        await client.start_server()
        try:
            for _ in range(100):
                if (await client.get("/healthz")).status == 200:
                    break
                await asyncio.sleep(0.02)
            yield client, fake_ingress
        finally:
            await client.close()
            await ingress_server.close()


def seeded() -> FakeKubeClient:
    kube = FakeKubeClient()
    kube.seed(SERVICES, service("hello", latest="hello-2", traffic=[{"latestRevision": True, "percent": 100}],
                                status_traffic=[{"revisionName": "hello-2", "latestRevision": True, "percent": 100}]))
    kube.seed(SERVICES, service("other", "team", ready="False", reason="RevisionFailed"))
    kube.seed(REVISIONS, revision("hello-1", created="2026-01-01T00:00:00Z"))
    kube.seed(REVISIONS, revision("hello-2", created="2026-01-01T00:01:00Z"))
    kube.seed(EVENTS, {"metadata": {"name": "e1", "namespace": "default"}, "type": "Warning", "reason": "Boom",
                       "message": "something broke", "involvedObject": {"kind": "Revision", "name": "hello-1"},
                       "lastTimestamp": "2026-01-01T00:02:00Z"})
    return kube


@pytest.fixture
async def edits_on() -> AsyncIterator[tuple[TestClient, FakeIngress, FakeKubeClient, FakeMetrics]]:
    kube, metrics = seeded(), FakeMetrics()
    async for client, ingress in started(True, kube, metrics):
        yield client, ingress, kube, metrics


async def test_the_list_shows_url_readiness_and_no_data_without_metrics(edits_on):
    client, _, _, _ = edits_on
    page = await (await client.get("/services?namespace=")).text()
    assert "http://hello.default.example.com" in page and "http://other.team.example.com" in page
    assert "RevisionFailed" in page
    assert "no data: the autoscaler's request metrics API did not answer" in page
    only = await (await client.get("/services/rows?namespace=default&q=HEL")).text()
    assert "hello" in only and "other.team" not in only


async def test_the_list_shows_requests_when_the_metrics_api_answers(edits_on):
    client, _, _, metrics = edits_on
    metrics.answers["default"] = {"hello-2": entry("hello-2", requests=150, errors=15, p50=4, p99=80)}
    rows = await (await client.get("/services/rows?namespace=default")).text()
    assert "2.50" in rows and "10.0%" in rows and "80 ms" in rows
    assert ("default", 60.0, False) in metrics.asked


async def test_the_service_page_shows_revisions_events_and_dead_calls(edits_on):
    client, _, _, _ = edits_on
    page = await (await client.get("/services/default/hello")).text()
    assert 'data-revision="hello-1"' in page and 'data-revision="hello-2"' in page
    assert "something broke" in page
    assert "c-1" in page
    assert "No canary analysis" in page
    assert (await client.get("/services/default/nobody")).status == 404


async def test_the_service_page_shows_queued_calls_when_the_queue_publishes_them():
    queue = FakeQueue({("default", "hello"): Backlog(depth=7, oldest_age_seconds=42.4)})
    async for client, _ in started(False, seeded(), FakeMetrics(), queue):
        page = await (await client.get("/services/default/hello")).text()
        assert "Queued: <strong>7</strong>" in page and "oldest 42 s" in page
    async for client, _ in started(False, seeded(), FakeMetrics(), FakeQueue(None)):
        page = await (await client.get("/services/default/hello")).text()
        assert "Queued: no data" in page


async def test_the_editor_patches_spec_traffic_as_kubectl_patch_would(edits_on):
    client, _, kube, _ = edits_on
    form = {"revision-0": "hello-1", "percent-0": "50", "revision-1": "hello-2", "percent-1": "50", "tag-1": "v2"}
    answer = await client.post("/services/default/hello/traffic", data=form, headers=HX)
    assert answer.status == 200, await answer.text()
    assert kube.writes("patch", SERVICES)[-1].object == {"spec": {"traffic": [
        {"revisionName": "hello-1", "latestRevision": False, "percent": 50},
        {"revisionName": "hello-2", "latestRevision": False, "percent": 50, "tag": "v2"}]}}
    assert kube.peek(SERVICES, "default", "hello")["spec"]["traffic"][1]["tag"] == "v2"


async def test_a_refusal_shows_the_api_servers_message_and_changes_nothing(edits_on):
    client, _, kube, _ = edits_on
    message = 'admission webhook "validation.webhook.serving.knative.dev" denied the request: Traffic targets sum to 60, want 100: spec.traffic'
    kube.fail_on("patch", SERVICES, Invalid(422, "Invalid", message))
    before = kube.peek(SERVICES, "default", "hello")
    answer = await client.post("/services/default/hello/traffic", headers=HX,
                               data={"revision-0": "hello-1", "percent-0": "60"})
    assert answer.status == 422
    assert message in (await answer.text()).replace("&#34;", '"')
    assert kube.peek(SERVICES, "default", "hello") == before


async def test_rollback_sends_all_traffic_to_a_ready_revision(edits_on):
    client, _, kube, _ = edits_on
    answer = await client.post("/services/default/hello/rollback", data={"revision": "hello-1"}, headers=HX)
    assert answer.status == 200 and answer.headers["HX-Trigger"] == "applied"
    assert kube.peek(SERVICES, "default", "hello")["spec"]["traffic"] == [
        {"revisionName": "hello-1", "latestRevision": False, "percent": 100}]
    refused = await client.post("/services/default/hello/rollback", data={"revision": "nope"}, headers=HX)
    assert refused.status == 400 and "nope is not a ready revision" in await refused.text()


async def test_invoke_goes_through_the_ingress_with_the_services_host(edits_on):
    client, ingress, _, _ = edits_on
    answer = await client.post("/services/default/hello/invoke", headers=HX, data={
        "method": "POST", "path": "/run?x=1", "headers": "X-Test: 1", "body": "payload", "async": "on"})
    text = await answer.text()
    assert answer.status == 200 and "201 Created" in text and "got POST /run?x=1 payload" in text
    assert "X-Answer: yes" in text
    method, path, headers, body = ingress.seen[-1]
    assert (method, path, body) == ("POST", "/run?x=1", b"payload")
    assert headers["Host"] == "hello.default.example.com" and headers["Prefer"] == "respond-async"
    assert headers["X-Test"] == "1"


async def test_actions_need_the_pages_htmx_header(edits_on):
    client, _, kube, _ = edits_on
    answer = await client.post("/services/default/hello/rollback", data={"revision": "hello-1"})
    assert answer.status == 403 and not kube.writes("patch")


async def test_with_edits_off_nothing_changes():
    kube, metrics = seeded(), FakeMetrics()
    async for client, ingress in started(False, kube, metrics):
        page = await (await client.get("/services/default/hello")).text()
        assert "Edits are off" in page and "traffic-editor" not in page
        for path, form in (("traffic", {"revision-0": "hello-1", "percent-0": "100"}),
                           ("rollback", {"revision": "hello-1"}), ("invoke", {"path": "/"})):
            answer = await client.post(f"/services/default/hello/{path}", data=form, headers=HX)
            assert answer.status == 403 and "--edits" in await answer.text()
        assert not kube.writes("patch") and not [seen for seen in ingress.seen if seen[1] != "/.well-known/knserve/calls?state=dead"]


async def test_the_stream_sends_chart_frames_with_the_revisions_series(edits_on):
    client, _, _, metrics = edits_on
    second = float(int(time.time()) - 2)  # the frame's axis comes from the wall clock
    metrics.answers["default"] = {"hello-2": entry("hello-2", series=(
        SecondSample(t=second, requests=7, errors=0, p50_ms=1, p99_ms=2, concurrency=1),))}
    async with client.get("/services/default/hello/stream") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        line = b""
        while not line.startswith(b"data: "):
            line = await response.content.readline()
    frame = json.loads(line[len(b"data: "):])
    assert frame["revisions"] == ["hello-1", "hello-2"]
    assert 7 in frame["charts"]["requests"]["hello-2"] and set(frame["charts"]["requests"]["hello-1"]) == {None}
    assert ("default", 60, True) in metrics.asked
