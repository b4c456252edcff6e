"""A revision's autoscaling settings: config-autoscaler with its annotations folded over it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from autoscaler.config import AutoscalerConfig, ScalingSpec, resolve_scaling

A = "autoscaling.knative.dev/"

# config-autoscaler's defaults, with no annotation and containerConcurrency 0
DEFAULT = ScalingSpec(
    metric="concurrency", target=70.0, total=100.0, target_burst_capacity=211.0, panic_threshold=2.0,
    stable_window=60.0, panic_window=6.0, scale_down_delay=0.0, max_scale_up_rate=1000.0, max_scale_down_rate=2.0,
    min_scale=0, max_scale=0, initial_scale=1, activation_scale=0, reachable=True, enable_scale_to_zero=True,
    scale_to_zero_grace_period=30.0, scale_to_zero_pod_retention_period=0.0,
)


@pytest.mark.parametrize(
    ("annotations", "container_concurrency", "config", "reachable", "want"),
    [
        pytest.param({}, 0, AutoscalerConfig(), True, DEFAULT, id="defaults: target 70% of 100"),
        pytest.param({}, 10, AutoscalerConfig(), True, replace(DEFAULT, total=10.0, target=7.0),
                     id="containerConcurrency is the total"),
        pytest.param(
            {A + "min-scale": "2", A + "max-scale": "9", A + "initial-scale": "3", A + "activation-scale": "4",
             A + "target": "50", A + "target-utilization-percentage": "50", A + "window": "20s",
             A + "panic-window-percentage": "20", A + "panic-threshold-percentage": "150",
             A + "scale-down-delay": "10s", A + "target-burst-capacity": "0",
             A + "scale-to-zero-pod-retention-period": "1m"},
            0, AutoscalerConfig(), True,
            replace(DEFAULT, min_scale=2, max_scale=9, initial_scale=3, activation_scale=4, total=50.0, target=25.0,
                    stable_window=20.0, panic_window=4.0, panic_threshold=1.5, scale_down_delay=10.0,
                    target_burst_capacity=0.0, scale_to_zero_pod_retention_period=60.0),
            id="annotations override the configmap"),
        pytest.param({A + "target": "50"}, 10, AutoscalerConfig(), True, replace(DEFAULT, total=10.0, target=7.0),
                     id="the target never exceeds containerConcurrency"),
        pytest.param({A + "metric": "rps"}, 5, AutoscalerConfig(), True,
                     replace(DEFAULT, metric="rps", total=200.0, target=140.0), id="rps uses the rps default"),
        pytest.param({A + "metric": "cpu"}, 0, AutoscalerConfig(), True, DEFAULT,
                     id="an unknown metric is concurrency"),
        pytest.param({A + "minScale": "1", A + "maxScale": "3"}, 0, AutoscalerConfig(), True,
                     replace(DEFAULT, min_scale=1, max_scale=3), id="legacy camelCase annotations"),
        pytest.param({A + "min-scale": "0"}, 0, AutoscalerConfig(min_scale=2), True, DEFAULT,
                     id="min-scale 0 overrides a cluster minimum"),
        pytest.param({}, 0, AutoscalerConfig(min_scale=2), True, replace(DEFAULT, min_scale=2),
                     id="the cluster minimum"),
        pytest.param({A + "min-scale": "3", A + "scale-to-zero-pod-retention-period": "1m"}, 0, AutoscalerConfig(),
                     False, replace(DEFAULT, reachable=False), id="unreachable: no minimum, no retention"),
        pytest.param({A + "initial-scale": "0"}, 0, AutoscalerConfig(), True, DEFAULT,
                     id="initial-scale 0 needs allow-zero-initial-scale"),
        pytest.param({A + "initial-scale": "0"}, 0, AutoscalerConfig(allow_zero_initial_scale=True), True,
                     replace(DEFAULT, initial_scale=0), id="initial-scale 0 allowed"),
        pytest.param({A + "window": "5s", A + "panic-window-percentage": "0.5"}, 0, AutoscalerConfig(), True, DEFAULT,
                     id="windows out of range fall back"),
        pytest.param({A + "window": "6s", A + "panic-window-percentage": "1"}, 0, AutoscalerConfig(), True,
                     replace(DEFAULT, stable_window=6.0, panic_window=1.0),
                     id="the panic window is one bucket at least"),
        pytest.param({A + "target-burst-capacity": "-1"}, 0, AutoscalerConfig(), True,
                     replace(DEFAULT, target_burst_capacity=-1.0), id="target-burst-capacity -1: unlimited"),
        pytest.param({A + "window": "forever", A + "max-scale": "many", A + "target-burst-capacity": "-7",
                      A + "target": "nan", A + "scale-down-delay": "-1s"}, 0, AutoscalerConfig(), True, DEFAULT,
                     id="unparsable or invalid annotations fall back to the configmap"),
    ],
)
def test_resolve_scaling(annotations: Mapping[str, str], container_concurrency: int, config: AutoscalerConfig,
                         reachable: bool, want: ScalingSpec) -> None:
    got = resolve_scaling(annotations, container_concurrency=container_concurrency, config=config, reachable=reachable)
    assert got == replace(want, target=pytest.approx(want.target))
