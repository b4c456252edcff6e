"""The activator's capacity accounting and pod choice, without sockets."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from activator.throttler import QueueFull, RevisionThrottler


def make(cc: int, *, depth: int = 10, pods: tuple[str, ...] = ()) -> RevisionThrottler[str]:
    throttler: RevisionThrottler[str] = RevisionThrottler(
        container_concurrency=cc, queue_depth=depth, rng=random.Random(7)
    )
    throttler.update_pods(pods)
    return throttler


def test_without_pods_requests_queue_and_go_when_a_pod_appears() -> None:
    throttler = make(0)
    assert throttler.acquire("r1") is None
    assert throttler.acquire("r2") is None
    assert throttler.queued == 2
    assert throttler.update_pods(["10.0.0.1"]) == [("r1", "10.0.0.1"), ("r2", "10.0.0.1")]
    assert throttler.queued == 0


def test_the_queue_is_bounded() -> None:
    throttler = make(1, depth=2)
    throttler.acquire("a")
    throttler.acquire("b")
    with pytest.raises(QueueFull):
        throttler.acquire("c")


def test_cancelled_waiters_leave_the_queue() -> None:
    throttler = make(1, depth=1)
    throttler.acquire("a")
    assert throttler.cancel("a")
    assert not throttler.cancel("a")
    throttler.acquire("b")  # room again
    assert throttler.update_pods(["p"]) == [("b", "p")]


def test_cc_1_never_sends_two_at_once_to_one_pod() -> None:
    throttler = make(1, pods=("p1", "p2"))
    assert throttler.acquire("a") == "p1"
    assert throttler.acquire("b") == "p2"
    assert throttler.acquire("c") is None
    assert throttler.in_flight_to("p1") == 1 and throttler.in_flight_to("p2") == 1
    assert throttler.release("p2") == [("c", "p2")]
    assert throttler.in_flight_to("p2") == 1


def test_small_cc_fills_the_first_free_pod() -> None:
    throttler = make(2, pods=("p2", "p1"))
    assert [throttler.acquire(name) for name in "abcd"] == ["p1", "p1", "p2", "p2"]
    assert throttler.acquire("e") is None
    assert throttler.capacity == 0


def test_larger_cc_round_robins_over_free_pods() -> None:
    throttler = make(5, pods=("p1", "p2", "p3"))
    assert [throttler.acquire(str(i)) for i in range(6)] == ["p1", "p2", "p3", "p1", "p2", "p3"]
    for i in range(9):  # 15 in flight: every pod at its 5
        assert throttler.acquire(f"x{i}") is not None
    assert throttler.acquire("waits") is None
    assert throttler.release("p2") == [("waits", "p2")]  # the only free slot
    throttler.release("p3")
    assert throttler.acquire("next") == "p3"


def test_unlimited_cc_balances_by_in_flight_load() -> None:
    throttler = make(0, pods=("p1", "p2", "p3", "p4"))
    for i in range(400):
        throttler.acquire(str(i))
    loads = Counter({pod: throttler.in_flight_to(pod) for pod in throttler.pods})
    assert max(loads.values()) - min(loads.values()) <= 2
    assert throttler.capacity is None


def test_waiters_are_served_in_arrival_order() -> None:
    throttler = make(1, pods=("p",))
    throttler.acquire("first")
    for name in ("a", "b", "c"):
        throttler.acquire(name)
    assert throttler.release("p") == [("a", "p")]
    assert throttler.release("p") == [("b", "p")]


def test_a_new_arrival_does_not_overtake_the_queue() -> None:
    throttler = make(1, pods=())
    throttler.acquire("early")
    throttler.update_concurrency(1)
    assert throttler.acquire("late") is None
    assert throttler.update_pods(["p"]) == [("early", "p")]


def test_removed_pods_take_no_new_requests_and_their_releases_are_ignored() -> None:
    throttler = make(1, pods=("p1", "p2"))
    assert throttler.acquire("a") == "p1"
    throttler.update_pods(["p2"])
    assert throttler.release("p1") == []
    assert throttler.acquire("b") == "p2"
    assert throttler.acquire("c") is None


def test_existing_pods_keep_their_in_flight_count_across_updates() -> None:
    throttler = make(1, pods=("p1",))
    throttler.acquire("a")
    throttler.update_pods(["p1", "p2"])
    assert throttler.in_flight_to("p1") == 1
    assert throttler.acquire("b") == "p2"
