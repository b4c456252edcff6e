"""Crash back-off: immediate first restart, then 10 s doubling to 5 min, reset after 10 min."""

from __future__ import annotations

import pytest

from node.backoff import RestartBackoff, should_restart


def delays(crash_times_after_restart: list[float]) -> list[float]:
    """The restart delay after each crash; each crash comes that long after the last restart."""
    backoff = RestartBackoff()
    now = 0.0
    backoff.note_start(now)
    seen = []
    for ran_for in crash_times_after_restart:
        finished = now + ran_for
        restart = backoff.restart_at(finished)
        seen.append(restart - finished)
        now = restart
        backoff.record_restart(finished_at=finished, now=now)
    return seen


def test_delays_double_up_to_five_minutes() -> None:
    assert delays([1.0] * 8) == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]


def test_a_long_run_resets_the_sequence() -> None:
    assert delays([1.0, 1.0, 1.0, 601.0, 1.0]) == [0.0, 10.0, 20.0, 0.0, 10.0]


@pytest.mark.parametrize(
    ("policy", "exit_code", "want"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 2, True),
        ("Never", 1, False),
    ],
)
def test_should_restart(policy: str, exit_code: int, want: bool) -> None:
    assert should_restart(policy, exit_code) is want
