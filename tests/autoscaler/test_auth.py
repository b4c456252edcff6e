"""Who may push stats: only a token the API server says is the activator's."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from autoscaler.auth import ACTIVATOR_ACCOUNT, StatsAuth
from autoscaler.server import stats_app
from autoscaler.service import AutoscalerService
from knserve.clock import FakeClock
from knserve.stats_wire import STATS_PUSH_PATH, RevisionStat, Stat, encode_stat_batch


class FakeReviewer:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.reviews: list[str] = []

    async def user_of(self, token: str) -> str | None:
        self.reviews.append(token)
        return self.users.get(token)


USERS = {"activator-token": ACTIVATOR_ACCOUNT, "other-token": "system:serviceaccount:tenant:default"}


@pytest.mark.parametrize(("authorization", "allowed"), [
    pytest.param("Bearer activator-token", True, id="the-activator"),
    pytest.param("bearer activator-token", True, id="scheme-any-case"),
    pytest.param("Bearer other-token", False, id="another-account"),
    pytest.param("Bearer made-up", False, id="no-account"),
    pytest.param("Basic activator-token", False, id="not-a-bearer-token"),
    pytest.param(None, False, id="no-header"),
])
async def test_only_the_activators_token_may_push(authorization: str | None, allowed: bool) -> None:
    assert await StatsAuth(FakeReviewer(USERS)).allows(authorization) is allowed


async def test_answers_are_remembered_for_a_while() -> None:
    clock = FakeClock()
    reviewer = FakeReviewer(USERS)
    auth = StatsAuth(reviewer, clock=clock)
    for _ in range(5):
        assert await auth.allows("Bearer activator-token")
        assert not await auth.allows("Bearer made-up")
    assert reviewer.reviews == ["activator-token", "made-up"]
    clock.advance(61)
    await auth.allows("Bearer activator-token")
    assert reviewer.reviews[-1] == "activator-token" and len(reviewer.reviews) == 3


async def test_the_stats_port_refuses_pushes_without_the_token() -> None:
    service = AutoscalerService.__new__(AutoscalerService)  # record() is the only thing push calls
    recorded: list[object] = []
    service.record = recorded.extend  # type: ignore[method-assign, assignment]
    runner = web.AppRunner(stats_app(service, StatsAuth(FakeReviewer(USERS))))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    batch = encode_stat_batch([RevisionStat("default", "hello-00001", Stat("activator", 50.0))])
    try:
        async with aiohttp.ClientSession() as session:
            for headers in ({}, {"Authorization": "Bearer other-token"}):
                async with session.post(f"http://127.0.0.1:{port}{STATS_PUSH_PATH}", data=batch, headers=headers) as response:
                    assert response.status == 401
                    assert "only the activator may push stats" in await response.text()
            assert recorded == []
            async with session.post(f"http://127.0.0.1:{port}{STATS_PUSH_PATH}", data=batch,
                                    headers={"Authorization": "Bearer activator-token"}) as response:
                assert response.status == 202, await response.text()
        assert len(recorded) == 1
    finally:
        await runner.cleanup()
