import asyncio

from kube.workqueue import WorkQueue


async def test_dedup_and_requeue_while_processing() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    key = await queue.get()
    assert key == "a"
    queue.add("a")  # changed while being worked on: not handed to a second worker
    assert await queue.get() == "b"
    assert len(queue) == 0
    queue.done("a")
    assert await queue.get() == "a"


async def test_rate_limited_backoff_grows_and_forget_resets() -> None:
    queue = WorkQueue(base_delay=0.001, max_delay=0.004)
    for _ in range(5):
        queue.add_rate_limited("k")
    assert queue.failures("k") == 5
    async with asyncio.timeout(2):
        assert await queue.get() == "k"
    queue.forget("k")
    assert queue.failures("k") == 0


async def test_add_after_keeps_the_earliest_timer() -> None:
    queue = WorkQueue()
    queue.add_after("k", 100)
    queue.add_after("k", 0.01)
    async with asyncio.timeout(2):
        assert await queue.get() == "k"
    queue.done("k")
    assert queue.is_idle
