"""Queued calls as demand: the backlog pushed to the autoscaler, as the activator pushes its
requests (``knserve.stats_wire``), so a Service at zero with calls waiting wakes and one with a
backlog scales to backlog / target (within max-scale).

Every second each replica reads, per Service, the calls no dispatcher holds yet (the
consumer's ``num_pending``; calls being run are counted by the revisions' queue-proxies) and
pushes, for each revision the Service's traffic reaches, its share of that backlog divided by
the number of live queue replicas (each replica keeps a key in the bucket
``knserve-queue-replicas``, which forgets it 10 s after its last write), as that revision's
concurrency. A Service with nothing waiting pushes nothing, so its revisions scale as their
traffic says, to zero included.

``revision_demand`` is pure; ``DemandReporter`` does the I/O (NATS, HTTP to the autoscaler,
the pod's service-account token, which the autoscaler checks).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import aiohttp

from callqueue.directory import Directory
from callqueue.store import JetStreamStore
from knserve.stats_wire import STATS_PUSH_PATH, RevisionStat, Stat, encode_stat_batch

log = logging.getLogger(__name__)

INTERVAL: Final = 1.0
SERVICE_ACCOUNT_TOKEN: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def revision_demand(namespace: str, traffic: Sequence[tuple[str, int]], waiting: int, replicas: int,
                    pod_name: str, now: float) -> list[RevisionStat]:
    """This replica's share of ``waiting`` calls, split over the revisions by their percent."""
    total = sum(percent for _, percent in traffic if percent > 0)
    if waiting <= 0 or total <= 0:
        return []
    share = waiting / max(1, replicas)
    return [RevisionStat(namespace, revision, Stat(pod_name=pod_name, average_concurrent_requests=share * percent / total,
                                                   request_count=0.0, timestamp=now))
            for revision, percent in traffic if percent > 0]


def default_token_path() -> Path:
    """The pod's token: the standard path, else beside ``$KUBECONFIG`` (the local node puts it there)."""
    if SERVICE_ACCOUNT_TOKEN.exists() or not os.environ.get("KUBECONFIG"):
        return SERVICE_ACCOUNT_TOKEN
    return Path(os.environ["KUBECONFIG"]).parent / "token"


class DemandReporter:
    def __init__(self, *, store: JetStreamStore, directory: Directory, autoscaler_url: str, pod_name: str,
                 token_path: Path | None = None) -> None:
        self.store = store
        self.directory = directory
        self.url = autoscaler_url.rstrip("/") + STATS_PUSH_PATH
        self.pod_name = pod_name
        self.token_path = token_path or default_token_path()
        self._complained = 0.0

    def _token(self) -> str | None:
        try:
            return self.token_path.read_text().strip() or None
        except OSError:
            return None

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                await asyncio.sleep(INTERVAL)
                try:
                    await self.report(session)
                except Exception as error:  # NATS or the autoscaler away: try again next second
                    if time.monotonic() - self._complained > 60:
                        self._complained = time.monotonic()
                        log.warning("reporting the backlog to the autoscaler: %r", error)

    async def report(self, session: aiohttp.ClientSession) -> None:
        replicas = await self.store.heartbeat(self.pod_name)
        messages: list[RevisionStat] = []
        for namespace, service in await self.store.services():
            target = self.directory.service(namespace, service)
            if target is None or not target.traffic:
                continue
            backlog = await self.store.backlog(namespace, service)
            messages += revision_demand(namespace, target.traffic, backlog.waiting, replicas, self.pod_name,
                                        time.time())
        if not messages:
            return
        headers = {"Content-Type": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with session.post(self.url, data=encode_stat_batch(messages), headers=headers) as response:
            if response.status >= 300:
                raise RuntimeError(f"the autoscaler answered {response.status}: {(await response.text())[:200]}")
