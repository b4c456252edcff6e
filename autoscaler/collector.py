"""Per-revision metric collection: stats in, stable and panic averages out.

``MetricCollection`` keeps four one-second-bucket windows (concurrency and requests per
second, each over the stable and the panic window). Every stat recorded adds to the bucket
of the second it arrived in; requests the activator proxied are subtracted from what the
queue-proxy reports, because the activator reports them itself (Knative's collector does
the same). ``population_mean_sample_size``, ``plan_scrape`` and ``extrapolate`` are Knative's
population sampling: with many pods only a sample is scraped each second and scaled up to
the whole population (the responses and latency counts the stats carry scale the same way).

Pure: ``now`` comes in as an argument; random choices use the ``random.Random`` passed in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.buckets import WindowAverage
from autoscaler.config import METRIC_RPS
from knserve.stats_wire import LATENCY_COUNTS_LENGTH, Stat

SCRAPER_POD_NAME = "service-scraper"

# Knative's sampling constants: 95% confidence, margin of error 5, variance 100.
_CRITICAL_VALUE_SQUARED = 1.96 * 1.96
_MARGIN_OF_ERROR_SQUARED = 5.0 * 5.0
_POPULATION_VARIANCE = 100.0
_SAMPLE_SIZE = _CRITICAL_VALUE_SQUARED * _POPULATION_VARIANCE / _MARGIN_OF_ERROR_SQUARED


class NoData(Exception):
    """No stat has been recorded for a whole stable window: nothing to decide on."""


def population_mean_sample_size(population: int) -> int:
    """How many of ``population`` pods to scrape: all up to 3, then N*X/(N+X-1), X=15.37."""
    if population <= 3:
        return max(population, 0)
    return math.ceil(population * _SAMPLE_SIZE / (population + _SAMPLE_SIZE - 1))


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    ip: str
    start_time: float  # seconds; pods older than the stable window are preferred


def plan_scrape(
    pods: Sequence[ScrapeTarget], *, now: float, stable_window: float, rng: random.Random
) -> tuple[int, list[str]]:
    """The sample size and the order to try pod IPs in (old pods first, shuffled)."""
    older = [pod.ip for pod in pods if now - pod.start_time >= stable_window]
    younger = [pod.ip for pod in pods if now - pod.start_time < stable_window]
    sample_size = population_mean_sample_size(len(older) + len(younger))
    if len(older) < sample_size:
        rng.shuffle(younger)
    else:
        rng.shuffle(older)
    return sample_size, older + younger


def extrapolate(stats: Sequence[Stat], *, sample_size: int, population: int) -> Stat:
    """Sum the sampled pods' stats and scale them from ``sample_size`` to ``population`` pods."""
    factor = population / sample_size
    responses: dict[str, float] = {}
    latency_counts = [0.0] * LATENCY_COUNTS_LENGTH
    with_latency = False
    for stat in stats:
        for name, count in stat.responses.items():
            responses[name] = responses.get(name, 0.0) + count * factor
        if stat.latency_counts:
            with_latency = True
            for index, count in enumerate(stat.latency_counts):
                latency_counts[index] += count * factor
    return Stat(
        pod_name=SCRAPER_POD_NAME,
        average_concurrent_requests=sum(s.average_concurrent_requests for s in stats) * factor,
        average_proxied_concurrent_requests=sum(s.average_proxied_concurrent_requests for s in stats) * factor,
        request_count=sum(s.request_count for s in stats) * factor,
        proxied_request_count=sum(s.proxied_request_count for s in stats) * factor,
        responses=responses,
        latency_counts=tuple(latency_counts) if with_latency else (),
    )


class MetricCollection:
    """The windows of one revision."""

    def __init__(self, *, stable_window: float, panic_window: float) -> None:
        self.concurrency_stable = WindowAverage(stable_window)
        self.concurrency_panic = WindowAverage(panic_window)
        self.rps_stable = WindowAverage(stable_window)
        self.rps_panic = WindowAverage(panic_window)

    def resize(self, *, stable_window: float, panic_window: float, now: float) -> None:
        self.concurrency_stable.resize(stable_window, now)
        self.rps_stable.resize(stable_window, now)
        self.concurrency_panic.resize(panic_window, now)
        self.rps_panic.resize(panic_window, now)

    def record(self, now: float, stat: Stat) -> None:
        concurrency = stat.average_concurrent_requests - stat.average_proxied_concurrent_requests
        rps = stat.request_count - stat.proxied_request_count
        self.concurrency_stable.record(now, concurrency)
        self.concurrency_panic.record(now, concurrency)
        self.rps_stable.record(now, rps)
        self.rps_panic.record(now, rps)

    def stable_and_panic(self, metric: str, now: float, *, require_data: bool = True) -> tuple[float, float]:
        """The observed (stable, panic) values of ``metric``; ``NoData`` when nothing came in.

        ``require_data`` is False when no pod is scraped (target-burst-capacity -1: every
        request passes the activator), where silence means no traffic rather than no data.
        """
        stable, panic = (
            (self.rps_stable, self.rps_panic)
            if metric == METRIC_RPS
            else (self.concurrency_stable, self.concurrency_panic)
        )
        if require_data and stable.is_empty(now):
            raise NoData(f"no {metric} stats in the last {stable.window}s")
        return stable.average(now), panic.average(now)
