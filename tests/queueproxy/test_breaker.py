"""Breaker capacity logic, no I/O."""

from __future__ import annotations

import pytest

from queueproxy.breaker import Admission, Breaker


def test_admits_up_to_concurrency_then_queues_then_rejects() -> None:
    breaker: Breaker[str] = Breaker(concurrency=2, queue_depth=20)
    assert [breaker.admit(f"r{index}") for index in range(2)] == [Admission.ADMITTED] * 2
    assert [breaker.admit(f"w{index}") for index in range(20)] == [Admission.QUEUED] * 20
    assert breaker.admit("too-many") is Admission.REJECTED
    assert (breaker.in_flight, breaker.waiting, breaker.depth) == (2, 20, 22)


def test_release_hands_the_slot_to_the_oldest_waiter() -> None:
    breaker: Breaker[str] = Breaker(concurrency=1, queue_depth=10)
    breaker.admit("first")
    breaker.admit("second")
    breaker.admit("third")
    assert breaker.release() == "second"
    assert breaker.in_flight == 1 and breaker.waiting == 1
    assert breaker.release() == "third"
    assert breaker.release() is None
    assert breaker.in_flight == 0


def test_cancelled_waiters_free_their_queue_place() -> None:
    breaker: Breaker[str] = Breaker(concurrency=1, queue_depth=1)
    breaker.admit("running")
    assert breaker.admit("waiting") is Admission.QUEUED
    assert breaker.admit("refused") is Admission.REJECTED
    assert breaker.cancel("waiting") is True
    assert breaker.cancel("waiting") is False
    assert breaker.admit("next") is Admission.QUEUED
    assert breaker.release() == "next"


def test_zero_concurrency_means_unlimited() -> None:
    breaker: Breaker[int] = Breaker(concurrency=0, queue_depth=0)
    assert all(breaker.admit(index) is Admission.ADMITTED for index in range(10_000))
    assert breaker.unlimited and breaker.in_flight == 10_000
    assert breaker.release() is None and breaker.in_flight == 9_999


@pytest.mark.parametrize(("concurrency", "queue_depth"), [(-1, 0), (1, -1)])
def test_rejects_negative_sizes(concurrency: int, queue_depth: int) -> None:
    with pytest.raises(ValueError):
        Breaker(concurrency=concurrency, queue_depth=queue_depth)


def test_releasing_more_than_admitted_is_a_bug() -> None:
    breaker: Breaker[str] = Breaker(concurrency=1, queue_depth=0)
    with pytest.raises(RuntimeError):
        breaker.release()
