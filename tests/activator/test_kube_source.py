"""The activator's revision source on kube's fake API server."""

from __future__ import annotations

import asyncio
from typing import Any

from activator.kube_source import KubeRevisionSource, endpoints_of
from activator.revisions import Endpoints, RevisionInfo
from kube.fake import FakeKubeClient
from kube.resources import PODS, REVISIONS

NS = "default"


def pod(name: str, ip: str | None, *, ready: bool, revision: str = "hello-00001", phase: str = "Running",
        deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": NS, "labels": {"serving.knative.dev/revision": revision}}
    if deleting:
        metadata["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": metadata, "status": status}


def test_endpoints_are_pods_with_an_ip_split_by_readiness() -> None:
    pods = [
        pod("a", "127.0.0.2", ready=True),
        pod("b", "127.0.0.3", ready=False),
        pod("c", None, ready=False),
        pod("d", "127.0.0.5", ready=False, phase="Pending"),  # given its address: probed from now on
        pod("e", "127.0.0.6", ready=True, deleting=True),
        pod("f", "127.0.0.7", ready=False, phase="Succeeded"),
        pod("g", "127.0.0.8", ready=False, phase="Failed"),
    ]
    assert endpoints_of(pods) == Endpoints(
        frozenset({"127.0.0.2:8012"}), frozenset({"127.0.0.3:8012", "127.0.0.5:8012"}))


class Sink:
    def __init__(self) -> None:
        self.revisions: dict[tuple[str, str], RevisionInfo] = {}
        self.endpoints: dict[tuple[str, str], Endpoints] = {}
        self.changed = asyncio.Event()

    def upsert_revision(self, revision: RevisionInfo) -> None:
        self.revisions[revision.key] = revision
        self.changed.set()

    def delete_revision(self, namespace: str, name: str) -> None:
        self.revisions.pop((namespace, name), None)
        self.changed.set()

    def set_endpoints(self, namespace: str, name: str, endpoints: Endpoints) -> None:
        self.endpoints[(namespace, name)] = endpoints
        self.changed.set()


async def until(condition: Any, sink: Sink) -> None:
    async with asyncio.timeout(5):
        while not condition():
            sink.changed.clear()
            await sink.changed.wait()


async def test_revisions_and_pods_flow_into_the_sink() -> None:
    client = FakeKubeClient([
        (REVISIONS, {"metadata": {"name": "hello-00001", "namespace": NS},
                     "spec": {"containerConcurrency": 2, "timeoutSeconds": 30}}),
        (PODS, pod("a", "127.0.0.2", ready=False)),
    ])
    sink = Sink()
    task = asyncio.create_task(KubeRevisionSource(client).run(sink))
    try:
        await until(lambda: (NS, "hello-00001") in sink.revisions and (NS, "hello-00001") in sink.endpoints, sink)
        assert sink.revisions[(NS, "hello-00001")] == RevisionInfo(NS, "hello-00001", 2, 30.0)
        assert sink.endpoints[(NS, "hello-00001")].not_ready == {"127.0.0.2:8012"}
        await client.update_status(PODS, pod("a", "127.0.0.2", ready=True) | {
            "metadata": client.peek(PODS, NS, "a")["metadata"]})  # type: ignore[index]
        await until(lambda: sink.endpoints[(NS, "hello-00001")].ready == {"127.0.0.2:8012"}, sink)
        await client.delete(REVISIONS, NS, "hello-00001")
        await until(lambda: (NS, "hello-00001") not in sink.revisions, sink)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
