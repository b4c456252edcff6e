"""A revision's autoscaling settings, resolved: ``config-autoscaler`` plus its annotations.

``resolve_scaling`` folds a PodAutoscaler's ``autoscaling.knative.dev/*`` annotations and
``containerConcurrency`` over the cluster's ``config-autoscaler`` (``serving.config``) into
one frozen ``ScalingSpec``, the only input the decider and the scale-to-zero logic read.
An annotation that does not parse is ignored in favour of the cluster value, as Knative's
PodAutoscaler accessors do (the webhook-style validation in ``serving.apis`` refuses such
revisions up front).

Pure; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from serving.apis.autoscaling import annotations as keys
from serving.config.autoscaler import TARGET_MIN, WINDOW_MAX_SECONDS, WINDOW_MIN_SECONDS, AutoscalerConfig
from serving.config.parsers import parse_go_duration

__all__ = ["AutoscalerConfig", "ScalingSpec", "resolve_scaling", "METRIC_CONCURRENCY", "METRIC_RPS"]

METRIC_CONCURRENCY: Final = "concurrency"
METRIC_RPS: Final = "rps"
BUCKET_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class ScalingSpec:
    """Everything the KPA needs to know about one revision, resolved. Durations in seconds."""

    metric: str
    target: float  # TV: the per-pod value the autoscaler aims for (total * utilisation)
    total: float  # the per-pod value a pod can take (containerConcurrency or target)
    target_burst_capacity: float
    panic_threshold: float  # a ratio: 2.0 for 200%
    stable_window: float
    panic_window: float
    scale_down_delay: float
    max_scale_up_rate: float
    max_scale_down_rate: float
    min_scale: int
    max_scale: int
    initial_scale: int
    activation_scale: int
    reachable: bool
    enable_scale_to_zero: bool
    scale_to_zero_grace_period: float
    scale_to_zero_pod_retention_period: float


def _raw(annotations: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    found = keys.get(annotations, names)
    return found[1] if found else None


def _float(annotations: Mapping[str, str], names: tuple[str, ...]) -> float | None:
    raw = _raw(annotations, names)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(annotations: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    raw = _raw(annotations, names)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _duration(annotations: Mapping[str, str], names: tuple[str, ...]) -> float | None:
    raw = _raw(annotations, names)
    if raw is None:
        return None
    try:
        return parse_go_duration(raw)
    except ValueError:
        return None


def _metric_and_target(
    annotations: Mapping[str, str], container_concurrency: int, config: AutoscalerConfig
) -> tuple[str, float, float]:
    """(metric, total, utilisation): what one pod can take and the share of it aimed for."""
    metric = _raw(annotations, keys.METRIC) or METRIC_CONCURRENCY
    if metric == METRIC_RPS:
        total, utilisation = config.rps_target_default, config.target_utilization
    else:
        metric = METRIC_CONCURRENCY
        total = float(container_concurrency) or config.container_concurrency_target_default
        utilisation = config.container_concurrency_target_fraction
    target_annotation = _float(annotations, keys.TARGET)
    if target_annotation is not None and target_annotation > 0:
        total = target_annotation
        if metric == METRIC_CONCURRENCY and container_concurrency:
            # Never aim above what one pod is allowed to take.
            total = min(target_annotation, float(container_concurrency))
    percentage = _float(annotations, keys.TARGET_UTILIZATION_PERCENTAGE)
    if percentage is not None and percentage > 0:
        utilisation = percentage / 100.0
    return metric, total, utilisation


def _windows(annotations: Mapping[str, str], config: AutoscalerConfig) -> tuple[float, float, float]:
    """(stable window, panic window, panic threshold percentage)."""
    stable_window = _duration(annotations, keys.WINDOW)
    if stable_window is None or not WINDOW_MIN_SECONDS <= stable_window <= WINDOW_MAX_SECONDS:
        stable_window = config.stable_window_seconds
    panic_percentage = _float(annotations, keys.PANIC_WINDOW_PERCENTAGE)
    if panic_percentage is None or not 1.0 <= panic_percentage <= 100.0:
        panic_percentage = config.panic_window_percentage
    panic_window = max(BUCKET_SECONDS, float(round(stable_window * panic_percentage / 100.0)))
    threshold = _float(annotations, keys.PANIC_THRESHOLD_PERCENTAGE)
    if threshold is None or threshold <= 0:
        threshold = config.panic_threshold_percentage
    return stable_window, panic_window, threshold


def _scale_bounds(annotations: Mapping[str, str], config: AutoscalerConfig, *, reachable: bool) -> tuple[int, int, int]:
    """(min scale, max scale, initial scale)."""
    min_scale = 0  # an unreachable revision (routingState reserve) may go to zero
    if reachable:
        annotated_min = _int(annotations, keys.MIN_SCALE)
        min_scale = config.min_scale if annotated_min is None or annotated_min < 0 else annotated_min
    max_scale = _int(annotations, keys.MAX_SCALE)
    if max_scale is None or max_scale < 0:
        max_scale = config.max_scale
    initial_scale = _int(annotations, keys.INITIAL_SCALE)
    if initial_scale is None or initial_scale < 0 or (initial_scale == 0 and not config.allow_zero_initial_scale):
        initial_scale = config.initial_scale
    return min_scale, max_scale, initial_scale


def resolve_scaling(
    annotations: Mapping[str, str],
    *,
    container_concurrency: int,
    config: AutoscalerConfig,
    reachable: bool = True,
) -> ScalingSpec:
    metric, total, utilisation = _metric_and_target(annotations, container_concurrency, config)
    stable_window, panic_window, threshold = _windows(annotations, config)
    min_scale, max_scale, initial_scale = _scale_bounds(annotations, config, reachable=reachable)
    tbc = _float(annotations, keys.TARGET_BURST_CAPACITY)
    if tbc is None or (tbc < 0 and tbc != -1):
        tbc = config.target_burst_capacity
    delay = _duration(annotations, keys.SCALE_DOWN_DELAY)
    if delay is None or delay < 0:
        delay = config.scale_down_delay_seconds
    activation_scale = _int(annotations, keys.ACTIVATION_SCALE) or 0
    retention = _duration(annotations, keys.SCALE_TO_ZERO_POD_RETENTION_PERIOD)
    if retention is None or retention < 0:
        retention = config.scale_to_zero_pod_retention_period_seconds

    return ScalingSpec(
        metric=metric,
        target=max(TARGET_MIN, total * utilisation),
        total=total,
        target_burst_capacity=tbc,
        panic_threshold=threshold / 100.0,
        stable_window=stable_window,
        panic_window=panic_window,
        scale_down_delay=delay,
        max_scale_up_rate=config.max_scale_up_rate,
        max_scale_down_rate=config.max_scale_down_rate,
        min_scale=min_scale,
        max_scale=max_scale,
        initial_scale=initial_scale,
        activation_scale=max(0, activation_scale),
        reachable=reachable,
        enable_scale_to_zero=config.enable_scale_to_zero,
        scale_to_zero_grace_period=config.scale_to_zero_grace_period_seconds,
        scale_to_zero_pod_retention_period=0.0 if not reachable else retention,
    )
