"""Gradual rollout math with an injected clock."""

from __future__ import annotations

import pytest

from serving.reconciler.route.resources.rollout import (
    ConfigurationRollout,
    Rollout,
    advance,
    apply_rollout,
    rollout_duration_seconds,
)
from serving.reconciler.route.resources.traffic import ResolvedTarget

T0 = 1_000_000.0


def latest(revision: str, percent: int = 100) -> list[ResolvedTarget]:
    return [ResolvedTarget(revision, percent, "", "hello", True)]


def test_first_assignment_jumps_straight_to_the_latest() -> None:
    rollout = advance(None, latest("r1"), now=T0, duration=100)
    assert rollout == Rollout((ConfigurationRollout("hello", 100, "r1"),))
    assert not rollout.in_progress(T0)


def test_new_revision_starts_at_one_percent_and_climbs_in_whole_steps() -> None:
    before = advance(None, latest("r1"), now=T0, duration=99)
    rollout = advance(before, latest("r2"), now=T0, duration=99)
    state = rollout.get("hello")
    assert state is not None
    assert state.shares(T0) == (("r1", 99), ("r2", 1))
    assert state.shares(T0 + 1) == (("r1", 98), ("r2", 2))
    assert state.shares(T0 + 49.5) == (("r1", 50), ("r2", 50))
    assert state.shares(T0 + 99) == (("r2", 100),)
    assert rollout.in_progress(T0 + 98.9)
    assert not rollout.in_progress(T0 + 99)
    assert rollout.next_step_at(T0) == pytest.approx(T0 + 1)
    assert rollout.next_step_at(T0 + 1.5) == pytest.approx(T0 + 2)


def test_rollout_settles_once_done_and_survives_serialization() -> None:
    before = advance(None, latest("r1"), now=T0, duration=10)
    rolling = advance(before, latest("r2"), now=T0, duration=10)
    restored = Rollout.from_json(rolling.to_json())
    assert restored == rolling
    done = advance(restored, latest("r2"), now=T0 + 10, duration=10)
    assert done == Rollout((ConfigurationRollout("hello", 100, "r2"),))


def test_a_newer_revision_during_a_rollout_takes_over_from_the_current_split() -> None:
    first = advance(advance(None, latest("r1"), now=T0, duration=100), latest("r2"), now=T0, duration=100)
    second = advance(first, latest("r3"), now=T0 + 49.5, duration=100)
    state = second.get("hello")
    assert state is not None
    assert state.baseline == (("r1", 50), ("r2", 50))
    assert state.shares(T0 + 49.5) == (("r1", 49), ("r2", 50), ("r3", 1))  # the oldest drains first


def test_apply_rollout_expands_the_configuration_target() -> None:
    targets = [ResolvedTarget("pinned", 20, "", "", False), *latest("r2", 80)]
    rollout = advance(advance(None, latest("r1", 80), now=T0, duration=79), latest("r2", 80), now=T0, duration=79)
    assert apply_rollout(targets, rollout, now=T0) == (
        ResolvedTarget("pinned", 20),
        ResolvedTarget("r1", 79, "", "hello", False),
        ResolvedTarget("r2", 1, "", "hello", True),
    )


def test_percent_change_or_no_duration_means_no_rollout() -> None:
    before = advance(None, latest("r1"), now=T0, duration=100)
    assert not advance(before, latest("r2", 50), now=T0, duration=100).in_progress(T0)
    assert not advance(before, latest("r2"), now=T0, duration=0).in_progress(T0)


@pytest.mark.parametrize(
    ("annotations", "default", "want"),
    [
        pytest.param({}, 0, 0.0, id="none"),
        pytest.param({}, 30, 30.0, id="config-network"),
        pytest.param({"serving.knative.dev/rollout-duration": "2m"}, 30, 120.0, id="annotation wins"),
        pytest.param({"serving.knative.dev/rollout-duration": "soon"}, 30, 30.0, id="bad annotation ignored"),
    ],
)
def test_rollout_duration(annotations: dict[str, str], default: int, want: float) -> None:
    assert rollout_duration_seconds(annotations, default) == want


def test_unreadable_state_is_no_state() -> None:
    assert Rollout.from_json("{not json") is None
    assert Rollout.from_json(None) is None
