"""config-autoscaler parsing and the per-revision annotation resolution."""

from __future__ import annotations

import pytest

from autoscaler.config import AutoscalerConfig, ConfigError, parse_duration, resolve_scaling

A = "autoscaling.knative.dev/"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("60s", 60.0, id="seconds"),
        pytest.param("1m30s", 90.0, id="minutes-and-seconds"),
        pytest.param("500ms", 0.5, id="milliseconds"),
        pytest.param("1h", 3600.0, id="hours"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("1.5s", 1.5, id="fraction"),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "60", "sixty", "1x"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_defaults_are_knatives() -> None:
    config = AutoscalerConfig.from_configmap({})
    assert config == AutoscalerConfig()
    assert (config.stable_window, config.panic_window_percentage, config.scale_to_zero_grace_period) == (60, 10, 30)
    assert (config.target_burst_capacity, config.max_scale_up_rate, config.max_scale_down_rate) == (211, 1000, 2)


def test_configmap_keys_override() -> None:
    config = AutoscalerConfig.from_configmap(
        {
            "stable-window": "30s",
            "scale-to-zero-grace-period": "10s",
            "container-concurrency-target-percentage": "80",
            "container-concurrency-target-default": "50",
            "requests-per-second-target-default": "150",
            "enable-scale-to-zero": "false",
            "target-burst-capacity": "-1",
            "min-scale": "1",
            "max-scale": "5",
        }
    )
    assert config.stable_window == 30
    assert config.scale_to_zero_grace_period == 10
    assert config.container_concurrency_target_fraction == pytest.approx(0.8)
    assert config.container_concurrency_target_default == 50
    assert config.rps_target_default == 150
    assert config.enable_scale_to_zero is False
    assert config.target_burst_capacity == -1
    assert (config.min_scale, config.max_scale) == (1, 5)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        pytest.param({"stable-window": "2s"}, "stable-window", id="window-too-small"),
        pytest.param({"max-scale-up-rate": "1"}, "max-scale-up-rate", id="up-rate"),
        pytest.param({"target-burst-capacity": "-5"}, "target-burst-capacity", id="tbc"),
        pytest.param({"scale-to-zero-grace-period": "0s"}, "scale-to-zero-grace-period", id="grace"),
        pytest.param({"min-scale": "3", "max-scale": "2"}, "min-scale (3)", id="min-over-max"),
        pytest.param({"stable-window": "soon"}, "stable-window", id="not-a-duration"),
    ],
)
def test_bad_configmaps_are_refused_with_the_key(data: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        AutoscalerConfig.from_configmap(data)


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
