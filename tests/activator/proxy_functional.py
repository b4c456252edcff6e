"""The activator on real sockets: fake pods, a fake autoscaler, real HTTP in between."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import aiohttp
import pytest

from activator.app import Activator
from activator.backends import Backends
from activator.revisions import Endpoints, RevisionInfo, StaticRevisionSource
from tests.activator.fakes import FakeAutoscaler, FakePod
from tests.support.prometheus import sample_value, samples

NS = "default"


def revision_headers(name: str, host: str = "hello.default.example.com") -> dict[str, str]:
    return {"Knative-Serving-Revision": name, "Knative-Serving-Namespace": NS, "Host": host}


class Harness:
    def __init__(self, activator: Activator, autoscaler: FakeAutoscaler, client: aiohttp.ClientSession) -> None:
        self.activator = activator
        self.autoscaler = autoscaler
        self.client = client
        self.pods: list[FakePod] = []
        host, port = activator.addresses["data"]
        self.url = f"http://{host}:{port}"
        mhost, mport = activator.addresses["metrics"]
        self.metrics_url = f"http://{mhost}:{mport}/metrics"

    @property
    def backends(self) -> Backends:
        assert self.activator.backends is not None
        return self.activator.backends

    async def pod(self, name: str, *, ready: bool = True) -> FakePod:
        pod = await FakePod(name, ready=ready).start()
        self.pods.append(pod)
        return pod

    def revision(self, name: str, *, cc: int = 0, timeout: float = 300.0, start: float = 0.0, idle: float = 0.0) -> None:
        self.backends.upsert_revision(
            RevisionInfo(NS, name, container_concurrency=cc, timeout_seconds=timeout,
                         response_start_timeout_seconds=start, idle_timeout_seconds=idle)
        )

    def endpoints(self, name: str, *, ready: Sequence[FakePod] = (), not_ready: Sequence[FakePod] = ()) -> None:
        self.backends.set_endpoints(NS, name, Endpoints.of([p.dest for p in ready], [p.dest for p in not_ready]))

    async def get(self, name: str, path: str = "/") -> tuple[int, str]:
        async with self.client.get(self.url + path, headers=revision_headers(name)) as response:
            return response.status, await response.text()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    autoscaler = await FakeAutoscaler().start()
    activator = Activator(
        source=StaticRevisionSource(),
        autoscaler_url=autoscaler.url,
        pod_name="activator-test",
        queue_depth=2,
        probe_interval=0.05,
        report_interval=0.2,
        drain_seconds=1.0,
    )
    await activator.start(host="127.0.0.1", port=0, metrics_port=0)
    client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    h = Harness(activator, autoscaler, client)
    try:
        yield h
    finally:
        await client.close()
        await activator.stop()
        for pod in h.pods:
            await pod.stop()
        await autoscaler.stop()


async def test_forwards_to_a_ready_pod_keeping_host_and_revision_headers(harness: Harness) -> None:
    pod = await harness.pod("pod-a")
    harness.revision("hello-00001")
    harness.endpoints("hello-00001", ready=[pod])
    async with harness.client.post(
        harness.url + "/echo?x=1",
        headers={**revision_headers("hello-00001"), "X-Custom": "yes"},
        data=b"payload",
    ) as response:
        assert response.status == 200
        echoed = await response.json()
    headers = {k.lower(): v for k, v in echoed["headers"].items()}
    assert echoed["pod"] == "pod-a" and echoed["method"] == "POST" and echoed["path"] == "/echo?x=1"
    assert echoed["body"] == "payload"
    assert headers["host"] == "hello.default.example.com"
    assert headers["knative-serving-revision"] == "hello-00001"
    assert headers["knative-serving-namespace"] == NS
    assert headers["k-proxy-request"] == "activator"
    assert headers["x-custom"] == "yes"
    assert headers["x-forwarded-for"] == "127.0.0.1"


async def test_streams_large_bodies_both_ways(harness: Harness) -> None:
    pod = await harness.pod("pod-a")
    harness.revision("big")
    harness.endpoints("big", ready=[pod])
    blob = b"x" * (3 << 20)
    async with harness.client.post(harness.url + "/", headers=revision_headers("big"), data=blob) as response:
        assert response.status == 200
        assert len((await response.json())["body"]) == len(blob)


async def test_unknown_or_unnamed_revisions_get_404(harness: Harness) -> None:
    assert (await harness.get("nope"))[0] == 404
    async with harness.client.get(harness.url + "/", headers={"Host": "x"}) as response:
        assert response.status == 404
        assert "Knative-Serving-Revision" in await response.text()


async def test_health_and_activator_probe(harness: Harness) -> None:
    async with harness.client.get(harness.url + "/healthz") as response:
        assert (response.status, await response.text()) == (200, "ok")
    async with harness.client.get(harness.url + "/", headers={"K-Network-Probe": "activator"}) as response:
        assert (response.status, await response.text()) == (200, "activator")
    async with harness.client.get(harness.url + "/", headers={"User-Agent": "kube-probe/1.37"}) as response:
        assert response.status == 200


async def test_draining_serves_until_requests_stop_coming(harness: Harness) -> None:
    pod = await harness.pod("pod-a")
    harness.revision("steady")
    harness.endpoints("steady", ready=[pod])
    stopping = asyncio.create_task(harness.activator.stop(quiet_seconds=0.5))
    await asyncio.sleep(0.1)
    # Still healthy: a terminating activator stays "serving" for the Routes that still need it.
    async with harness.client.get(harness.url + "/healthz") as response:
        assert (response.status, await response.text()) == (200, "draining")
    for _ in range(8):  # 1.6 s of requests, each within the quiet period of the last
        assert (await harness.get("steady"))[0] == 200
        await asyncio.sleep(0.2)
    assert not stopping.done()
    began = time.monotonic()
    await asyncio.wait_for(stopping, 5.0)  # no more requests: the listeners close
    assert time.monotonic() - began < 2.0


async def test_a_request_at_zero_pokes_the_autoscaler_waits_and_goes_to_the_first_probed_pod(
    harness: Harness,
) -> None:
    harness.revision("cold", cc=0)
    started = time.monotonic()
    request = asyncio.create_task(harness.get("cold", "/first"))
    # the autoscaler hears about the first request at once, while it waits
    [poke, *_] = await harness.autoscaler.wait_for("cold", timeout=2.0)
    assert time.monotonic() - started < 0.5
    assert poke.stat.average_concurrent_requests == 1.0 and poke.stat.request_count == 1.0
    assert poke.stat.pod_name == "activator-test"
    await asyncio.sleep(0.2)
    assert not request.done()

    # a pod appears that Kubernetes does not call ready yet, and whose queue-proxy is not up
    pod = await harness.pod("pod-new", ready=False)
    harness.endpoints("cold", not_ready=[pod])
    await asyncio.sleep(0.3)
    assert not request.done()
    pod.ready = True  # the probe passes: the request goes, before Kubernetes marks the pod ready
    status, body = await asyncio.wait_for(request, 3.0)
    assert status == 200 and '"pod": "pod-new"' in body
    assert harness.backends.healthy(NS, "cold") == {pod.dest}


async def test_cc_1_never_sends_two_requests_at_once_to_one_pod(harness: Harness) -> None:
    pods = [await harness.pod("p1"), await harness.pod("p2")]
    harness.revision("single", cc=1)
    harness.endpoints("single", ready=pods)
    # six requests: two run, two wait (queue depth 2), so send them in waves of four
    for _ in range(2):
        results = await asyncio.gather(*(harness.get("single", "/?sleep=0.15") for _ in range(4)))
        assert [status for status, _ in results] == [200] * 4
    assert [pod.max_in_flight for pod in pods] == [1, 1]
    assert sum(pod.served for pod in pods) == 8


async def test_a_full_queue_answers_503_fast_and_other_revisions_are_unaffected(harness: Harness) -> None:
    slow, other = await harness.pod("slow"), await harness.pod("other")
    harness.revision("busy", cc=1)
    harness.endpoints("busy", ready=[slow])
    harness.revision("calm", cc=1)
    harness.endpoints("calm", ready=[other])
    in_flight = [asyncio.create_task(harness.get("busy", "/?sleep=1")) for _ in range(3)]  # 1 running + 2 queued
    await asyncio.sleep(0.2)
    started = time.monotonic()
    status, body = await harness.get("busy")
    assert (status, body) == (503, "pending request queue full")
    assert time.monotonic() - started < 0.3
    assert (await harness.get("calm"))[0] == 200
    assert [status for status, _ in await asyncio.gather(*in_flight)] == [200, 200, 200]


async def test_the_revision_timeout_answers_504(harness: Harness) -> None:
    harness.revision("never", timeout=0.5)
    started = time.monotonic()
    assert await harness.get("never") == (504, "activator request timeout")
    assert 0.45 <= time.monotonic() - started < 2.0
    # also when a pod takes too long to answer
    slow = await harness.pod("slow")
    harness.revision("sluggish", timeout=0.5)
    harness.endpoints("sluggish", ready=[slow])
    assert await harness.get("sluggish", "/?sleep=2") == (504, "activator request timeout")


async def test_the_response_start_timeout_answers_504(harness: Harness) -> None:
    slow = await harness.pod("slow")
    harness.revision("late-start", timeout=30, start=0.4)
    harness.endpoints("late-start", ready=[slow])
    started = time.monotonic()
    assert await harness.get("late-start", "/?sleep=2") == (504, "activator request timeout")
    assert time.monotonic() - started < 1.5
    assert (await harness.get("late-start", "/?sleep=0.1"))[0] == 200


async def test_the_idle_timeout_cuts_a_silent_stream(harness: Harness) -> None:
    pod = await harness.pod("staller")
    harness.revision("quiet", idle=0.3)
    harness.endpoints("quiet", ready=[pod])
    async with harness.client.get(harness.url + "/?stall=2", headers=revision_headers("quiet")) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    async with harness.client.get(harness.url + "/?stall=0.1", headers=revision_headers("quiet")) as response:
        assert await response.read() == b"first piece;the rest"


async def test_queued_requests_that_time_out_free_their_place(harness: Harness) -> None:
    harness.revision("empty", timeout=0.3)
    results = await asyncio.gather(*(harness.get("empty") for _ in range(2)))
    assert [status for status, _ in results] == [504, 504]
    throttler = harness.backends.throttler(NS, "empty")
    assert throttler is not None and throttler.queued == 0
    pod = await harness.pod("late")
    harness.endpoints("empty", ready=[pod])
    assert (await harness.get("empty"))[0] == 200
    assert throttler.in_flight == 0
    await asyncio.sleep(0.5)  # a couple of report intervals
    # the two 504s never reached a pod: the activator reports them as the revision's responses
    stats = harness.autoscaler.stats_for("empty")
    assert sum(m.stat.responses.get("5xx", 0.0) for m in stats) == 2.0
    assert sum(m.stat.responses.get("2xx", 0.0) for m in stats) == 0.0  # the pod's 200 is its queue-proxy's
    assert sum(sum(m.stat.latency_counts) for m in stats) == 2.0
    async with harness.client.get(harness.metrics_url) as response:
        text = await response.text()
    assert sample_value(text, "activator_request_count", revision_name="empty", response_code_class="5xx") == 2.0


async def test_an_unreachable_pod_answers_502(harness: Harness) -> None:
    pod = await harness.pod("gone")
    harness.revision("broken")
    harness.endpoints("broken", ready=[pod])
    await pod.stop()
    status, body = await harness.get("broken")
    assert status == 502 and "broken" in body


async def test_stats_and_metrics_report_the_traffic(harness: Harness) -> None:
    pod = await harness.pod("pod-a")
    harness.revision("counted")
    harness.endpoints("counted", ready=[pod])
    await asyncio.gather(*(harness.get("counted", "/?sleep=0.3") for _ in range(2)))
    await asyncio.sleep(0.5)  # a couple of report intervals
    stats = harness.autoscaler.stats_for("counted")
    assert stats[0].stat.average_concurrent_requests == 1.0  # the immediate first-request stat
    assert sum(m.stat.request_count for m in stats) == pytest.approx(2.0)
    assert max(m.stat.average_concurrent_requests for m in stats[1:]) > 0.5
    async with harness.client.get(harness.metrics_url) as response:
        text = await response.text()
    assert sample_value(text, "activator_request_count", revision_name="counted", response_code="200") == 2.0
    labels, _ = samples(text, "activator_request_count")[0]
    assert labels == {  # Knative's activator labels
        "namespace_name": "default", "service_name": "", "configuration_name": "", "revision_name": "counted",
        "pod_name": labels["pod_name"], "container_name": "activator", "response_code": "200",
        "response_code_class": "2xx",
    }
    assert sample_value(text, "activator_request_latencies_count", revision_name="counted") == 2.0
    # answers from the pod are its queue-proxy's to count: the activator's stats carry none of them
    assert all(not m.stat.responses for m in stats)
    assert 'activator_healthy_pods{namespace_name="default",revision_name="counted"} 1.0' in text
