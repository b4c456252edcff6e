"""Autoscaling settings: the ``config-autoscaler`` ConfigMap and a revision's annotations.

``AutoscalerConfig.from_configmap`` reads the cluster-wide keys (Knative's names and
defaults) and refuses bad values with a sentence. ``resolve_scaling`` folds a PodAutoscaler's
``autoscaling.knative.dev/*`` annotations and ``containerConcurrency`` over that config into
one frozen ``ScalingSpec``, the only input the decider and the scale-to-zero logic read.
An annotation that does not parse is ignored in favour of the cluster value, as Knative's
PodAutoscaler accessors do (its webhook refuses such revisions up front).

Pure; no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Final

ANNOTATION_PREFIX: Final = "autoscaling.knative.dev/"
METRIC_CONCURRENCY: Final = "concurrency"
METRIC_RPS: Final = "rps"
TARGET_MIN: Final = 0.01
WINDOW_MIN: Final = 6.0
WINDOW_MAX: Final = 3600.0
BUCKET_SECONDS: Final = 1.0

# annotation name -> legacy camelCase spellings Knative still reads
_ANNOTATION_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "min-scale": ("minScale",),
    "max-scale": ("maxScale",),
    "initial-scale": ("initialScale",),
    "activation-scale": (),
    "target": (),
    "metric": (),
    "target-utilization-percentage": ("targetUtilizationPercentage",),
    "window": (),
    "panic-window-percentage": ("panicWindowPercentage",),
    "panic-threshold-percentage": ("panicThresholdPercentage",),
    "scale-down-delay": ("scaleDownDelay",),
    "target-burst-capacity": ("targetBurstCapacity",),
    "scale-to-zero-pod-retention-period": ("scaleToZeroPodRetentionPeriod",),
}


class ConfigError(ValueError):
    """A ConfigMap value that cannot be used; the text names the key and the allowed range."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``60s``, ``1m30s``, ``500ms``, ``0``)."""
    text = text.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    position, seconds = 0, 0.0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None:
            raise ValueError(f"{text!r} is not a duration like 60s, 1m30s or 500ms")
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not body:
        raise ValueError("an empty string is not a duration")
    return sign * seconds


@dataclass(frozen=True, slots=True)
class AutoscalerConfig:
    """The ``config-autoscaler`` keys, with Knative's defaults. Durations in seconds."""

    enable_scale_to_zero: bool = True
    allow_zero_initial_scale: bool = False
    container_concurrency_target_fraction: float = 0.7
    container_concurrency_target_default: float = 100.0
    target_utilization: float = 0.7
    rps_target_default: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    target_burst_capacity: float = 211.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    activator_capacity: float = 100.0
    stable_window: float = 60.0
    scale_to_zero_grace_period: float = 30.0
    scale_to_zero_pod_retention_period: float = 0.0
    scale_down_delay: float = 0.0
    initial_scale: int = 1
    min_scale: int = 0
    max_scale: int = 0
    max_scale_limit: int = 0

    @classmethod
    def from_configmap(cls, data: Mapping[str, str]) -> AutoscalerConfig:
        values: dict[str, object] = {}
        for field in fields(cls):
            key = field.name.replace("_", "-")
            if key == "container-concurrency-target-fraction":
                key = "container-concurrency-target-percentage"
            elif key == "target-utilization":
                continue  # not a ConfigMap key in Knative either
            elif key == "rps-target-default":
                key = "requests-per-second-target-default"
            if key not in data:
                continue
            raw = str(data[key]).strip()
            try:
                if field.type == "bool":
                    if raw.lower() not in ("true", "false"):
                        raise ValueError("expected true or false")
                    values[field.name] = raw.lower() == "true"
                elif field.type == "int":
                    values[field.name] = int(raw)
                elif key in _DURATION_KEYS:
                    values[field.name] = parse_duration(raw)
                else:
                    number = float(raw)
                    if not math.isfinite(number):
                        raise ValueError("expected a finite number")
                    values[field.name] = number
            except ValueError as error:
                raise ConfigError(f"config-autoscaler key {key}: {raw!r} is not valid ({error})") from None
        config = replace(cls(), **values)  # type: ignore[arg-type]
        if config.container_concurrency_target_fraction > 1.0:
            # Percentages above 1 are percents; (0, 1] is the legacy fraction form.
            config = replace(
                config,
                container_concurrency_target_fraction=config.container_concurrency_target_fraction / 100.0,
            )
        config.validate()
        return config

    def validate(self) -> None:
        problems = []
        if self.scale_to_zero_grace_period <= 0:
            problems.append(f"scale-to-zero-grace-period must be positive, was {self.scale_to_zero_grace_period}s")
        if self.scale_down_delay < 0:
            problems.append(f"scale-down-delay cannot be negative, was {self.scale_down_delay}s")
        if self.scale_to_zero_pod_retention_period < 0:
            problems.append("scale-to-zero-pod-retention-period cannot be negative")
        if self.target_burst_capacity < 0 and self.target_burst_capacity != -1:
            problems.append(
                f"target-burst-capacity must be either non-negative or -1 (for unlimited), was {self.target_burst_capacity}"
            )
        if not 0 < self.container_concurrency_target_fraction <= 1:
            problems.append("container-concurrency-target-percentage must be in (0, 100]")
        if self.container_concurrency_target_fraction * self.container_concurrency_target_default < TARGET_MIN:
            problems.append(f"the target concurrency cannot be less than {TARGET_MIN}")
        if self.rps_target_default < TARGET_MIN:
            problems.append(f"requests-per-second-target-default must be at least {TARGET_MIN}")
        if self.activator_capacity < 1:
            problems.append("activator-capacity must be at least 1")
        if self.max_scale_up_rate <= 1.0:
            problems.append(f"max-scale-up-rate = {self.max_scale_up_rate}, must be greater than 1.0")
        if self.max_scale_down_rate <= 1.0:
            problems.append(f"max-scale-down-rate = {self.max_scale_down_rate}, must be greater than 1.0")
        if not WINDOW_MIN <= self.stable_window <= WINDOW_MAX:
            problems.append(f"stable-window = {self.stable_window}s, must be in [6s; 1h] range")
        if not 1.0 <= self.panic_window_percentage <= 100.0:
            problems.append(f"panic-window-percentage = {self.panic_window_percentage}, must be in [1, 100]")
        if self.initial_scale < 0 or (self.initial_scale == 0 and not self.allow_zero_initial_scale):
            problems.append(
                f"initial-scale = {self.initial_scale}, must be at least 1 (or 0 when allow-zero-initial-scale is true)"
            )
        if self.min_scale < 0:
            problems.append(f"min-scale = {self.min_scale}, must be at least 0")
        if self.max_scale < 0 or (self.max_scale_limit > 0 and not 1 <= self.max_scale <= self.max_scale_limit):
            problems.append(f"max-scale = {self.max_scale}, must be in [0, max-scale-limit] range")
        if self.min_scale > self.max_scale > 0:
            problems.append(f"min-scale ({self.min_scale}) must be less than max-scale ({self.max_scale})")
        if problems:
            raise ConfigError("config-autoscaler is not valid: " + "; ".join(problems))


_DURATION_KEYS: Final = frozenset(
    {"stable-window", "scale-to-zero-grace-period", "scale-to-zero-pod-retention-period", "scale-down-delay"}
)


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


def annotation(annotations: Mapping[str, str], name: str) -> str | None:
    """The value of ``autoscaling.knative.dev/<name>`` or of a legacy spelling of it."""
    for key in (name, *_ANNOTATION_ALIASES.get(name, ())):
        value = annotations.get(ANNOTATION_PREFIX + key)
        if value is not None:
            return value
    return None


def _float(annotations: Mapping[str, str], name: str) -> float | None:
    raw = annotation(annotations, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(annotations: Mapping[str, str], name: str) -> int | None:
    raw = annotation(annotations, name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _duration(annotations: Mapping[str, str], name: str) -> float | None:
    raw = annotation(annotations, name)
    if raw is None:
        return None
    try:
        return parse_duration(raw)
    except ValueError:
        return None


def resolve_scaling(
    annotations: Mapping[str, str],
    *,
    container_concurrency: int,
    config: AutoscalerConfig,
    reachable: bool = True,
) -> ScalingSpec:
    metric = annotation(annotations, "metric") or METRIC_CONCURRENCY
    if metric == METRIC_RPS:
        total, utilisation = config.rps_target_default, config.target_utilization
    else:
        metric = METRIC_CONCURRENCY
        total = float(container_concurrency) or config.container_concurrency_target_default
        utilisation = config.container_concurrency_target_fraction
    target_annotation = _float(annotations, "target")
    if target_annotation is not None and target_annotation > 0:
        total = target_annotation
        if metric == METRIC_CONCURRENCY and container_concurrency:
            # Never aim above what one pod is allowed to take.
            total = min(target_annotation, float(container_concurrency))
    percentage = _float(annotations, "target-utilization-percentage")
    if percentage is not None and percentage > 0:
        utilisation = percentage / 100.0

    stable_window = _duration(annotations, "window")
    if stable_window is None or not WINDOW_MIN <= stable_window <= WINDOW_MAX:
        stable_window = config.stable_window
    panic_percentage = _float(annotations, "panic-window-percentage")
    if panic_percentage is None or not 1.0 <= panic_percentage <= 100.0:
        panic_percentage = config.panic_window_percentage
    panic_window = max(BUCKET_SECONDS, float(round(stable_window * panic_percentage / 100.0)))
    threshold = _float(annotations, "panic-threshold-percentage")
    if threshold is None or threshold <= 0:
        threshold = config.panic_threshold_percentage

    tbc = _float(annotations, "target-burst-capacity")
    if tbc is None or (tbc < 0 and tbc != -1):
        tbc = config.target_burst_capacity
    delay = _duration(annotations, "scale-down-delay")
    if delay is None or delay < 0:
        delay = config.scale_down_delay

    min_scale = 0  # an unreachable revision (routingState reserve) may go to zero
    if reachable:
        annotated_min = _int(annotations, "min-scale")
        min_scale = config.min_scale if annotated_min is None or annotated_min < 0 else annotated_min
    max_scale = _int(annotations, "max-scale")
    if max_scale is None or max_scale < 0:
        max_scale = config.max_scale
    initial_scale = _int(annotations, "initial-scale")
    if initial_scale is None or initial_scale < 0 or (initial_scale == 0 and not config.allow_zero_initial_scale):
        initial_scale = config.initial_scale
    activation_scale = _int(annotations, "activation-scale") or 0
    retention = _duration(annotations, "scale-to-zero-pod-retention-period")
    if retention is None or retention < 0:
        retention = config.scale_to_zero_pod_retention_period

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
        scale_to_zero_grace_period=config.scale_to_zero_grace_period,
        scale_to_zero_pod_retention_period=0.0 if not reachable else retention,
    )
