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
from knserve.request_metrics import RequestSummary, decode_namespace_answer, namespace_path, summary_path
from knserve.stats_wire import LATENCY_BUCKETS_MS, LATENCY_COUNTS_LENGTH, RevisionStat, Stat, encode_stat_batch
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

    async def add(self, ip: str, concurrency: float, *, responses: dict[str, float] | None = None,
                  latency_counts: tuple[float, ...] = ()) -> None:
        self.concurrency[ip] = concurrency

        async def stats(request: web.Request) -> web.Response:
            stat = Stat(ip, self.concurrency[ip], request_count=self.concurrency[ip], responses=responses or {},
                        latency_counts=latency_counts)
            return web.json_response(stat.to_json())

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
    metrics_url = f"http://127.0.0.1:{runners[1].addresses[0][1]}/metrics"  # the API shares its port
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


async def test_the_request_metrics_api_over_http(harness: Harness) -> None:
    counts = [0.0] * LATENCY_COUNTS_LENGTH
    counts[LATENCY_BUCKETS_MS.index(20.0)], counts[LATENCY_BUCKETS_MS.index(600.0)] = 9.0, 1.0
    await harness.pods.add("127.0.0.2", 1.0, responses={"2xx": 9.0, "5xx": 1.0}, latency_counts=tuple(counts))
    harness.cluster.set_pods(NS, REV, [PodInfo("pod-a", "127.0.0.2", ready=True, start_time=time.time() - 600)])
    harness.cluster.replicas[(NS, DEPLOYMENT)] = 1
    started = time.time()
    harness.cluster.apply(pod_autoscaler(REV))
    base = harness.metrics_url.removesuffix("/metrics")

    async def summary() -> RequestSummary:
        path = summary_path(NS, REV, since=started - 5, until=time.time() + 1)
        async with harness.client.get(base + path) as response:
            assert response.status == 200, await response.text()
            return RequestSummary.from_json(await response.json())

    async with asyncio.timeout(10):  # two scrapes, one a second
        while (got := await summary()).covered_seconds < 2:
            await asyncio.sleep(0.2)
    # every second the pod reported 10 responses, one of them a slow 5xx
    assert got.requests == 10 * got.covered_seconds
    assert got.error_rate == 0.1
    assert got.p50_ms is not None and 10.0 < got.p50_ms <= 20.0
    assert got.p99_ms is not None and 500.0 < got.p99_ms <= 600.0

    async with harness.client.get(base + namespace_path(NS, window=60, series=True)) as response:
        assert response.status == 200
        [entry] = decode_namespace_answer(await response.json())
    assert entry.summary.revision == REV and entry.summary.requests >= got.requests
    assert entry.series is not None and len(entry.series) == 60
    assert entry.ready_pods == 1

    async with harness.client.get(base + summary_path(NS, "hello-99999", since=0, until=1)) as response:
        assert response.status == 404
        assert "default/hello-99999" in await response.text()
    async with harness.client.get(base + f"/api/v1/requests/{NS}/{REV}?since=10&until=5") as response:
        assert response.status == 400
        assert await response.text() == "until (5) must be after since (10)\n"
    async with harness.client.get(base + f"/api/v1/requests/{NS}?window=forever") as response:
        assert response.status == 400
        assert "window='forever' is not a number" in await response.text()
    async with harness.client.post(base + summary_path(NS, REV, since=0, until=1)) as response:
        assert response.status == 405  # read-only
