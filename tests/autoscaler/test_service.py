"""The autoscaler service driven one step at a time: fake cluster, fake stats, fake clock."""

from __future__ import annotations

from typing import Any

from autoscaler.kube import FakeCluster, PodInfo
from autoscaler.service import AutoscalerService
from knserve.clock import FakeClock
from knserve.stats_wire import (
    ACTIVATOR_IN_PATH_CONDITION,
    LATENCY_BUCKETS_MS,
    LATENCY_COUNTS_LENGTH,
    RevisionStat,
    Stat,
)
from tests.support.factories import pod_autoscaler, with_annotations, with_status

NS, REV = "default", "hello-00001"
KEY = (NS, REV)


class FixedStats:
    """Every pod reports the same stat."""

    def __init__(self, concurrency: float) -> None:
        self.concurrency = concurrency
        self.fetched: list[str] = []

    async def fetch(self, ip: str) -> Stat:
        self.fetched.append(ip)
        return Stat(ip, self.concurrency)


def pods(count: int, *, clock: FakeClock) -> list[PodInfo]:
    return [PodInfo(f"p{i}", f"10.0.0.{i}", ready=True, start_time=clock.time() - 600) for i in range(count)]


def service(cluster: FakeCluster, clock: FakeClock, stats: FixedStats) -> AutoscalerService:
    return AutoscalerService(watch=cluster, pods=cluster, scale=cluster, status=cluster, fetcher=stats, clock=clock)


def condition(cluster: FakeCluster, kind: str) -> dict[str, Any]:
    conditions = cluster.pod_autoscalers[KEY]["status"]["conditions"]
    return next(c for c in conditions if c["type"] == kind)


async def test_a_new_pa_gets_a_status_and_its_load_scales_the_deployment() -> None:
    clock, cluster, stats = FakeClock(), FakeCluster(), FixedStats(140.0)
    cluster.apply(pod_autoscaler(REV))
    cluster.replicas[(NS, f"{REV}-deployment")] = 1
    cluster.set_pods(NS, REV, pods(1, clock=clock))
    autoscaler = service(cluster, clock, stats)
    await autoscaler.handle_event("ADDED", cluster.pod_autoscalers[KEY])
    await autoscaler.reconcile(KEY)
    assert condition(cluster, "Active")["status"] == "True"
    assert condition(cluster, ACTIVATOR_IN_PATH_CONDITION)["reason"] == "ScaleUnknown"

    await autoscaler.scrape(KEY)
    assert stats.fetched == ["10.0.0.0"]
    await autoscaler.tick(KEY)
    await autoscaler.reconcile(KEY)
    # 140 concurrent / 70 per pod; the panic window agrees (2/1 >= 2: panic, same answer)
    assert cluster.scale_writes == [(NS, f"{REV}-deployment", 2)]
    assert cluster.pod_autoscalers[KEY]["status"]["desiredScale"] == 2


async def test_an_idle_revision_goes_to_zero_after_the_window_and_comes_back_on_a_poke() -> None:
    clock, cluster, stats = FakeClock(), FakeCluster(), FixedStats(0.0)
    cluster.apply(pod_autoscaler(REV, with_annotations({"autoscaling.knative.dev/window": "6s"})))
    cluster.replicas[(NS, f"{REV}-deployment")] = 1
    cluster.set_pods(NS, REV, pods(1, clock=clock))
    autoscaler = service(cluster, clock, stats)
    await autoscaler.handle_event("ADDED", cluster.pod_autoscalers[KEY])
    # one pod, EBC 100 - 211 < 0: the activator is in the path from the start, so zero comes
    # a 6 s window after the start (Inactive) and 30 s of grace after the activator went in
    zero_at = None
    for second in range(40):
        await autoscaler.scrape(KEY)
        await autoscaler.tick(KEY)
        await autoscaler.reconcile(KEY)
        if cluster.scale_writes and zero_at is None:
            zero_at = second
        clock.advance(1.0)
    assert cluster.scale_writes == [(NS, f"{REV}-deployment", 0)]
    assert zero_at == 30
    assert condition(cluster, "Active")["reason"] == "NoTraffic"
    assert condition(cluster, ACTIVATOR_IN_PATH_CONDITION)["status"] == "True"

    # the pods are gone; a request reaches the activator, which reports it at once
    cluster.set_pods(NS, REV, [])
    state = autoscaler.revisions[KEY]
    autoscaler.record([RevisionStat(NS, REV, Stat("activator", 1.0, request_count=1.0))])
    assert state.poke.is_set()
    await autoscaler.tick(KEY)
    await autoscaler.reconcile(KEY)
    assert cluster.scale_writes[-1] == (NS, f"{REV}-deployment", 1)
    assert condition(cluster, "Active")["reason"] == "Queued"


async def test_stats_for_unknown_revisions_are_ignored() -> None:
    clock, cluster = FakeClock(), FakeCluster()
    autoscaler = service(cluster, clock, FixedStats(0.0))
    autoscaler.record([RevisionStat(NS, "nobody", Stat("activator", 1.0))])
    assert autoscaler.revisions == {}


async def test_deleted_and_foreign_class_pas_are_dropped() -> None:
    clock, cluster = FakeClock(), FakeCluster()
    autoscaler = service(cluster, clock, FixedStats(0.0))
    await autoscaler.handle_event("ADDED", pod_autoscaler(REV))
    assert KEY in autoscaler.revisions
    await autoscaler.handle_event("DELETED", pod_autoscaler(REV))
    assert KEY not in autoscaler.revisions
    await autoscaler.handle_event(
        "ADDED", pod_autoscaler(REV, with_annotations({"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}))
    )
    assert KEY not in autoscaler.revisions


async def test_annotation_changes_reach_the_decider() -> None:
    clock, cluster = FakeClock(), FakeCluster()
    autoscaler = service(cluster, clock, FixedStats(0.0))
    await autoscaler.handle_event("ADDED", pod_autoscaler(REV))
    retargeted = pod_autoscaler(REV, with_annotations({"autoscaling.knative.dev/target": "10"}))
    await autoscaler.handle_event("MODIFIED", retargeted)
    assert autoscaler.revisions[KEY].scaler.spec.total == 10.0


class ProxiedStats:
    """Every pod reports the same concurrency, all of it sent by the activator."""

    def __init__(self, concurrency: float) -> None:
        self.concurrency = concurrency

    async def fetch(self, ip: str) -> Stat:
        return Stat(ip, self.concurrency, average_proxied_concurrent_requests=self.concurrency)


async def test_a_restart_under_load_through_the_activator_keeps_the_pods_while_the_activator_cannot_reach_it() -> None:
    # 20 requests in flight through the activator, target 10: the revision runs 2 pods when
    # the autoscaler restarts. The activator reaches the new one through its Service, so only
    # once the pod is ready: its first readiness probe comes before it listens, the next one a
    # period (5 s) later. The pods' stats say all their requests came through the activator.
    clock, cluster = FakeClock(), FakeCluster()
    annotations = {"autoscaling.knative.dev/window": "6s", "autoscaling.knative.dev/target": "10",
                   "autoscaling.knative.dev/target-utilization-percentage": "100"}
    cluster.apply(pod_autoscaler(REV, with_annotations(annotations), with_status(desiredScale=2, actualScale=2)))
    cluster.replicas[(NS, f"{REV}-deployment")] = 2
    cluster.set_pods(NS, REV, pods(2, clock=clock))
    autoscaler = AutoscalerService(watch=cluster, pods=cluster, scale=cluster, status=cluster,
                                   fetcher=ProxiedStats(10.0), clock=clock)
    await autoscaler.handle_event("ADDED", cluster.pod_autoscalers[KEY])
    for second in range(20):
        if second >= 5:
            autoscaler.record([RevisionStat(NS, REV, Stat("activator", 20.0, request_count=40.0))])
        await autoscaler.scrape(KEY)
        if second % 2 == 1:
            await autoscaler.tick(KEY)
        await autoscaler.reconcile(KEY)
        clock.advance(1.0)
    assert cluster.scale_writes == []
    assert autoscaler.revisions[KEY].scaler.status.desired_scale == 2


class ResponsesStats:
    """Every pod reports, for its last second, 8 responses under 10 ms and 2 slow 5xx."""

    async def fetch(self, ip: str) -> Stat:
        counts = [0.0] * LATENCY_COUNTS_LENGTH
        counts[LATENCY_BUCKETS_MS.index(10.0)], counts[LATENCY_BUCKETS_MS.index(1000.0)] = 8.0, 2.0
        return Stat(ip, 1.0, responses={"2xx": 8.0, "5xx": 2.0}, latency_counts=tuple(counts))


async def test_scrapes_and_pushes_feed_the_request_metrics_until_the_revision_goes() -> None:
    clock, cluster = FakeClock(1_000_000.0), FakeCluster()
    cluster.apply(pod_autoscaler(REV))
    cluster.set_pods(NS, REV, pods(2, clock=clock))
    autoscaler = AutoscalerService(
        watch=cluster, pods=cluster, scale=cluster, status=cluster, fetcher=ResponsesStats(), clock=clock
    )
    await autoscaler.handle_event("ADDED", cluster.pod_autoscalers[KEY])
    start = clock.time()
    for _ in range(3):
        clock.advance(1.0)
        await autoscaler.scrape(KEY)
    # the activator answered one request itself (a 504 after 2 s)
    counts = [0.0] * LATENCY_COUNTS_LENGTH
    counts[LATENCY_BUCKETS_MS.index(2000.0)] = 1.0
    autoscaler.record([RevisionStat(NS, REV, Stat("activator", 0.0, responses={"5xx": 1.0},
                                                  latency_counts=tuple(counts)))])
    summary = autoscaler.request_summary(NS, REV, since=start - 10, until=clock.time())
    assert summary is not None
    assert summary.responses == {"2xx": 48.0, "3xx": 0.0, "4xx": 0.0, "5xx": 13.0}  # 2 pods, 3 seconds
    assert summary.covered_seconds == 3
    assert summary.p50_ms is not None and summary.p50_ms <= 10.0
    assert summary.p99_ms is not None and 1000.0 < summary.p99_ms <= 2000.0
    assert autoscaler.request_summary(NS, "hello-99999", since=start, until=clock.time()) is None

    await autoscaler.reconcile(KEY)
    [entry] = autoscaler.namespace_requests(NS, window=60, series=True)
    assert entry.summary.requests == 61.0
    assert entry.ready_pods == 2
    assert entry.series is not None and len(entry.series) == 60
    assert sum(sample.requests for sample in entry.series) == 61.0
    assert autoscaler.namespace_requests("elsewhere", window=60, series=False) == []

    await autoscaler.handle_event("DELETED", cluster.pod_autoscalers[KEY])
    assert autoscaler.request_summary(NS, REV, since=start, until=clock.time()) is None


async def test_with_the_activator_always_in_the_path_scrapes_feed_only_the_request_metrics() -> None:
    clock, cluster = FakeClock(1_000_000.0), FakeCluster()
    cluster.apply(pod_autoscaler(REV, with_annotations({"autoscaling.knative.dev/target-burst-capacity": "-1"})))
    cluster.set_pods(NS, REV, pods(1, clock=clock))
    autoscaler = AutoscalerService(
        watch=cluster, pods=cluster, scale=cluster, status=cluster, fetcher=ResponsesStats(), clock=clock
    )
    await autoscaler.handle_event("ADDED", cluster.pod_autoscalers[KEY])
    clock.advance(1.0)
    await autoscaler.scrape(KEY)
    summary = autoscaler.request_summary(NS, REV, since=clock.time() - 5, until=clock.time())
    assert summary is not None and summary.requests == 10.0
    # the scrape's concurrency (1 per pod) is not load for the decider: only the activator's stats are
    assert autoscaler.revisions[KEY].scaler.collection.concurrency_stable.is_empty(clock.time())
