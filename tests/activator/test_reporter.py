"""Pushing the activator's stats: first-request stats of many revisions share a round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from activator.reporter import StatPusher
from activator.stats import ConcurrencyReporter
from knserve.stats_wire import RevisionStat, Stat


class SlowSender:
    """An autoscaler that takes its time to answer each post; records what each post held."""

    def __init__(self) -> None:
        self.posts: list[list[str]] = []
        self.answer = asyncio.Event()

    async def send(self, messages: Sequence[RevisionStat]) -> None:
        self.posts.append([message.revision for message in messages])
        await self.answer.wait()
        self.answer.clear()


async def test_pokes_queued_during_a_post_go_out_together_in_order() -> None:
    sender = SlowSender()
    pusher = StatPusher(ConcurrencyReporter("activator-0"), sender, interval=3600)
    run = asyncio.create_task(pusher.run())
    try:
        pusher.send_now(RevisionStat("default", "first", Stat("activator-0", 1.0)))
        async with asyncio.timeout(5):
            while not sender.posts:
                await asyncio.sleep(0.01)
        # While the first post is under way, nineteen more revisions are woken.
        for index in range(2, 21):
            pusher.send_now(RevisionStat("default", f"rev-{index}", Stat("activator-0", 1.0)))
        sender.answer.set()
        async with asyncio.timeout(5):
            while len(sender.posts) < 2:
                await asyncio.sleep(0.01)
        sender.answer.set()
        assert sender.posts == [["first"], [f"rev-{index}" for index in range(2, 21)]]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
