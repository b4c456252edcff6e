"""The activator's stat pushes carry its service-account token, which the autoscaler accepts."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web

from activator.reporter import HttpStatSender
from autoscaler.auth import ACTIVATOR_ACCOUNT, StatsAuth
from autoscaler.server import stats_app
from autoscaler.service import AutoscalerService
from knserve.clock import FakeClock
from knserve.stats_wire import RevisionStat, Stat
from knserve.tokenfile import TokenFile


class Reviewer:
    async def user_of(self, token: str) -> str | None:
        return ACTIVATOR_ACCOUNT if token == "rotated-token" else None


async def test_pushes_carry_the_token_file_and_follow_its_rotation(tmp_path: Path) -> None:
    service = AutoscalerService.__new__(AutoscalerService)
    recorded: list[RevisionStat] = []
    service.record = recorded.extend  # type: ignore[method-assign, assignment]
    runner = web.AppRunner(stats_app(service, StatsAuth(Reviewer())))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    token = tmp_path / "token"
    token.write_text("first-token\n")
    clock = FakeClock()
    stat = [RevisionStat("default", "hello-00001", Stat("activator", 1.0))]
    try:
        async with aiohttp.ClientSession() as session:
            sender = HttpStatSender(session, f"http://127.0.0.1:{port}", token=TokenFile(token, monotonic=clock.monotonic))
            await sender.send(stat)
            assert recorded == [], "an account the autoscaler does not accept"
            token.write_text("rotated-token\n")
            await sender.send(stat)
            assert recorded == [], "read again only after a minute"
            clock.advance(60)
            await sender.send(stat)
            assert recorded == stat
    finally:
        await runner.cleanup()
