"""Gradual rollout math: when a Configuration target's latest ready revision changes, the new
revision starts at 1% and moves up in whole-percent steps over the rollout duration.

A ``Rollout`` holds, per Configuration (untagged targets only, as Knative does), the total
percent of its target, the revision rolling in, the older revisions' shares when that
revision appeared (``baseline``), and the start time. ``shares(now)`` gives the split at any
moment: the new revision gets ``1 + floor((P-1) * elapsed / duration)`` (all ``P`` once the
duration has passed); the rest comes from the baseline, newest first. Everything is a pure
function of the state and ``now`` (fed from an injected clock), so a controller restart picks
up exactly where it left off. The state is serialized as JSON for the
``serving.knative.dev/rollout`` annotation (kept in the Route's ``status.annotations``).
Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Final

from knserve.networking import ROLLOUT_DURATION_ANNOTATION
from serving.config.parsers import parse_go_duration
from serving.reconciler.route.resources.traffic import ResolvedTarget

ROLLOUT_ANNOTATION: Final = "serving.knative.dev/rollout"


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigurationRollout:
    configuration: str
    percent: int
    target: str
    baseline: tuple[tuple[str, int], ...] = ()  # older revisions' shares at started_at, oldest first
    started_at: float = 0.0
    duration: float = 0.0

    @property
    def in_progress(self) -> bool:
        return bool(self.baseline)

    def new_share(self, now: float) -> int:
        if not self.in_progress or self.duration <= 0 or self.percent <= 1:
            return self.percent
        elapsed = max(0.0, now - self.started_at)
        if elapsed >= self.duration:
            return self.percent
        return min(self.percent, 1 + math.floor((self.percent - 1) * elapsed / self.duration))

    def shares(self, now: float) -> tuple[tuple[str, int], ...]:
        """(revision, percent), oldest first, the rolling-in revision last; zero shares left out."""
        new = self.new_share(now)
        remaining = self.percent - new
        kept: list[tuple[str, int]] = []
        for revision, percent in reversed(self.baseline):
            share = min(percent, remaining)
            remaining -= share
            if share > 0:
                kept.append((revision, share))
        kept.reverse()
        return (*kept, (self.target, self.percent - sum(p for _, p in kept)))

    def next_step_at(self, now: float) -> float | None:
        """When the new revision's share next grows (None once it has everything)."""
        new = self.new_share(now)
        if new >= self.percent:
            return None
        return self.started_at + self.duration * new / (self.percent - 1)

    def settled(self, now: float) -> ConfigurationRollout:
        """The same rollout, reduced to steady state once it has finished."""
        if self.in_progress and self.new_share(now) >= self.percent:
            return ConfigurationRollout(self.configuration, self.percent, self.target)
        return self


@dataclasses.dataclass(frozen=True, slots=True)
class Rollout:
    configurations: tuple[ConfigurationRollout, ...] = ()

    def get(self, configuration: str) -> ConfigurationRollout | None:
        for rollout in self.configurations:
            if rollout.configuration == configuration:
                return rollout
        return None

    def in_progress(self, now: float) -> bool:
        return any(r.in_progress and r.new_share(now) < r.percent for r in self.configurations)

    def next_step_at(self, now: float) -> float | None:
        times = [t for r in self.configurations if (t := r.next_step_at(now)) is not None]
        return min(times) if times else None

    def to_json(self) -> str:
        return json.dumps({"configurations": [
            {
                "configurationName": r.configuration,
                "percent": r.percent,
                "revisionName": r.target,
                "baseline": [{"revisionName": name, "percent": percent} for name, percent in r.baseline],
                "startTime": r.started_at,
                "duration": r.duration,
            }
            for r in self.configurations
        ]}, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Rollout | None:
        """The stored state, or None when absent or unreadable (then traffic jumps, as on a first
        assignment)."""
        if not text:
            return None
        try:
            raw = json.loads(text)
            return cls(tuple(
                ConfigurationRollout(
                    configuration=str(item["configurationName"]),
                    percent=int(item["percent"]),
                    target=str(item["revisionName"]),
                    baseline=tuple((str(b["revisionName"]), int(b["percent"])) for b in item.get("baseline") or []),
                    started_at=float(item.get("startTime") or 0.0),
                    duration=float(item.get("duration") or 0.0),
                )
                for item in raw.get("configurations") or []
            ))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def rollout_duration_seconds(annotations: Mapping[str, str] | None, default_seconds: float) -> float:
    """The Route's ``serving.knative.dev/rollout-duration`` (a Go duration), else config-network's."""
    raw = (annotations or {}).get(ROLLOUT_DURATION_ANNOTATION)
    if raw:
        try:
            return max(0.0, parse_go_duration(raw))
        except ValueError:
            pass
    return float(default_seconds)


def configuration_totals(targets: Sequence[ResolvedTarget]) -> dict[str, tuple[str, int]]:
    """For each untagged configuration target: (its latest ready revision, total percent)."""
    totals: dict[str, tuple[str, int]] = {}
    for target in targets:
        if target.configuration and not target.tag:
            revision, percent = totals.get(target.configuration, (target.revision, 0))
            totals[target.configuration] = (revision, percent + target.percent)
    return totals


def advance(
    previous: Rollout | None, targets: Sequence[ResolvedTarget], *, now: float, duration: float
) -> Rollout:
    """The rollout state after seeing ``targets`` at ``now``."""
    result = []
    for configuration, (latest, percent) in sorted(configuration_totals(targets).items()):
        before = previous.get(configuration) if previous is not None else None
        if before is None or duration <= 0 or before.percent != percent or percent <= 1:
            result.append(ConfigurationRollout(configuration, percent, latest))
        elif before.target == latest:
            result.append(before.settled(now))
        else:
            baseline = tuple((name, share) for name, share in before.shares(now) if name != latest and share > 0)
            result.append(ConfigurationRollout(configuration, percent, latest, baseline, now, duration).settled(now))
    return Rollout(tuple(result))


def apply_rollout(targets: Sequence[ResolvedTarget], rollout: Rollout, *, now: float) -> tuple[ResolvedTarget, ...]:
    """Replace each untagged configuration target by its current rollout shares."""
    out: list[ResolvedTarget] = []
    done: set[str] = set()
    for target in targets:
        state = rollout.get(target.configuration) if target.configuration and not target.tag else None
        if state is None:
            out.append(target)
            continue
        if target.configuration in done:
            continue
        done.add(target.configuration)
        for revision, share in state.shares(now):
            out.append(ResolvedTarget(revision, share, "", target.configuration, revision == state.target))
    return tuple(out)
