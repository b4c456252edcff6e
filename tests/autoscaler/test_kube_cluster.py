"""The autoscaler's Kubernetes boundaries on kube's fake API server."""

from __future__ import annotations

import asyncio
from typing import Any

from autoscaler.kube import FakeCluster
from autoscaler.kube_cluster import KubeCluster
from autoscaler.scraper import StatsFetcher
from autoscaler.service import AutoscalerService
from knserve.clock import FakeClock
from knserve.stats_wire import RevisionStat, Stat
from kube.fake import FakeKubeClient
from kube.resources import CONFIGMAPS, DEPLOYMENTS, PODAUTOSCALERS, PODS
from serving.config.autoscaler import AutoscalerConfig
from tests.support.factories import pod, pod_autoscaler, pod_ready, with_status

NS, REV = "default", "hello-00001"
DEPLOYMENT = f"{REV}-deployment"


def cluster_objects(replicas: int) -> FakeKubeClient:
    return FakeKubeClient([
        (DEPLOYMENTS, {"metadata": {"name": DEPLOYMENT, "namespace": NS}, "spec": {"replicas": replicas}}),
        (PODS, pod("a", with_status(podIP="127.0.0.2"), pod_ready(True))),
        (PODS, pod("b", with_status(podIP="127.0.0.3"), pod_ready(False))),
        (PODS, pod("other", with_status(podIP="127.0.0.4"), pod_ready(True), revision="other-00001")),
    ])


async def test_reads_pods_and_replicas_and_writes_scale_and_status() -> None:
    client = cluster_objects(2)
    client.seed(PODAUTOSCALERS, pod_autoscaler(REV))
    cluster = KubeCluster(client)
    events = cluster.events()
    kind, obj = await asyncio.wait_for(anext(events), 5)
    assert (kind, obj["metadata"]["name"]) == ("ADDED", REV)

    pods = await cluster.list_pods(NS, REV)
    assert sorted((p.name, p.ip, p.ready) for p in pods) == [("a", "127.0.0.2", True), ("b", "127.0.0.3", False)]
    assert pods[0].start_time > 0
    assert await cluster.get_replicas(NS, DEPLOYMENT) == 2
    assert await cluster.get_replicas(NS, "missing") is None

    await cluster.set_replicas(NS, DEPLOYMENT, 5)
    assert client.peek(DEPLOYMENTS, NS, DEPLOYMENT)["spec"]["replicas"] == 5  # type: ignore[index]
    await cluster.write_status(NS, REV, {"desiredScale": 5, "conditions": []})
    assert client.peek(PODAUTOSCALERS, NS, REV)["status"]["desiredScale"] == 5  # type: ignore[index]
    await events.aclose()


async def test_replicas_come_from_the_deployment_cache_and_a_scale_write_counts_at_once() -> None:
    client = FakeKubeClient([
        (DEPLOYMENTS, {"metadata": {"name": DEPLOYMENT, "namespace": NS,
                                    "labels": {"serving.knative.dev/revision": REV}}, "spec": {"replicas": 0}}),
    ])
    client.seed(PODAUTOSCALERS, pod_autoscaler(REV))
    cluster = KubeCluster(client)
    events = cluster.events()
    await asyncio.wait_for(anext(events), 5)
    client.fail_on("get", DEPLOYMENTS, RuntimeError("replicas were read from the API"), times=100)
    try:
        assert await cluster.get_replicas(NS, DEPLOYMENT) == 0
        await cluster.set_replicas(NS, DEPLOYMENT, 1)
        assert await cluster.get_replicas(NS, DEPLOYMENT) == 1  # whether or not the watch brought it yet
        # Someone else scales the Deployment: the cache follows.
        await client.patch(DEPLOYMENTS, NS, DEPLOYMENT, {"spec": {"replicas": 4}}, subresource="scale")
        async with asyncio.timeout(5):
            while await cluster.get_replicas(NS, DEPLOYMENT) != 4:
                await asyncio.sleep(0.01)
    finally:
        await events.aclose()


async def test_a_scale_write_and_the_status_go_out_together() -> None:
    """The PodAutoscaler's desiredScale never waits for the /scale write to come back."""
    scale_write_done = asyncio.Event()
    seen: list[str] = []

    class SlowScale(FakeCluster):
        async def set_replicas(self, namespace: str, deployment: str, replicas: int) -> None:
            seen.append("scale sent")
            await scale_write_done.wait()
            await super().set_replicas(namespace, deployment, replicas)

        async def write_status(self, namespace: str, name: str, status: Any) -> None:
            seen.append("status sent")
            scale_write_done.set()
            await super().write_status(namespace, name, status)

    cluster = SlowScale()
    cluster.replicas[(NS, DEPLOYMENT)] = 0
    cluster.apply(pod_autoscaler(REV, with_status(desiredScale=0, conditions=[
        {"type": "Active", "status": "False", "reason": "NoTraffic", "lastTransitionTime": "2020-01-01T00:00:00Z"},
        {"type": "ActivatorInPath", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
    ])))
    clock = FakeClock(2_000_000_000.0)
    service = AutoscalerService(watch=cluster, pods=cluster, scale=cluster, status=cluster, fetcher=NoStats(),
                                clock=clock)
    kind, obj = await anext(cluster.events())
    await service.handle_event(kind, obj)
    await service.reconcile((NS, REV))
    service.record([RevisionStat(NS, REV, Stat("activator", 1.0, request_count=1.0))])
    await service.tick((NS, REV))
    await asyncio.wait_for(service.reconcile((NS, REV)), 5)
    assert seen[-2:] == ["scale sent", "status sent"]
    assert cluster.replicas[(NS, DEPLOYMENT)] == 1
    assert cluster.status_writes[-1][2]["desiredScale"] == 1


class NoStats:
    async def fetch(self, ip: str) -> Stat:
        return Stat(ip, 0.0)


async def test_the_service_scales_a_revision_from_zero_through_the_api() -> None:
    client = FakeKubeClient([
        (DEPLOYMENTS, {"metadata": {"name": DEPLOYMENT, "namespace": NS}, "spec": {"replicas": 0}}),
        (PODAUTOSCALERS, pod_autoscaler(REV, with_status(desiredScale=0, conditions=[
            {"type": "Active", "status": "False", "reason": "NoTraffic", "lastTransitionTime": "2020-01-01T00:00:00Z"},
            {"type": "ActivatorInPath", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
        ]))),
    ])
    fetcher: StatsFetcher = NoStats()
    cluster = KubeCluster(client)
    service = AutoscalerService(watch=cluster, pods=cluster, scale=cluster, status=cluster, fetcher=fetcher,
                                clock=FakeClock(2_000_000_000.0))
    run = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(5):
            while (NS, REV) not in service.revisions:
                await asyncio.sleep(0.01)
        service.record([RevisionStat(NS, REV, Stat("activator", 1.0, request_count=1.0))])
        async with asyncio.timeout(5):
            while client.peek(DEPLOYMENTS, NS, DEPLOYMENT)["spec"]["replicas"] != 1:  # type: ignore[index]
                await asyncio.sleep(0.01)
        async with asyncio.timeout(5):
            while (client.peek(PODAUTOSCALERS, NS, REV) or {}).get("status", {}).get("desiredScale") != 1:
                await asyncio.sleep(0.01)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def test_config_autoscaler_changes_are_applied_and_bad_ones_ignored() -> None:
    client = FakeKubeClient([
        (CONFIGMAPS, {"metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
                      "data": {"stable-window": "30s"}}),
        (CONFIGMAPS, {"metadata": {"name": "config-network", "namespace": "knative-serving"}, "data": {}}),
    ])
    seen: list[AutoscalerConfig] = []
    arrived = asyncio.Event()

    def apply(config: AutoscalerConfig) -> None:
        seen.append(config)
        arrived.set()

    watch = asyncio.create_task(KubeCluster(client).watch_config(apply))
    try:
        await asyncio.wait_for(arrived.wait(), 5)
        assert [c.stable_window_seconds for c in seen] == [30.0]
        current = client.peek(CONFIGMAPS, "knative-serving", "config-autoscaler")
        assert current is not None
        arrived.clear()
        await client.update(CONFIGMAPS, current | {"data": {"stable-window": "1s"}})  # refused: below 6s
        current = client.peek(CONFIGMAPS, "knative-serving", "config-autoscaler")
        assert current is not None
        await client.update(CONFIGMAPS, current | {"data": {"stable-window": "45s"}})
        await asyncio.wait_for(arrived.wait(), 5)
        assert [c.stable_window_seconds for c in seen] == [30.0, 45.0]
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
