"""Sending the activator's stats to the autoscaler (format: ``knserve.stats_wire``).

``StatPusher`` owns two things: a ticker that cuts a report from the ``ConcurrencyReporter``
every second, and one sender task that posts batches in order. ``send_now`` queues the
first-request stat of a revision ahead of the next tick, which is what wakes a revision at
zero without waiting a second. Whatever queued up while a post was under way goes out in
the next post, so twenty revisions woken at once reach the autoscaler in one or two
round trips rather than twenty in a row. ``StatSender`` is the boundary; ``HttpStatSender`` posts JSON
to the autoscaler and logs (at most once a minute) when it cannot. The autoscaler takes pushed
stats only from the activator's service account: each post carries the pod's service-account
token (:class:`knserve.tokenfile.TokenFile`, re-read every minute as the kubelet rotates it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import aiohttp

from activator.stats import ConcurrencyReporter
from knserve.stats_wire import STATS_PUSH_PATH, RevisionStat, encode_stat_batch

log = logging.getLogger(__name__)

REPORT_INTERVAL = 1.0
_COMPLAIN_EVERY = 60.0


SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def default_token_path() -> Path:
    """The pod's service-account token: the standard path, else beside ``$KUBECONFIG`` (the local node)."""
    if SERVICE_ACCOUNT_TOKEN.exists() or not os.environ.get("KUBECONFIG"):
        return SERVICE_ACCOUNT_TOKEN
    return Path(os.environ["KUBECONFIG"]).parent / "token"


class StatSender(Protocol):
    async def send(self, messages: Sequence[RevisionStat]) -> None: ...


class HttpStatSender:
    def __init__(self, session: aiohttp.ClientSession, autoscaler_url: str, *, timeout: float = 2.0,
                 token: Callable[[], str | None] | None = None) -> None:
        self._session = session
        self._token = token
        self._url = autoscaler_url.rstrip("/") + STATS_PUSH_PATH
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._last_complaint = -_COMPLAIN_EVERY

    async def send(self, messages: Sequence[RevisionStat]) -> None:
        headers = {"Content-Type": "application/json"}
        token = self._token() if self._token is not None else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._session.post(
                self._url,
                data=encode_stat_batch(messages),
                headers=headers,
                timeout=self._timeout,
            ) as response:
                if response.status >= 300:
                    self._complain(f"autoscaler answered {response.status}: {(await response.text())[:200]}")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            self._complain(f"cannot reach the autoscaler at {self._url}: {error or type(error).__name__}")

    def _complain(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_complaint >= _COMPLAIN_EVERY:
            self._last_complaint = now
            log.warning("%s; stats are dropped until it answers", text)


class StatPusher:
    def __init__(
        self,
        reporter: ConcurrencyReporter,
        sender: StatSender,
        *,
        interval: float = REPORT_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._reporter = reporter
        self._sender = sender
        self._interval = interval
        self._monotonic = monotonic
        self._wall = wall
        self._outbox: asyncio.Queue[list[RevisionStat]] = asyncio.Queue()

    def send_now(self, message: RevisionStat) -> None:
        self._outbox.put_nowait([message])

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._tick(), name="activator-stats-tick")
            tasks.create_task(self._send(), name="activator-stats-send")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            messages = self._reporter.report(now=self._monotonic(), timestamp=self._wall())
            if messages:
                self._outbox.put_nowait(messages)

    async def _send(self) -> None:
        while True:
            batch = await self._outbox.get()
            while not self._outbox.empty():
                batch.extend(self._outbox.get_nowait())
            await self._sender.send(batch)
