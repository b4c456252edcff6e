"""The autoscaler on real sockets: the activator's pushes over HTTP, queue-proxy stats scraped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from autoscaler.kube import FakeCluster, PodInfo
from autoscaler.scraper import HttpStatsFetcher
from autoscaler.server import metrics_app, stats_app
from autoscaler.service import AutoscalerService
from knserve.stats_wire import RevisionStat, Stat, encode_stat_batch
from tests.support.factories import pod_autoscaler, with_status

NS, REV = "default", "hello-00001"
DEPLOYMENT = f"{REV}-deployment"
LONG_AGO = "2020-01-01T00:00:00Z"


class QueueProxyStats:
    """Fake queue-proxies: one stats endpoint per pod IP, all on loopback."""

    def __init__(self) -> None:
        self.concurrency: dict[str, float] = {}
        self.ports: dict[str, int] = {}
        self.runners: list[web.AppRunner] = []

    async def add(self, ip: str, concurrency: float) -> None:
        self.concurrency[ip] = concurrency

        async def stats(request: web.Request) -> web.Response:
            return web.json_response(Stat(ip, self.concurrency[ip], request_count=self.concurrency[ip]).to_json())

        app = web.Application()
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners.append(runner)
        self.ports[ip] = int(runner.addresses[0][1])

    def url_for(self, ip: str) -> str:
        return f"http://127.0.0.1:{self.ports[ip]}/stats"


class Harness:
    def __init__(self, service: AutoscalerService, cluster: FakeCluster, url: str, metrics_url: str,
                 client: aiohttp.ClientSession, pods: QueueProxyStats) -> None:
        self.service, self.cluster, self.url, self.metrics_url = service, cluster, url, metrics_url
        self.client, self.pods = client, pods

    async def wait_for_scale(self, replicas: int, *, timeout: float) -> float:
        started = time.monotonic()
        async with asyncio.timeout(timeout):
            while (NS, DEPLOYMENT, replicas) not in self.cluster.scale_writes:
                await asyncio.sleep(0.01)
        return time.monotonic() - started


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    cluster, pods = FakeCluster(), QueueProxyStats()
    client = aiohttp.ClientSession()
    service = AutoscalerService(
        watch=cluster, pods=cluster, scale=cluster, status=cluster,
        fetcher=HttpStatsFetcher(client, url_for=pods.url_for),
    )  # Knative's cadence: a scrape every second, a decision every two
    runners = []
    for app in (stats_app(service), metrics_app(service)):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
    run = asyncio.create_task(service.run())
    url = f"http://127.0.0.1:{runners[0].addresses[0][1]}"
    metrics_url = f"http://127.0.0.1:{runners[1].addresses[0][1]}/metrics"
    try:
        yield Harness(service, cluster, url, metrics_url, client, pods)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        for runner in runners + pods.runners:
            await runner.cleanup()
        await client.close()


async def test_a_request_at_zero_scales_up_at_once_not_at_the_next_tick(harness: Harness) -> None:
    harness.cluster.replicas[(NS, DEPLOYMENT)] = 0
    harness.cluster.apply(pod_autoscaler(REV, with_status(desiredScale=0, conditions=[
            {"type": "Active", "status": "False", "reason": "NoTraffic", "lastTransitionTime": LONG_AGO},
            {"type": "ActivatorInPath", "status": "True", "reason": "ScaledToZero", "lastTransitionTime": LONG_AGO},
        ])))
    await asyncio.sleep(0.3)  # the PodAutoscaler is picked up
    assert harness.cluster.scale_writes == []
    body = encode_stat_batch([RevisionStat(NS, REV, Stat("activator-0", 1.0, request_count=1.0))])
    async with harness.client.post(harness.url + "/stats", data=body) as response:
        assert response.status == 202
    took = await harness.wait_for_scale(1, timeout=3.0)
    assert took < 0.5  # the poke, not the 2 s tick
    status = harness.cluster.pod_autoscalers[(NS, REV)]["status"]
    active = next(c for c in status["conditions"] if c["type"] == "Active")
    assert (active["status"], active["reason"]) == ("Unknown", "Queued")
    assert status["desiredScale"] == 1


async def test_scraped_load_scales_out(harness: Harness) -> None:
    ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    for ip in ips:
        await harness.pods.add(ip, 100.0)
    started = time.time() - 600
    harness.cluster.set_pods(NS, REV, [PodInfo(f"pod-{ip}", ip, ready=True, start_time=started) for ip in ips])
    harness.cluster.replicas[(NS, DEPLOYMENT)] = 3
    harness.cluster.apply(pod_autoscaler(REV))
    await harness.wait_for_scale(5, timeout=6.0)  # 300 concurrent / 70 per pod
    async with harness.client.get(harness.metrics_url) as response:
        text = await response.text()
    assert 'autoscaler_desired_pods{namespace_name="default",revision_name="hello-00001"} 5.0' in text
    assert 'autoscaler_stable_request_concurrency{namespace_name="default",revision_name="hello-00001"} 300.0' in text


async def test_a_malformed_push_is_refused_with_a_sentence(harness: Harness) -> None:
    async with harness.client.post(harness.url + "/stats", data=b'{"stats": [{"namespace": "x"}]}') as response:
        assert response.status == 400
        assert "stats[0].revision" in await response.text()
    async with harness.client.get(harness.url + "/healthz") as response:
        assert response.status == 200
