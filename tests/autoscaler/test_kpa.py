"""From decisions to replicas and PodAutoscaler status: bounds, scale to zero, the activator switch."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from autoscaler.config import AutoscalerConfig, ScalingSpec, resolve_scaling
from autoscaler.kpa import DeciderStatus, Reconciled, reconcile
from autoscaler.kube import PodCounts
from knserve.stats_wire import ACTIVATOR_IN_PATH_CONDITION, activator_in_path
from serving.apis.autoscaling.v1alpha1 import PodAutoscaler, PodAutoscalerStatus
from serving.apis.autoscaling.v1alpha1.podautoscaler_lifecycle import (
    CONDITION_ACTIVE,
    CONDITION_READY,
    CONDITION_SCALE_TARGET_INITIALIZED,
)
from serving.apis.conditions import Condition, format_time
from tests.support.factories import pa_condition, pod_autoscaler, with_status

T0 = 1_700_000_000.0


def make_spec(**overrides: Any) -> ScalingSpec:
    return replace(resolve_scaling({}, container_concurrency=0, config=AutoscalerConfig()), **overrides)


def make_pa(
    *,
    active: tuple[str, float] | None = None,
    in_path: tuple[bool, float] | None = None,
    initialized: bool = True,
    desired: int | None = None,
    reason: str = "",
) -> PodAutoscaler:
    """A PodAutoscaler whose Active condition has (status, since) and the activator (in path, since)."""
    conditions = []
    if active is not None:
        conditions.append(pa_condition(CONDITION_ACTIVE, active[0], since=active[1], reason=reason))
    if in_path is not None:
        in_path_status = "True" if in_path[0] else "False"
        conditions.append(pa_condition(ACTIVATOR_IN_PATH_CONDITION, in_path_status, since=in_path[1]))
    if initialized:
        conditions.append(pa_condition(CONDITION_SCALE_TARGET_INITIALIZED, "True", since=T0 - 1000))
    status: dict[str, Any] = {"conditions": conditions}
    if desired is not None:
        status["desiredScale"] = desired
    return PodAutoscaler.model_validate(pod_autoscaler("hello-00001", with_status(**status)))


def run(
    pa: PodAutoscaler,
    *,
    desired: int,
    ready: int,
    replicas: int | None,
    now: float = T0,
    ebc: int = -111,
    spec: ScalingSpec | None = None,
) -> Reconciled:
    return reconcile(
        pa,
        spec=spec or make_spec(),
        decider=DeciderStatus(desired, ebc),
        pods=PodCounts(ready=ready),
        current_replicas=replicas,
        now=now,
    )


def condition(result: Reconciled, kind: str) -> Condition:
    found = result.status.get_condition(kind)
    assert found is not None, kind
    return found


# --- guard rows: a new PodAutoscaler ------------------------------------------------------
def test_a_new_pa_without_a_decision_waits_activating() -> None:
    result = run(make_pa(initialized=False), desired=-1, ready=0, replicas=1)
    assert result.replicas is None and result.want == -1
    assert condition(result, CONDITION_ACTIVE).status == "Unknown"
    assert condition(result, CONDITION_READY).status == "Unknown"
    assert result.activator_in_path
    assert result.requeue_after == pytest.approx(630.0)  # progress deadline + 30 s


def test_initial_scale_is_written_before_any_decision() -> None:
    result = run(make_pa(initialized=False), desired=-1, ready=0, replicas=1, spec=make_spec(initial_scale=3))
    assert result.replicas == 3


def test_a_new_pa_becomes_active_once_its_initial_pods_are_ready() -> None:
    result = run(make_pa(initialized=False), desired=0, ready=1, replicas=1)
    assert condition(result, CONDITION_ACTIVE).status == "True"
    assert condition(result, CONDITION_SCALE_TARGET_INITIALIZED).status == "True"
    assert condition(result, CONDITION_READY).status == "True"
    assert result.status.actual_scale == 1


# --- bounds ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "desired", "want"),
    [
        pytest.param(make_spec(max_scale=3), 10, 3, id="max-scale"),
        pytest.param(make_spec(min_scale=2), 1, 2, id="min-scale"),
        pytest.param(make_spec(min_scale=2), 0, 2, id="min-scale-prevents-zero"),
        pytest.param(make_spec(), 7, 7, id="unbounded"),
    ],
)
def test_bounds(spec: ScalingSpec, desired: int, want: int) -> None:
    result = run(make_pa(active=("True", T0 - 1000)), desired=desired, ready=1, replicas=1, spec=spec)
    assert result.replicas == want and result.status.desired_scale == want


def test_nothing_is_written_when_the_deployment_already_has_the_scale() -> None:
    result = run(make_pa(active=("True", T0 - 1000)), desired=4, ready=4, replicas=4)
    assert result.replicas is None and result.want == 4


# --- scale to zero ----------------------------------------------------------------------------
def test_zero_is_held_at_one_until_active_for_a_stable_window() -> None:
    result = run(make_pa(active=("True", T0 - 20)), desired=0, ready=1, replicas=1)
    assert result.want == 1 and result.replicas is None
    assert result.requeue_after == pytest.approx(40.0)
    assert condition(result, CONDITION_ACTIVE).status == "True"


def test_after_a_stable_window_the_pa_goes_inactive_and_the_activator_in_path() -> None:
    pa = make_pa(active=("True", T0 - 60), in_path=(False, T0 - 500))
    result = run(pa, desired=0, ready=1, replicas=1)
    assert result.replicas is None and result.want == 0
    assert condition(result, CONDITION_ACTIVE).status == "False"
    assert condition(result, CONDITION_ACTIVE).reason == "NoTraffic"
    in_path = condition(result, ACTIVATOR_IN_PATH_CONDITION)
    assert (in_path.status, in_path.reason, in_path.last_transition_time) == ("True", "ScaledToZero", format_time(T0))
    assert activator_in_path(result.status.to_dict())


def test_zero_waits_for_the_grace_period_after_the_activator_went_into_the_path() -> None:
    pa = make_pa(active=("False", T0), in_path=(True, T0), reason="NoTraffic")
    waiting = run(pa, desired=0, ready=1, replicas=1, now=T0 + 10)
    assert waiting.replicas is None and waiting.requeue_after == pytest.approx(20.0)
    done = run(pa, desired=0, ready=1, replicas=1, now=T0 + 30)
    assert done.replicas == 0
    assert condition(done, CONDITION_ACTIVE).reason == "NoTraffic"


def test_zero_is_immediate_when_the_activator_was_already_in_the_path() -> None:
    pa = make_pa(active=("False", T0), in_path=(True, T0 - 300), reason="NoTraffic")
    assert run(pa, desired=0, ready=1, replicas=1, now=T0 + 1).replicas == 0


def test_zero_is_never_written_while_the_activator_is_not_in_the_path() -> None:
    pa = make_pa(active=("False", T0 - 300), in_path=(False, T0 - 300), reason="NoTraffic")
    result = run(pa, desired=0, ready=1, replicas=1)
    assert result.replicas is None
    assert result.requeue_after == pytest.approx(30.0)
    assert condition(result, ACTIVATOR_IN_PATH_CONDITION).status == "True"


def _seconds_until_zero(*, ebc: int) -> tuple[int, float] | None:
    """Reconcile an idle, active revision as the shell would (at each requeue) until it writes."""
    pa = make_pa(active=("True", T0), in_path=(False, T0))
    now = T0
    for _ in range(100):
        result = run(pa, desired=0, ready=1, replicas=1, now=now, ebc=ebc)
        if result.replicas is not None:
            return result.replicas, now - T0
        pa = pa.model_copy(update={"status": result.status})
        now += result.requeue_after or 1.0
    return None


def test_scale_to_zero_takes_a_stable_window_then_the_grace_period() -> None:
    # with burst capacity to spare the activator is out of the path while the pod serves
    assert _seconds_until_zero(ebc=0) == (0, 90.0)  # 60 s window + 30 s grace


def test_scale_to_zero_skips_the_grace_when_the_activator_was_in_the_path_all_along() -> None:
    assert _seconds_until_zero(ebc=-111) == (0, 63.0)  # the window + one 3 s recheck


def test_pod_retention_keeps_the_last_pod() -> None:
    pa = make_pa(active=("False", T0), in_path=(True, T0 - 300), reason="NoTraffic")
    result = run(pa, desired=0, ready=1, replicas=1, now=T0 + 5, spec=make_spec(scale_to_zero_pod_retention_period=60.0))
    assert result.replicas is None and result.requeue_after == pytest.approx(55.0)


def test_scale_to_zero_can_be_disabled() -> None:
    pa = make_pa(active=("True", T0 - 1000))
    result = run(pa, desired=0, ready=2, replicas=2, spec=make_spec(enable_scale_to_zero=False))
    assert result.replicas == 1


def test_activation_that_times_out_goes_to_zero() -> None:
    pa = make_pa(active=("Unknown", T0 - 631), initialized=False, reason="Queued")
    result = run(pa, desired=0, ready=0, replicas=1)
    assert result.replicas == 0
    assert (condition(result, CONDITION_ACTIVE).status, condition(result, CONDITION_ACTIVE).reason) == ("False", "TimedOut")


# --- scale from zero ------------------------------------------------------------------------
def test_a_decision_above_zero_wakes_an_inactive_revision() -> None:
    pa = make_pa(active=("False", T0 - 300), in_path=(True, T0 - 300), desired=0, reason="NoTraffic")
    result = run(pa, desired=1, ready=0, replicas=0)
    assert result.replicas == 1
    active = condition(result, CONDITION_ACTIVE)
    assert (active.status, active.reason) == ("Unknown", "Queued")
    assert result.activator_in_path  # no ready pods: EBC < 0
    ready = run(pa.model_copy(update={"status": result.status}), desired=1, ready=1, replicas=1, now=T0 + 3)
    assert condition(ready, CONDITION_ACTIVE).status == "True"


def test_a_restart_does_not_forget_the_desired_scale() -> None:
    pa = make_pa(active=("True", T0 - 1000), desired=3)
    result = run(pa, desired=-1, ready=3, replicas=3)
    assert result.replicas is None and result.status.desired_scale == 3


# --- the activator switch (excess burst capacity) ------------------------------------------
@pytest.mark.parametrize(
    ("desired", "ebc", "spec", "in_path", "reason"),
    [
        pytest.param(3, 89, make_spec(), False, "BurstCapacityAvailable", id="ebc-positive"),
        pytest.param(3, 0, make_spec(), False, "BurstCapacityAvailable", id="ebc-zero"),
        pytest.param(3, -11, make_spec(), True, "InsufficientBurstCapacity", id="ebc-negative"),
        pytest.param(3, -1, make_spec(target_burst_capacity=-1.0), True, "TargetBurstCapacityUnlimited", id="tbc-minus-1"),
        pytest.param(1, 0, make_spec(target_burst_capacity=0.0), False, "BurstCapacityAvailable", id="tbc-0-serving"),
    ],
)
def test_activator_in_path(desired: int, ebc: int, spec: ScalingSpec, in_path: bool, reason: str) -> None:
    result = run(make_pa(active=("True", T0 - 1000)), desired=desired, ready=3, replicas=3, ebc=ebc, spec=spec)
    assert result.activator_in_path is in_path
    assert condition(result, ACTIVATOR_IN_PATH_CONDITION).reason == reason
    assert activator_in_path(result.status.to_dict()) is in_path


def test_status_round_trips_through_json() -> None:
    result = run(make_pa(active=("True", T0 - 1000)), desired=2, ready=2, replicas=2, ebc=5)
    back = PodAutoscalerStatus.model_validate(result.status.to_dict())
    assert back == result.status
    obj = {
        "metadata": {"name": "hello-00001", "namespace": "ns", "generation": 2,
                     "labels": {"serving.knative.dev/revision": "hello-00001"}},
        "spec": {"containerConcurrency": 4, "reachability": "Unreachable",
                 "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello-00001-deployment"}},
        "status": result.status.to_dict(),
    }
    pa = PodAutoscaler.model_validate(obj)
    assert (pa.spec.container_concurrency, pa.reachable, pa.deployment_name, pa.metadata.generation) == (
        4, False, "hello-00001-deployment", 2)
    assert pa.status == result.status
