"""The KPA decision for one revision: observed load in, desired pods and burst capacity out.

Knative's ``pkg/autoscaler/scaling/autoscaler.go``, step for step:

- ``ready = max(1, readyPods)``; ``maxUp = ceil(maxScaleUpRate * ready)``;
  ``maxDown = floor(ready / maxScaleDownRate)`` (0 when the revision is unreachable);
- ``desiredStable = clamp(ceil(stable / TV))``, ``desiredPanic = clamp(ceil(panic / TV))``
  into ``[maxDown, maxUp]``, lifted to ``activation-scale`` when there is any load;
- panic starts when ``ceil(panic / TV) / ready >= panicThreshold`` and ends a stable window
  after the last tick over the threshold; in panic the desired count never goes down;
- with ``scale-down-delay`` the result is the maximum decided over that delay;
- excess burst capacity ``EBC = floor(readyPods * total - TBC - panic)`` (``0`` when TBC is 0,
  ``-1`` when TBC is -1: the activator always stays in the path).

Min/max/initial scale and scale-to-zero are applied later, in ``autoscaler.kpa``, as in
Knative. Pure: ``now`` and the observed values are arguments; logging only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from autoscaler.buckets import MaxWindow
from autoscaler.config import ScalingSpec

TICK_SECONDS = 2.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScaleResult:
    desired_pod_count: int
    excess_burst_capacity: int
    in_panic: bool = False
    observed_stable: float = 0.0
    observed_panic: float = 0.0


def initial_excess_burst_capacity(spec: ScalingSpec) -> int:
    """EBC before any decision: what ``initial-scale`` pods would leave over TBC."""
    if spec.target_burst_capacity in (-1, 0):
        return int(spec.target_burst_capacity)
    return math.floor(spec.initial_scale * spec.total - spec.target_burst_capacity)


def excess_burst_capacity(spec: ScalingSpec, *, ready_pods: int, observed_panic: float) -> int:
    if spec.target_burst_capacity == 0:
        return 0
    if spec.target_burst_capacity < 0:
        return -1
    return math.floor(ready_pods * spec.total - spec.target_burst_capacity - observed_panic)


class Decider:
    """One revision's KPA state: the panic clock, the panic floor and the delay window."""

    def __init__(self, spec: ScalingSpec, *, ready_pods: int, now: float) -> None:
        self._spec = spec
        self._delay = self._make_delay_window(spec)
        # A decider created while more than one pod runs (an autoscaler restart) starts in
        # panic so it keeps the current scale until it has data again.
        self._panic_since: float | None = now if ready_pods > 1 else None
        self._max_panic_pods = ready_pods

    @staticmethod
    def _make_delay_window(spec: ScalingSpec) -> MaxWindow | None:
        return MaxWindow(spec.scale_down_delay, TICK_SECONDS) if spec.scale_down_delay > 0 else None

    @property
    def spec(self) -> ScalingSpec:
        return self._spec

    @property
    def in_panic(self) -> bool:
        return self._panic_since is not None

    def update(self, spec: ScalingSpec) -> None:
        if spec.scale_down_delay != self._spec.scale_down_delay:
            self._delay = self._make_delay_window(spec)
        self._spec = spec

    def scale(self, *, now: float, ready_pods: int, observed_stable: float, observed_panic: float) -> ScaleResult:
        spec = self._spec
        ready = float(max(1, ready_pods))
        max_up = math.ceil(spec.max_scale_up_rate * ready)
        max_down = math.floor(ready / spec.max_scale_down_rate) if spec.reachable else 0

        want_stable = math.ceil(observed_stable / spec.target)
        want_panic = math.ceil(observed_panic / spec.target)
        desired_stable = min(max(want_stable, max_down), max_up)
        desired_panic = min(max(want_panic, max_down), max_up)
        if spec.activation_scale > 1:
            if want_stable > 0:
                desired_stable = max(desired_stable, spec.activation_scale)
            if want_panic > 0:
                desired_panic = max(desired_panic, spec.activation_scale)

        over_threshold = want_panic / ready >= spec.panic_threshold
        if over_threshold:
            if self._panic_since is None:
                log.info("panicking: panic load %.3f over %d ready pods", observed_panic, ready_pods)
            self._panic_since = now
        elif self._panic_since is not None and self._panic_since + spec.stable_window < now:
            log.info("leaving panic mode")
            self._panic_since = None
            self._max_panic_pods = 0

        desired = desired_stable
        if self._panic_since is not None:
            # Provision for the larger of the two, and never go down while panicking.
            desired = max(desired_stable, desired_panic, self._max_panic_pods)
            self._max_panic_pods = desired

        if spec.reachable and self._delay is not None:
            self._delay.record(now, desired)
            desired = self._delay.current()

        return ScaleResult(
            desired_pod_count=desired,
            excess_burst_capacity=excess_burst_capacity(spec, ready_pods=ready_pods, observed_panic=observed_panic),
            in_panic=self._panic_since is not None,
            observed_stable=observed_stable,
            observed_panic=observed_panic,
        )
