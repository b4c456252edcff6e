"""The KPA decision (Knative's autoscaler.go) on an injected timeline."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from autoscaler.config import AutoscalerConfig, ScalingSpec, resolve_scaling
from autoscaler.decider import Decider, excess_burst_capacity, initial_excess_burst_capacity

T0 = 1_700_000_000.0


def make_spec(**overrides: Any) -> ScalingSpec:
    """Knative's defaults (TV 70 of 100, window 60 s, panic 200%), with overrides."""
    return replace(resolve_scaling({}, container_concurrency=0, config=AutoscalerConfig()), **overrides)


def decide(decider: Decider, *, now: float, ready: int, stable: float, panic: float | None = None) -> int:
    result = decider.scale(now=now, ready_pods=ready, observed_stable=stable, observed_panic=stable if panic is None else panic)
    return result.desired_pod_count


@pytest.mark.parametrize(
    ("ready", "stable", "want"),
    [
        pytest.param(1, 0.0, 0, id="no-load-one-pod"),
        pytest.param(1, 1.0, 1, id="any-load-needs-a-pod"),
        pytest.param(1, 70.0, 1, id="exactly-target"),
        pytest.param(1, 70.5, 2, id="just-over-target"),
        pytest.param(5, 350.0, 5, id="five-at-target"),
        pytest.param(5, 420.0, 6, id="six-needed"),
    ],
)
def test_stable_scaling_is_ceil_of_stable_over_target(ready: int, stable: float, want: int) -> None:
    decider = Decider(make_spec(), ready_pods=ready, now=T0)
    # equal stable and panic values below the panic threshold: the stable decision stands
    assert decide(decider, now=T0, ready=ready, stable=stable) == want


def test_scale_up_is_bounded_by_the_max_scale_up_rate() -> None:
    decider = Decider(make_spec(max_scale_up_rate=2.0), ready_pods=0, now=T0)
    # ready = 3 -> at most ceil(2 * 3) = 6 pods, whatever the load
    assert decide(decider, now=T0, ready=3, stable=7000.0, panic=7000.0) == 6


def test_scale_up_rate_always_allows_one_more_pod() -> None:
    decider = Decider(make_spec(max_scale_up_rate=1.1, target=1.0), ready_pods=0, now=T0)
    assert decide(decider, now=T0, ready=2, stable=3.0, panic=3.0) == 3  # ceil(1.1 * 2) = 3


def test_scale_down_is_bounded_by_the_max_scale_down_rate() -> None:
    decider = Decider(make_spec(), ready_pods=1, now=T0)
    # ready = 10 -> at least floor(10 / 2) = 5 pods even with no load
    assert decide(decider, now=T0, ready=10, stable=0.0, panic=0.0) == 5
    assert decide(decider, now=T0 + 2, ready=5, stable=0.0, panic=0.0) == 2
    assert decide(decider, now=T0 + 4, ready=2, stable=0.0, panic=0.0) == 1
    assert decide(decider, now=T0 + 6, ready=1, stable=0.0, panic=0.0) == 0


def test_unreachable_revisions_may_drop_at_once() -> None:
    decider = Decider(make_spec(reachable=False), ready_pods=1, now=T0)
    assert decide(decider, now=T0, ready=10, stable=0.0, panic=0.0) == 0


def test_panic_starts_at_twice_the_capacity_of_the_ready_pods() -> None:
    decider = Decider(make_spec(), ready_pods=1, now=T0)
    # ceil(139 / 70) = 2 -> 2 / 1 >= 2: panic; panic decision 2 beats the stable one
    result = decider.scale(now=T0, ready_pods=1, observed_stable=10.0, observed_panic=139.0)
    assert result.in_panic and result.desired_pod_count == 2


def test_below_the_threshold_there_is_no_panic() -> None:
    decider = Decider(make_spec(), ready_pods=1, now=T0)
    result = decider.scale(now=T0, ready_pods=2, observed_stable=10.0, observed_panic=139.0)  # 2/2 = 1 < 2
    assert not result.in_panic and result.desired_pod_count == 1


def test_in_panic_the_scale_never_goes_down_and_panic_ends_a_window_after_the_last_surge() -> None:
    decider = Decider(make_spec(), ready_pods=1, now=T0)
    assert decide(decider, now=T0, ready=1, stable=70.0, panic=700.0) == 10  # panic: ceil(700/70)
    # load falls right away, but panic holds the ten pods
    for tick in range(1, 30):
        result = decider.scale(now=T0 + 2 * tick, ready_pods=10, observed_stable=70.0, observed_panic=70.0)
        assert result.in_panic and result.desired_pod_count == 10
    # at exactly a stable window after the last surge panic still holds
    assert decider.scale(now=T0 + 60, ready_pods=10, observed_stable=70.0, observed_panic=70.0).in_panic
    # past it, the stable decision (bounded by maxDown = 5) takes over
    result = decider.scale(now=T0 + 62, ready_pods=10, observed_stable=70.0, observed_panic=70.0)
    assert not result.in_panic and result.desired_pod_count == 5


def test_a_new_surge_extends_panic() -> None:
    decider = Decider(make_spec(), ready_pods=1, now=T0)
    decide(decider, now=T0, ready=1, stable=70.0, panic=700.0)
    decide(decider, now=T0 + 40, ready=2, stable=70.0, panic=700.0)  # still >= 2x the ready pods
    result = decider.scale(now=T0 + 90, ready_pods=10, observed_stable=0.0, observed_panic=0.0)
    assert result.in_panic and result.desired_pod_count == 10
    result = decider.scale(now=T0 + 102, ready_pods=10, observed_stable=0.0, observed_panic=0.0)
    assert not result.in_panic and result.desired_pod_count == 5


def test_panic_scales_up_further_when_the_load_grows() -> None:
    decider = Decider(make_spec(), ready_pods=1, now=T0)
    assert decide(decider, now=T0, ready=1, stable=0.0, panic=280.0) == 4
    assert decide(decider, now=T0 + 2, ready=4, stable=0.0, panic=1400.0) == 20


def test_a_decider_created_over_several_pods_starts_in_panic_and_keeps_them() -> None:
    decider = Decider(make_spec(), ready_pods=6, now=T0)
    assert decider.in_panic
    assert decide(decider, now=T0 + 2, ready=6, stable=0.0, panic=0.0) == 6


def test_activation_scale_lifts_a_loaded_revision() -> None:
    decider = Decider(make_spec(activation_scale=3), ready_pods=0, now=T0)
    assert decide(decider, now=T0, ready=0, stable=1.0, panic=1.0) == 3
    # no load: activation scale does not keep pods around
    assert decide(decider, now=T0 + 120, ready=1, stable=0.0, panic=0.0) == 0


def test_scale_down_delay_holds_the_highest_decision_of_the_delay() -> None:
    decider = Decider(make_spec(scale_down_delay=10.0, max_scale_down_rate=100.0), ready_pods=1, now=T0)
    assert decide(decider, now=T0, ready=1, stable=70.0, panic=70.0) == 1
    assert decide(decider, now=T0 + 2, ready=1, stable=210.0, panic=60.0) == 3  # panic 1/1 < 2: stable mode
    # the load goes away; the 3 stands for 10 s
    for seconds in (4, 6, 8, 10):
        assert decide(decider, now=T0 + seconds, ready=3, stable=0.0, panic=0.0) == 3
    assert decide(decider, now=T0 + 12, ready=3, stable=0.0, panic=0.0) == 0


def test_scale_down_delay_is_ignored_for_unreachable_revisions() -> None:
    decider = Decider(make_spec(scale_down_delay=10.0, reachable=False), ready_pods=1, now=T0)
    decide(decider, now=T0, ready=1, stable=210.0, panic=60.0)
    assert decide(decider, now=T0 + 2, ready=3, stable=0.0, panic=0.0) == 0


@pytest.mark.parametrize(
    ("tbc", "ready", "panic", "want"),
    [
        pytest.param(211.0, 3, 50.0, 39, id="floor(3*100-211-50)"),
        pytest.param(211.0, 1, 0.0, -111, id="one-pod-is-short"),
        pytest.param(211.0, 0, 0.0, -211, id="no-pods"),
        pytest.param(0.0, 0, 500.0, 0, id="tbc-0-only-at-zero"),
        pytest.param(-1.0, 50, 0.0, -1, id="tbc-minus-1-always-in-path"),
        pytest.param(10.0, 1, 89.5, 0, id="floors"),
    ],
)
def test_excess_burst_capacity(tbc: float, ready: int, panic: float, want: int) -> None:
    spec = make_spec(target_burst_capacity=tbc)
    assert excess_burst_capacity(spec, ready_pods=ready, observed_panic=panic) == want
    decider = Decider(spec, ready_pods=ready, now=T0)
    result = decider.scale(now=T0, ready_pods=ready, observed_stable=panic, observed_panic=panic)
    assert result.excess_burst_capacity == want


def test_initial_excess_burst_capacity_uses_the_initial_scale() -> None:
    assert initial_excess_burst_capacity(make_spec(initial_scale=3)) == 89
    assert initial_excess_burst_capacity(make_spec()) == -111
    assert initial_excess_burst_capacity(make_spec(target_burst_capacity=-1.0)) == -1
    assert initial_excess_burst_capacity(make_spec(target_burst_capacity=0.0)) == 0


def test_rps_target_divides_the_request_rate() -> None:
    spec = resolve_scaling({"autoscaling.knative.dev/metric": "rps"}, container_concurrency=0, config=AutoscalerConfig())
    decider = Decider(spec, ready_pods=1, now=T0)
    assert decide(decider, now=T0, ready=1, stable=300.0, panic=200.0) == 3  # ceil(300 / 140)


def test_update_changes_the_target() -> None:
    decider = Decider(make_spec(), ready_pods=1, now=T0)
    decider.update(make_spec(target=10.0))
    assert decide(decider, now=T0, ready=4, stable=40.0, panic=40.0) == 4
