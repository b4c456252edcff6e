"""The drainer's quiet period, fed explicit times."""

from __future__ import annotations

from queueproxy.drain import Drainer


def test_not_draining_until_started() -> None:
    drainer = Drainer(quiet_period=30)
    assert not drainer.draining and drainer.deadline() is None and not drainer.drained(1e9)


def test_drained_after_a_quiet_period_with_no_request() -> None:
    drainer = Drainer(quiet_period=30)
    drainer.start(100.0)
    assert drainer.deadline() == 130.0
    assert not drainer.drained(129.9)
    assert drainer.drained(130.0)


def test_each_request_pushes_the_end_back() -> None:
    drainer = Drainer(quiet_period=30)
    drainer.request_seen(90.0)  # before the drain: irrelevant
    drainer.start(100.0)
    drainer.request_seen(120.0)
    assert drainer.deadline() == 150.0 and not drainer.drained(140.0)
    drainer.request_seen(110.0)  # out of order: the latest one counts
    assert drainer.deadline() == 150.0


def test_starting_twice_keeps_the_first_start() -> None:
    drainer = Drainer(quiet_period=1)
    drainer.start(10.0)
    drainer.start(20.0)
    assert drainer.deadline() == 11.0
