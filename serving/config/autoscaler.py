"""``config-autoscaler``: the cluster-wide KPA settings (Knative's keys, defaults and checks).

Durations are held in seconds; percentages as Knative's ConfigMap writes them, except
``container_concurrency_target_fraction`` (70% -> 0.7), as Knative stores it.
Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from knserve.networking import KPA_CLASS
from serving.config.parsers import Reader, format_duration, format_float

NAME: Final = "config-autoscaler"
TARGET_MIN: Final = 0.01
WINDOW_MIN_SECONDS: Final = 6.0
WINDOW_MAX_SECONDS: Final = 3600.0
PANIC_WINDOW_PERCENTAGE_MIN: Final = 1.0
PANIC_WINDOW_PERCENTAGE_MAX: Final = 100.0
PANIC_THRESHOLD_PERCENTAGE_MIN: Final = 110.0
PANIC_THRESHOLD_PERCENTAGE_MAX: Final = 1000.0


@dataclasses.dataclass(frozen=True)
class AutoscalerConfig:
    enable_scale_to_zero: bool = True
    container_concurrency_target_fraction: float = 0.7
    container_concurrency_target_default: float = 100.0
    target_utilization: float = 0.7
    rps_target_default: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    target_burst_capacity: float = 211.0
    panic_window_percentage: float = 10.0
    activator_capacity: float = 100.0
    panic_threshold_percentage: float = 200.0
    stable_window_seconds: float = 60.0
    scale_to_zero_grace_period_seconds: float = 30.0
    scale_to_zero_pod_retention_period_seconds: float = 0.0
    scale_down_delay_seconds: float = 0.0
    pod_autoscaler_class: str = KPA_CLASS
    allow_zero_initial_scale: bool = False
    initial_scale: int = 1
    min_scale: int = 0
    max_scale: int = 0
    max_scale_limit: int = 0

    @classmethod
    def from_data(cls, data: Mapping[str, str] | None) -> AutoscalerConfig:
        read = Reader(NAME, data)
        fraction = read.number(0.7, "container-concurrency-target-percentage")
        if fraction > 1.0:
            fraction /= 100.0
        config = cls(
            enable_scale_to_zero=read.boolean(True, "enable-scale-to-zero"),
            container_concurrency_target_fraction=fraction,
            container_concurrency_target_default=read.number(100.0, "container-concurrency-target-default"),
            target_utilization=fraction,
            rps_target_default=read.number(200.0, "requests-per-second-target-default"),
            max_scale_up_rate=read.number(1000.0, "max-scale-up-rate"),
            max_scale_down_rate=read.number(2.0, "max-scale-down-rate"),
            target_burst_capacity=read.number(211.0, "target-burst-capacity"),
            panic_window_percentage=read.number(10.0, "panic-window-percentage"),
            activator_capacity=read.number(100.0, "activator-capacity"),
            panic_threshold_percentage=read.number(200.0, "panic-threshold-percentage"),
            stable_window_seconds=read.duration(60.0, "stable-window"),
            scale_to_zero_grace_period_seconds=read.duration(30.0, "scale-to-zero-grace-period"),
            scale_to_zero_pod_retention_period_seconds=read.duration(0.0, "scale-to-zero-pod-retention-period"),
            scale_down_delay_seconds=read.duration(0.0, "scale-down-delay"),
            pod_autoscaler_class=read.string(KPA_CLASS, "pod-autoscaler-class"),
            allow_zero_initial_scale=read.boolean(False, "allow-zero-initial-scale"),
            initial_scale=read.integer(1, "initial-scale"),
            min_scale=read.integer(0, "min-scale"),
            max_scale=read.integer(0, "max-scale"),
            max_scale_limit=read.integer(0, "max-scale-limit"),
        )
        config._check(read)
        return config

    def _check(self, read: Reader) -> None:  # noqa: C901 - one rule a line, as Knative lists them
        def fail(key: str, problem: str) -> None:
            raise read.error(key, problem)

        if self.scale_to_zero_grace_period_seconds <= 0:
            fail("scale-to-zero-grace-period", f"must be positive, was: {format_duration(self.scale_to_zero_grace_period_seconds)}")
        if self.scale_down_delay_seconds < 0:
            fail("scale-down-delay", f"cannot be negative, was: {format_duration(self.scale_down_delay_seconds)}")
        if self.scale_down_delay_seconds != round(self.scale_down_delay_seconds):
            fail("scale-down-delay", "must be specified with at most second precision")
        if self.scale_to_zero_pod_retention_period_seconds < 0:
            fail("scale-to-zero-pod-retention-period", "cannot be negative")
        if self.target_burst_capacity < 0 and self.target_burst_capacity != -1:
            fail("target-burst-capacity", "must be either non-negative or -1 (for unlimited)")
        if not 0 < self.container_concurrency_target_fraction <= 1:
            fail("container-concurrency-target-percentage", "is outside of valid range of (0, 100]")
        if self.container_concurrency_target_fraction * self.container_concurrency_target_default < TARGET_MIN:
            fail("container-concurrency-target-default", f"yields a target concurrency below {format_float(TARGET_MIN)}")
        if self.rps_target_default < TARGET_MIN:
            fail("requests-per-second-target-default", f"must be at least {format_float(TARGET_MIN)}")
        if self.activator_capacity < 1:
            fail("activator-capacity", "must be at least 1")
        if self.max_scale_up_rate <= 1.0:
            fail("max-scale-up-rate", "must be greater than 1.0")
        if self.max_scale_down_rate <= 1.0:
            fail("max-scale-down-rate", "must be greater than 1.0")
        if not WINDOW_MIN_SECONDS <= self.stable_window_seconds <= WINDOW_MAX_SECONDS:
            fail("stable-window", f"must be in [6s; 1h0m0s] range, was {format_duration(self.stable_window_seconds)}")
        if self.stable_window_seconds != round(self.stable_window_seconds):
            fail("stable-window", "must be specified with at most second precision")
        if not PANIC_WINDOW_PERCENTAGE_MIN <= self.panic_window_percentage <= PANIC_WINDOW_PERCENTAGE_MAX:
            fail("panic-window-percentage", "must be in [1, 100] interval")
        if not PANIC_THRESHOLD_PERCENTAGE_MIN <= self.panic_threshold_percentage <= PANIC_THRESHOLD_PERCENTAGE_MAX:
            fail("panic-threshold-percentage", "must be in [110, 1000] interval")
        if self.initial_scale < 0 or (self.initial_scale == 0 and not self.allow_zero_initial_scale):
            fail("initial-scale", "must be at least 0 (or at least 1 when allow-zero-initial-scale is false)")
        if self.min_scale < 0:
            fail("min-scale", "must be at least 0")
        if self.max_scale_limit < 0:
            fail("max-scale-limit", "must be at least 0")
        lowest = 1 if self.max_scale_limit > 0 else 0
        if self.max_scale < lowest or (self.max_scale_limit > 0 and self.max_scale > self.max_scale_limit):
            fail("max-scale", f"must be in [{lowest}, max-scale-limit({self.max_scale_limit})] range")
        if self.min_scale > self.max_scale > 0:
            fail("min-scale", f"({self.min_scale}) must be less than max-scale ({self.max_scale})")
