"""Scraping a revision's queue-proxies: sample the pods, fetch their stats, extrapolate.

``scrape_revision`` does one scrape the way Knative's pod scraper does: as many workers as
the population sample size (``collector.population_mean_sample_size``), each taking the next
pod in the planned order (old pods first, shuffled) until one answers; the sum is scaled
to the whole population. When too few pods answer the scrape fails rather than guess.
``StatsFetcher`` is the boundary; ``HttpStatsFetcher`` does ``GET http://<podIP>:9090/stats``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from typing import Protocol

import aiohttp

from autoscaler.collector import ScrapeTarget, extrapolate, plan_scrape
from knserve.networking import AUTOSCALING_STATS_PORT, STATS_PATH
from knserve.stats_wire import Stat, WireError, decode_stat

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 3.0  # Knative's httpClientTimeout


class ScrapeFailed(Exception):
    """Too few pods answered for a meaningful estimate."""


class StatsFetcher(Protocol):
    async def fetch(self, ip: str) -> Stat: ...


def default_stats_url(ip: str) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{AUTOSCALING_STATS_PORT}{STATS_PATH}"


class HttpStatsFetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        url_for: Callable[[str], str] = default_stats_url,
        timeout: float = SCRAPE_TIMEOUT,
    ) -> None:
        self._session = session
        self._url_for = url_for
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def fetch(self, ip: str) -> Stat:
        async with self._session.get(self._url_for(ip), timeout=self._timeout) as response:
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message="stats endpoint answered"
                )
            return decode_stat(await response.read())


async def scrape_revision(
    pods: Sequence[ScrapeTarget],
    fetcher: StatsFetcher,
    *,
    now: float,
    stable_window: float,
    rng: random.Random,
) -> Stat | None:
    """One extrapolated stat for the revision; None when it has no pods to scrape."""
    if not pods:
        return None
    sample_size, order = plan_scrape(pods, now=now, stable_window=stable_window, rng=rng)
    remaining = iter(order)
    results: list[Stat] = []

    async def worker() -> bool:
        for ip in remaining:
            try:
                results.append(await fetcher.fetch(ip))
                return True
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, WireError) as error:
                log.info("failed scraping pod %s: %s", ip, error or type(error).__name__)
        return False

    outcomes = await asyncio.gather(*(worker() for _ in range(sample_size)))
    if not all(outcomes):
        raise ScrapeFailed(f"only {len(results)} of {sample_size} sampled pods answered out of {len(pods)}")
    return extrapolate(results, sample_size=sample_size, population=len(pods))
