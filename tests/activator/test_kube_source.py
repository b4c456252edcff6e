"""The activator's revision source on kube's fake API server."""

from __future__ import annotations

import asyncio

from activator.kube_source import KubeRevisionSource, endpoints_of
from activator.revisions import Endpoints, RevisionInfo
from kube.fake import FakeKubeClient
from kube.resources import PODS, REVISIONS
from tests.support.eventually import eventually_async
from tests.support.factories import deleting, pod, pod_ready, with_status

NS = "default"


def test_endpoints_are_pods_with_an_ip_split_by_readiness() -> None:
    pods = [
        pod("a", with_status(podIP="127.0.0.2"), pod_ready(True)),
        pod("b", with_status(podIP="127.0.0.3"), pod_ready(False)),
        pod("c", pod_ready(False)),
        # given its address: probed from now on
        pod("d", with_status(podIP="127.0.0.5", phase="Pending"), pod_ready(False)),
        pod("e", with_status(podIP="127.0.0.6"), pod_ready(True), deleting),
        pod("f", with_status(podIP="127.0.0.7", phase="Succeeded"), pod_ready(False)),
        pod("g", with_status(podIP="127.0.0.8", phase="Failed"), pod_ready(False)),
    ]
    assert endpoints_of(pods) == Endpoints(
        frozenset({"127.0.0.2:8012"}), frozenset({"127.0.0.3:8012", "127.0.0.5:8012"}))


class Sink:
    def __init__(self) -> None:
        self.revisions: dict[tuple[str, str], RevisionInfo] = {}
        self.endpoints: dict[tuple[str, str], Endpoints] = {}

    def upsert_revision(self, revision: RevisionInfo) -> None:
        self.revisions[revision.key] = revision

    def delete_revision(self, namespace: str, name: str) -> None:
        self.revisions.pop((namespace, name), None)

    def set_endpoints(self, namespace: str, name: str, endpoints: Endpoints) -> None:
        self.endpoints[(namespace, name)] = endpoints


async def test_revisions_and_pods_flow_into_the_sink() -> None:
    client = FakeKubeClient([
        (REVISIONS, {"metadata": {"name": "hello-00001", "namespace": NS},
                     "spec": {"containerConcurrency": 2, "timeoutSeconds": 30}}),
        (PODS, pod("a", with_status(podIP="127.0.0.2"), pod_ready(False))),
    ])
    sink = Sink()
    task = asyncio.create_task(KubeRevisionSource(client).run(sink))
    try:
        await eventually_async(lambda: (NS, "hello-00001") in sink.revisions and (NS, "hello-00001") in sink.endpoints,
                               what="the revision and its endpoints")
        assert sink.revisions[(NS, "hello-00001")] == RevisionInfo(NS, "hello-00001", 2, 30.0)
        assert sink.endpoints[(NS, "hello-00001")].not_ready == {"127.0.0.2:8012"}
        await client.update_status(PODS, pod("a", with_status(podIP="127.0.0.2"), pod_ready(True)) | {
            "metadata": client.peek(PODS, NS, "a")["metadata"]})  # type: ignore[index]
        await eventually_async(lambda: sink.endpoints[(NS, "hello-00001")].ready == {"127.0.0.2:8012"},
                               what="the pod ready")
        await client.delete(REVISIONS, NS, "hello-00001")
        await eventually_async(lambda: (NS, "hello-00001") not in sink.revisions, what="the revision gone")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
