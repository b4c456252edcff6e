"""A revision's autoscaling settings: config-autoscaler with its annotations folded over it."""

from __future__ import annotations

import pytest

from autoscaler.config import AutoscalerConfig, resolve_scaling

A = "autoscaling.knative.dev/"


def test_defaults_resolve_to_target_70_of_100() -> None:
    spec = resolve_scaling({}, container_concurrency=0, config=AutoscalerConfig())
    assert (spec.metric, spec.total) == ("concurrency", 100.0)
    assert spec.target == pytest.approx(70.0)
    assert (spec.stable_window, spec.panic_window, spec.panic_threshold) == (60.0, 6.0, 2.0)
    assert (spec.min_scale, spec.max_scale, spec.initial_scale, spec.target_burst_capacity) == (0, 0, 1, 211.0)


def test_container_concurrency_is_the_total() -> None:
    spec = resolve_scaling({}, container_concurrency=10, config=AutoscalerConfig())
    assert spec.total == 10.0
    assert spec.target == pytest.approx(7.0)


def test_annotations_override_the_configmap() -> None:
    annotations = {
        A + "min-scale": "2",
        A + "max-scale": "9",
        A + "initial-scale": "3",
        A + "activation-scale": "4",
        A + "target": "50",
        A + "target-utilization-percentage": "50",
        A + "window": "20s",
        A + "panic-window-percentage": "20",
        A + "panic-threshold-percentage": "150",
        A + "scale-down-delay": "10s",
        A + "target-burst-capacity": "0",
    }
    spec = resolve_scaling(annotations, container_concurrency=0, config=AutoscalerConfig())
    assert (spec.min_scale, spec.max_scale, spec.initial_scale, spec.activation_scale) == (2, 9, 3, 4)
    assert (spec.total, spec.target) == (50.0, 25.0)
    assert (spec.stable_window, spec.panic_window, spec.panic_threshold) == (20.0, 4.0, 1.5)
    assert (spec.scale_down_delay, spec.target_burst_capacity) == (10.0, 0.0)


def test_target_never_exceeds_container_concurrency() -> None:
    spec = resolve_scaling({A + "target": "50"}, container_concurrency=10, config=AutoscalerConfig())
    assert spec.total == 10.0


def test_rps_metric_uses_the_rps_default() -> None:
    spec = resolve_scaling({A + "metric": "rps"}, container_concurrency=5, config=AutoscalerConfig())
    assert (spec.metric, spec.total) == ("rps", 200.0)
    assert spec.target == pytest.approx(140.0)


def test_legacy_camel_case_annotations_are_read() -> None:
    spec = resolve_scaling({A + "minScale": "1", A + "maxScale": "3"}, container_concurrency=0, config=AutoscalerConfig())
    assert (spec.min_scale, spec.max_scale) == (1, 3)


def test_min_scale_zero_annotation_overrides_a_cluster_minimum() -> None:
    config = AutoscalerConfig(min_scale=2)
    assert resolve_scaling({A + "min-scale": "0"}, container_concurrency=0, config=config).min_scale == 0
    assert resolve_scaling({}, container_concurrency=0, config=config).min_scale == 2


def test_unreachable_revisions_have_no_minimum() -> None:
    spec = resolve_scaling({A + "min-scale": "3"}, container_concurrency=0, config=AutoscalerConfig(), reachable=False)
    assert spec.min_scale == 0


def test_unparsable_annotations_fall_back_to_the_configmap() -> None:
    spec = resolve_scaling(
        {A + "window": "forever", A + "max-scale": "many", A + "target-burst-capacity": "-7"},
        container_concurrency=0,
        config=AutoscalerConfig(),
    )
    assert (spec.stable_window, spec.max_scale, spec.target_burst_capacity) == (60.0, 0, 211.0)
