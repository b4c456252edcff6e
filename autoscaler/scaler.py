"""One revision's autoscaling state: its metric windows, its decider and its latest decision.

``RevisionScaler`` is Knative's scaler runner without the goroutines: ``record`` takes a
stat pushed by the activator and says whether the revision must be decided on at once (a
request reached a revision at zero or without a decision yet: the "poke");
``record_scraped`` takes a scrape of the pods, unless it counts on activator stats that have
not reached this autoscaler yet; ``tick`` runs the KPA decision and says whether the
decision changed in a way the PodAutoscaler must hear about (a new desired scale, or excess
burst capacity changing sign). The async shell calls ``tick`` every two seconds and on a
poke.

Pure; ``now`` is an argument.
"""

from __future__ import annotations

import logging

from autoscaler.collector import MetricCollection, NoData
from autoscaler.config import ScalingSpec
from autoscaler.decider import Decider, ScaleResult, initial_excess_burst_capacity
from autoscaler.kpa import SCALE_UNKNOWN, DeciderStatus
from knserve.stats_wire import Stat

log = logging.getLogger(__name__)


def _same_sign(a: int, b: int) -> bool:
    return (a < 0) == (b < 0)


class RevisionScaler:
    def __init__(self, spec: ScalingSpec, *, ready_pods: int, now: float) -> None:
        self._spec = spec
        self.collection = MetricCollection(stable_window=spec.stable_window, panic_window=spec.panic_window)
        self.decider = Decider(spec, ready_pods=ready_pods, now=now)
        self.status = DeciderStatus(SCALE_UNKNOWN, initial_excess_burst_capacity(spec))
        self.last_result: ScaleResult | None = None

    @property
    def spec(self) -> ScalingSpec:
        return self._spec

    @property
    def scrapes_pods(self) -> bool:
        """Pods are scraped unless every request passes the activator (TBC -1)."""
        return self._spec.target_burst_capacity != -1

    def update(self, spec: ScalingSpec, *, now: float) -> None:
        if spec == self._spec:
            return
        self.collection.resize(stable_window=spec.stable_window, panic_window=spec.panic_window, now=now)
        self.decider.update(spec)
        self._spec = spec

    def record_scraped(self, stat: Stat, *, now: float, activator_heard: bool) -> bool:
        """Add a scraped stat; False, adding nothing, when it shows only part of the load.

        The pods report the requests the activator sent them as proxied, and those count only
        through the activator's own stats. Until the activator's stats reach this autoscaler
        (a new autoscaler is reached through its Service, so only once its pod is ready), such
        a scrape would record the activator's requests as no load, and a window opening on
        those seconds reads a fraction of the real load: an autoscaler restarted under steady
        load would scale down. The window opens with the first stats that see the whole load.
        """
        if not activator_heard and (stat.average_proxied_concurrent_requests > 0 or stat.proxied_request_count > 0):
            return False
        self.collection.record(now, stat)
        return True

    def record(self, stat: Stat, *, now: float) -> bool:
        """Add a stat; True when the revision is at zero (or undecided) and this stat carries load.

        Knative pokes only at zero; poking an undecided revision too (an autoscaler that
        restarted while the revision was at zero) saves a cold request up to one tick.
        """
        self.collection.record(now, stat)
        return self.status.desired_scale <= 0 and stat.average_concurrent_requests > 0

    def tick(self, *, now: float, ready_pods: int) -> bool:
        """Decide; True when the PodAutoscaler needs to be reconciled."""
        try:
            stable, panic = self.collection.stable_and_panic(
                self._spec.metric, now, require_data=self.scrapes_pods
            )
        except NoData as reason:
            log.debug("not deciding: %s", reason)
            return False
        result = self.decider.scale(now=now, ready_pods=ready_pods, observed_stable=stable, observed_panic=panic)
        self.last_result = result
        previous = self.status
        self.status = DeciderStatus(result.desired_pod_count, result.excess_burst_capacity)
        return previous.desired_scale != self.status.desired_scale or not _same_sign(
            previous.excess_burst_capacity, self.status.excess_burst_capacity
        )
