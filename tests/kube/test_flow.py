import asyncio

from kube.flow import PriorityGate, is_critical, write_priority
from kube.resources import CONFIGURATIONS, DEPLOYMENTS, EVENTS, KUBE_SERVICES, REVISIONS, ROUTES


async def test_waiting_writes_go_in_priority_order() -> None:
    gate = PriorityGate(1)
    order: list[str] = []
    release = asyncio.Event()

    async def write(name: str, priority: int, hold: asyncio.Event | None = None) -> None:
        async with gate.slot(priority):
            order.append(name)
            if hold is not None:
                await hold.wait()

    first = asyncio.create_task(write("first", 2, release))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(write(name, priority)) for name, priority in
               (("status", 3), ("event", 4), ("create", 0), ("update", 2))]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiting)
    assert order == ["first", "create", "update", "status", "event"]


async def test_a_cancelled_waiter_does_not_leak_its_slot() -> None:
    gate = PriorityGate(1)
    hold = asyncio.Event()

    async def holder() -> None:
        async with gate.slot(0):
            await hold.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter.cancel()
    hold.set()
    await held
    async with asyncio.timeout(1):
        async with gate.slot(0):
            pass


def test_priorities() -> None:
    assert write_priority("create", DEPLOYMENTS) == write_priority("create", CONFIGURATIONS) == write_priority(
        "create", REVISIONS) == 0
    assert is_critical(write_priority("create", DEPLOYMENTS))
    assert write_priority("create", KUBE_SERVICES) == write_priority("create", ROUTES) == 1
    assert not is_critical(write_priority("create", ROUTES))
    assert write_priority("patch", ROUTES) == 2
    assert write_priority("update_status", ROUTES) == 3
    assert write_priority("create", EVENTS) == 4


async def test_slow_low_priority_writes_leave_room_for_critical_ones() -> None:
    gate = PriorityGate(4)
    hold = asyncio.Event()
    admitted: list[str] = []

    async def write(name: str, priority: int) -> None:
        async with gate.slot(priority):
            admitted.append(name)
            await hold.wait()

    slow = [asyncio.create_task(write(f"service-{i}", 1)) for i in range(5)]
    await asyncio.sleep(0)
    critical = asyncio.create_task(write("deployment", 0))
    await asyncio.sleep(0)
    assert admitted == ["service-0", "service-1", "service-2", "service-3", "deployment"]
    hold.set()
    await asyncio.gather(*slow, critical)
    assert sorted(admitted) == sorted([*(f"service-{i}" for i in range(5)), "deployment"])


async def test_other_writes_trickle_while_critical_creates_run() -> None:
    gate = PriorityGate(4, trickle=1)
    critical_done, others_done = asyncio.Event(), asyncio.Event()
    admitted: list[str] = []

    async def write(name: str, priority: int, hold: asyncio.Event) -> None:
        async with gate.slot(priority):
            admitted.append(name)
            await hold.wait()

    creates = [asyncio.create_task(write(f"create-{i}", 0, critical_done)) for i in range(3)]
    await asyncio.sleep(0)
    statuses = [asyncio.create_task(write(f"status-{i}", 3, others_done)) for i in range(4)]
    await asyncio.sleep(0)
    assert admitted == ["create-0", "create-1", "create-2", "status-0"]
    critical_done.set()
    await asyncio.gather(*creates)
    await asyncio.sleep(0)
    assert sorted(admitted[4:]) == ["status-1", "status-2", "status-3"]  # the lane widens again
    others_done.set()
    await asyncio.gather(*statuses)


async def test_critical_creates_have_a_bounded_window_of_their_own() -> None:
    gate = PriorityGate(1, critical_limit=2)
    hold = asyncio.Event()
    admitted: list[str] = []

    async def write(name: str) -> None:
        async with gate.slot(0):
            admitted.append(name)
            await hold.wait()

    creates = [asyncio.create_task(write(f"create-{i}")) for i in range(3)]
    await asyncio.sleep(0)
    assert admitted == ["create-0", "create-1"]
    hold.set()
    await asyncio.gather(*creates)
    assert admitted == ["create-0", "create-1", "create-2"]
