"""The whole controller in-process on the fake API server: chains of reconcilers, ConfigMap
changes taking effect without a restart, and Route deletion leaving the ingress model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kube.events import RecordingEvents
from kube.fake import FakeKubeClient
from kube.resources import CONFIGMAPS, DEPLOYMENTS, ENDPOINT_SLICES, ROUTES, SERVICES
from serving.app import ControllerApp
from serving.reconciler.route.ingress_state import LatestModelSink
from tests.support.eventually import eventually_async
from tests.support.factories import service


class Running:
    def __init__(self, fake: FakeKubeClient, sink: LatestModelSink) -> None:
        self.fake, self.sink = fake, sink


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    fake = FakeKubeClient()
    sink = LatestModelSink()
    app = ControllerApp(fake, events=RecordingEvents(), ingress_sink=sink, watch_timeout_seconds=30, workers=2)
    task = asyncio.create_task(app.run())
    await app.started.wait()
    try:
        yield Running(fake, sink)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def status_field(fake: FakeKubeClient, resource: Any, name: str, field: str) -> Any:
    found = fake.peek(resource, "default", name)
    return ((found or {}).get("status") or {}).get(field)


async def make_ready(running: Running, name: str = "hello") -> None:
    fake = running.fake
    deployment = await eventually_async(lambda: fake.peek(DEPLOYMENTS, "default", f"{name}-00001-deployment"),
                                     what="the Deployment", timeout=10.0)
    deployment["status"] = {"availableReplicas": 1, "readyReplicas": 1, "conditions": [
        {"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}]}
    await fake.update_status(DEPLOYMENTS, deployment)
    await fake.create(ENDPOINT_SLICES, {"metadata": {
        "name": f"{name}-00001-a", "namespace": "default",
        "labels": {"kubernetes.io/service-name": f"{name}-00001", "serving.knative.dev/revision": f"{name}-00001"}},
        "endpoints": [{"addresses": ["10.0.0.9"], "conditions": {"ready": True}}]})


async def test_service_becomes_ready_and_reaches_the_ingress(running: Running) -> None:
    await running.fake.create(SERVICES, service("hello"))
    await make_ready(running)

    def ready() -> bool:
        conditions = status_field(running.fake, SERVICES, "hello", "conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    await eventually_async(ready, what="the Service Ready", timeout=10.0)
    model = await running.sink.wait_for(lambda m: any(b.endpoints for b in m.backends))
    assert [endpoint.host for endpoint in model.backends[0].endpoints] == ["10.0.0.9"]


async def test_config_domain_change_takes_effect_without_a_restart(running: Running) -> None:
    await running.fake.create(SERVICES, service("hello"))
    await eventually_async(lambda: status_field(running.fake, ROUTES, "hello", "url") == "http://hello.default.example.com",
                        what="the first URL", timeout=10.0)
    await running.fake.create(CONFIGMAPS, {"metadata": {"name": "config-domain", "namespace": "knative-serving"},
                                           "data": {"example.org": ""}})
    await eventually_async(lambda: status_field(running.fake, SERVICES, "hello", "url") == "http://hello.default.example.org",
                        what="the new URL on the Service", timeout=10.0)


async def test_bad_configmap_value_keeps_the_previous_configuration(running: Running) -> None:
    await running.fake.create(CONFIGMAPS, {"metadata": {"name": "config-deployment", "namespace": "knative-serving"},
                                           "data": {"progress-deadline": "-5s"}})
    await running.fake.create(SERVICES, service("hello"))
    deployment = await eventually_async(lambda: running.fake.peek(DEPLOYMENTS, "default", "hello-00001-deployment"),
                                     what="the Deployment", timeout=10.0)
    assert deployment["spec"]["progressDeadlineSeconds"] == 600


async def test_deleting_a_route_removes_its_rules(running: Running) -> None:
    await running.fake.create(SERVICES, service("hello"))
    await make_ready(running)
    await running.sink.wait_for(lambda m: bool(m.rules))
    await running.fake.delete(ROUTES, "default", "hello")
    model = await running.sink.wait_for(lambda m: not m.rules)
    assert model.backends == ()
