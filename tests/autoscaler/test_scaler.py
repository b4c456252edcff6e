"""A revision's autoscaling state over time: ticks, pokes, and the decisions they produce."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from autoscaler.config import AutoscalerConfig, ScalingSpec, resolve_scaling
from autoscaler.kpa import reconcile
from autoscaler.kube import PodCounts
from autoscaler.scaler import RevisionScaler
from knserve.stats_wire import ACTIVATOR_IN_PATH_CONDITION, Stat
from serving.apis.autoscaling.v1alpha1 import PodAutoscaler
from serving.apis.autoscaling.v1alpha1.podautoscaler_lifecycle import CONDITION_ACTIVE
from tests.support.factories import pa_condition, pod_autoscaler, with_status

T0 = 1_700_000_000.0


def make_spec(annotations: dict[str, str] | None = None, **overrides: Any) -> ScalingSpec:
    spec = resolve_scaling(annotations or {}, container_concurrency=0, config=AutoscalerConfig())
    return replace(spec, **overrides)


def idle_at_zero(spec: ScalingSpec) -> RevisionScaler:
    """A revision scaled to zero long ago: its last decision was 0."""
    scaler = RevisionScaler(spec, ready_pods=0, now=T0 - 300)
    scaler.record(Stat("service-scraper", 0.0), now=T0 - 200)
    assert scaler.tick(now=T0 - 200, ready_pods=1)
    assert scaler.status.desired_scale == 0
    return scaler


def test_before_any_stat_there_is_no_decision() -> None:
    scaler = RevisionScaler(make_spec(), ready_pods=0, now=T0)
    assert not scaler.tick(now=T0, ready_pods=0)
    assert scaler.status.desired_scale == -1
    assert scaler.status.excess_burst_capacity == -111  # initial scale 1 * 100 - 211


def test_the_first_request_at_zero_pokes_and_scales_from_zero() -> None:
    scaler = idle_at_zero(make_spec())
    # the activator reports its first request at once: concurrency 1
    poke = scaler.record(Stat("activator", average_concurrent_requests=1.0, request_count=1.0), now=T0)
    assert poke
    assert scaler.tick(now=T0, ready_pods=0)  # the poke's immediate decision
    assert scaler.status.desired_scale == 1

    pa = PodAutoscaler.model_validate(pod_autoscaler("hello-00001", with_status(desiredScale=0, conditions=[
        pa_condition(CONDITION_ACTIVE, "False", since=T0 - 250, reason="NoTraffic"),
        pa_condition(ACTIVATOR_IN_PATH_CONDITION, "True", since=T0 - 250, reason="ScaledToZero"),
    ])))
    result = reconcile(pa, spec=scaler.spec, decider=scaler.status, pods=PodCounts(), current_replicas=0, now=T0)
    assert result.replicas == 1
    assert result.activator_in_path


def test_stats_without_load_do_not_poke() -> None:
    scaler = idle_at_zero(make_spec())
    assert not scaler.record(Stat("service-scraper", 0.0), now=T0)


def test_a_loaded_revision_is_not_poked() -> None:
    scaler = RevisionScaler(make_spec(), ready_pods=1, now=T0)
    scaler.record(Stat("service-scraper", 50.0), now=T0)
    scaler.tick(now=T0, ready_pods=1)
    assert not scaler.record(Stat("activator", 1.0), now=T0 + 1)


def test_ebc_changing_sign_needs_a_reconcile_even_at_the_same_scale() -> None:
    scaler = RevisionScaler(make_spec(), ready_pods=3, now=T0)
    scaler.record(Stat("service-scraper", 0.0), now=T0)
    scaler.tick(now=T0, ready_pods=3)  # panic at start keeps 3; EBC 300 - 211 = 89
    assert scaler.status.excess_burst_capacity == 89
    scaler.record(Stat("service-scraper", 300.0), now=T0 + 2)  # panic average (0 + 0 + 300) / 3 = 100
    assert scaler.tick(now=T0 + 2, ready_pods=3)
    assert scaler.status.desired_scale == 3 and scaler.status.excess_burst_capacity < 0
    assert not scaler.tick(now=T0 + 2, ready_pods=3)  # nothing new


def test_rps_scaling_reads_request_counts() -> None:
    scaler = RevisionScaler(make_spec({"autoscaling.knative.dev/metric": "rps"}), ready_pods=1, now=T0)
    for second in range(6):
        scaler.record(Stat("service-scraper", 1.0, request_count=420.0), now=T0 + second)
    scaler.tick(now=T0 + 5, ready_pods=3)
    assert scaler.status.desired_scale == 3  # 420 rps / (200 * 0.7)


def test_without_scraping_silence_scales_to_zero() -> None:
    scaler = RevisionScaler(make_spec(target_burst_capacity=-1.0), ready_pods=1, now=T0)
    assert not scaler.scrapes_pods
    assert scaler.tick(now=T0, ready_pods=1)
    assert scaler.status.desired_scale == 0


def test_update_resizes_the_windows() -> None:
    scaler = RevisionScaler(make_spec(), ready_pods=1, now=T0)
    scaler.update(make_spec(stable_window=10.0, panic_window=1.0), now=T0)
    assert scaler.collection.concurrency_stable.window == 10
    assert scaler.decider.spec.stable_window == 10.0


@pytest.mark.parametrize(
    ("stat", "activator_heard", "recorded"),
    [
        pytest.param(Stat("service-scraper", 20.0), False, True, id="direct-load-before-the-activator"),
        pytest.param(Stat("service-scraper", 20.0, 20.0, 40.0, 40.0), False, False, id="proxied-load-before-the-activator"),
        pytest.param(Stat("service-scraper", 20.0, 0.0, 40.0, 4.0), False, False, id="proxied-requests-before-the-activator"),
        pytest.param(Stat("service-scraper", 20.0, 20.0, 40.0, 40.0), True, True, id="proxied-load-once-heard"),
    ],
)
def test_a_scrape_counting_on_activator_stats_waits_for_the_first_of_them(
    stat: Stat, activator_heard: bool, recorded: bool
) -> None:
    scaler = RevisionScaler(make_spec(), ready_pods=2, now=T0)
    assert scaler.record_scraped(stat, now=T0, activator_heard=activator_heard) is recorded
    # nothing recorded: no data to decide on, the current scale stays
    assert scaler.tick(now=T0, ready_pods=2) is recorded
