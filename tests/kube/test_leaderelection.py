"""Leader election over a Lease: one holder at a time, take-over after expiry or release."""

from __future__ import annotations

import asyncio

import pytest

from knserve.clock import FakeClock
from kube.errors import ApiError
from kube.fake import FakeKubeClient
from kube.leaderelection import LeaderElector, LeadershipLost, LeaseRecord, can_take
from kube.resources import LEASES

NS, NAME = "knative-serving", "knserve-controller"


@pytest.mark.parametrize(("record", "observed_at", "now", "want"), [
    pytest.param(LeaseRecord(), 0.0, 0.0, True, id="nobody-holds-it"),
    pytest.param(LeaseRecord(holder="me", lease_duration_seconds=15), 0.0, 1.0, True, id="mine"),
    pytest.param(LeaseRecord(holder="other", lease_duration_seconds=15), 0.0, 14.9, False, id="held-and-fresh"),
    pytest.param(LeaseRecord(holder="other", lease_duration_seconds=15), 0.0, 15.0, True, id="held-and-expired"),
    pytest.param(LeaseRecord(holder="other", lease_duration_seconds=15), 10.0, 20.0, False,
                 id="expiry-counts-from-when-the-record-last-changed"),
])
def test_can_take(record: LeaseRecord, observed_at: float, now: float, want: bool) -> None:
    assert can_take(record, "me", observed_at=observed_at, now=now, lease_duration=15.0) is want


def elector(client: FakeKubeClient, identity: str, clock: FakeClock, *, retry_period: float = 2.0) -> LeaderElector:
    # The fake clock moves only when told; retry_period is real waiting (asyncio.sleep).
    return LeaderElector(client, namespace=NS, name=NAME, identity=identity, lease_duration=15.0,
                         renew_deadline=10.0, retry_period=retry_period, clock=clock)


def holder(client: FakeKubeClient) -> str:
    lease = client.peek(LEASES, NS, NAME)
    assert lease is not None
    return str(lease["spec"]["holderIdentity"])


async def test_the_first_candidate_creates_the_lease_and_a_second_stands_by() -> None:
    client, clock = FakeKubeClient(), FakeClock()
    first, second = elector(client, "a", clock), elector(client, "b", clock)
    await first.acquire()
    assert first.is_leader and holder(client) == "a"
    assert not await second.try_acquire_or_renew()
    clock.advance(14.0)
    assert not await second.try_acquire_or_renew()  # renewed by nobody yet, but not expired
    assert holder(client) == "a"


async def test_a_standby_takes_an_expired_lease_and_the_old_leader_finds_out() -> None:
    client, clock = FakeKubeClient(), FakeClock()
    first, second = elector(client, "a", clock, retry_period=0.01), elector(client, "b", clock)
    await first.acquire()
    assert not await second.try_acquire_or_renew()
    clock.advance(15.0)  # "a" stalled: no renewal for a whole lease duration
    assert await second.try_acquire_or_renew()
    lease = client.peek(LEASES, NS, NAME)
    assert lease is not None and lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    with pytest.raises(LeadershipLost, match="held by b"):
        await asyncio.wait_for(first.hold(), 5.0)


async def test_a_released_lease_is_taken_at_the_next_look() -> None:
    client, clock = FakeKubeClient(), FakeClock()
    first, second = elector(client, "a", clock), elector(client, "b", clock)
    await first.acquire()
    assert not await second.try_acquire_or_renew()
    await first.release()
    assert not first.is_leader and holder(client) == ""
    assert await second.try_acquire_or_renew()
    assert holder(client) == "b"


async def test_a_leader_that_cannot_renew_for_the_deadline_gives_up() -> None:
    client, clock = FakeKubeClient(), FakeClock()
    leader = elector(client, "a", clock, retry_period=0.01)
    await leader.acquire()
    client.fail_on("get", LEASES, ApiError(500, "InternalError", "etcd is away"), times=10_000)
    renewing = asyncio.create_task(leader.hold())
    await asyncio.sleep(0.05)
    assert not renewing.done()  # failures within the deadline are retried
    clock.advance(10.0)
    with pytest.raises(LeadershipLost, match="not renewed"):
        await asyncio.wait_for(renewing, 5.0)
    assert not leader.is_leader
