"""Metric collection and Knative's population sampling."""

from __future__ import annotations

import random

import pytest

from autoscaler.collector import (
    MetricCollection,
    NoData,
    ScrapeTarget,
    extrapolate,
    plan_scrape,
    population_mean_sample_size,
)
from knserve.stats_wire import Stat

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("population", "sample"),
    [
        pytest.param(0, 0, id="none"),
        pytest.param(1, 1, id="one"),
        pytest.param(3, 3, id="three-all"),
        pytest.param(4, 4, id="four"),
        pytest.param(10, 7, id="ten"),
        pytest.param(100, 14, id="hundred"),
        pytest.param(1000, 16, id="thousand"),
    ],
)
def test_population_mean_sample_size(population: int, sample: int) -> None:
    assert population_mean_sample_size(population) == sample


def test_plan_scrape_prefers_pods_older_than_the_window() -> None:
    pods = [ScrapeTarget(f"10.0.0.{i}", start_time=T0 - 100) for i in range(8)]
    pods += [ScrapeTarget(f"10.0.1.{i}", start_time=T0 - 1) for i in range(4)]
    sample, order = plan_scrape(pods, now=T0, stable_window=60, rng=random.Random(1))
    assert sample == population_mean_sample_size(12)
    assert set(order[:8]) == {f"10.0.0.{i}" for i in range(8)}
    assert order[8:] == [f"10.0.1.{i}" for i in range(4)]  # young pods are the fallback, unshuffled


def test_extrapolate_scales_the_sample_to_the_population() -> None:
    stats = [Stat("a", 2.0, 0.5, 10.0, 1.0), Stat("b", 4.0, 0.5, 20.0, 3.0)]
    total = extrapolate(stats, sample_size=2, population=10)
    assert total.pod_name == "service-scraper"
    assert (total.average_concurrent_requests, total.average_proxied_concurrent_requests) == (30.0, 5.0)
    assert (total.request_count, total.proxied_request_count) == (150.0, 20.0)


def test_proxied_requests_are_subtracted() -> None:
    collection = MetricCollection(stable_window=60, panic_window=6)
    collection.record(T0, Stat("pod", average_concurrent_requests=5, average_proxied_concurrent_requests=2,
                               request_count=10, proxied_request_count=4))
    assert collection.stable_and_panic("concurrency", T0) == (3.0, 3.0)
    assert collection.stable_and_panic("rps", T0) == (6.0, 6.0)


def test_scraped_and_pushed_stats_add_up_within_a_second() -> None:
    collection = MetricCollection(stable_window=60, panic_window=6)
    collection.record(T0 + 0.2, Stat("service-scraper", 3.0))
    collection.record(T0 + 0.7, Stat("activator", 2.0))
    assert collection.stable_and_panic("concurrency", T0 + 0.9) == (5.0, 5.0)


def test_panic_window_reacts_faster_than_the_stable_window() -> None:
    collection = MetricCollection(stable_window=60, panic_window=6)
    for second in range(60):
        collection.record(T0 + second, Stat("pod", 10.0 if second < 54 else 100.0))
    stable, panic = collection.stable_and_panic("concurrency", T0 + 59)
    assert panic == pytest.approx(100.0)
    assert stable == pytest.approx((54 * 10 + 6 * 100) / 60)


def test_no_data_for_a_window_is_reported() -> None:
    collection = MetricCollection(stable_window=60, panic_window=6)
    with pytest.raises(NoData):
        collection.stable_and_panic("concurrency", T0)
    collection.record(T0, Stat("pod", 1.0))
    with pytest.raises(NoData):
        collection.stable_and_panic("concurrency", T0 + 61)
    # without scraping (TBC -1) silence is zero load, not missing data
    assert collection.stable_and_panic("concurrency", T0 + 61, require_data=False) == (0.0, 0.0)
