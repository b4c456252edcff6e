"""Reading a Revision's request summary from the autoscaler, for canary analysis.

The autoscaler keeps per-second counts by status class and a latency histogram for every
Revision it scrapes (``knserve.request_metrics``) and answers
``GET <metrics URL>/api/v1/requests/<namespace>/<revision>?since=S&until=U``.
``RequestMetricsReader`` is the boundary: ``HttpRequestMetrics`` asks the autoscaler over HTTP
(``MetricsUnavailable`` with a sentence when it cannot), ``FakeRequestMetrics`` answers from a
table in tests.

Side effects: HTTP to the autoscaler (``HttpRequestMetrics`` only).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Protocol

import aiohttp

from knserve.networking import SYSTEM_NAMESPACE
from knserve.request_metrics import RequestSummary, summary_path
from knserve.stats_wire import WireError

DEFAULT_METRICS_URL = f"http://autoscaler.{SYSTEM_NAMESPACE}.svc.cluster.local:9090"
TIMEOUT_SECONDS = 3.0


class MetricsUnavailable(Exception):
    """No summary could be had; the text says why."""


class RequestMetricsReader(Protocol):
    async def summary(self, namespace: str, revision: str, *, since: float, until: float) -> RequestSummary | None:
        """The Revision's summary over ``[since, until)``; None when the autoscaler has nothing for it."""
        ...


class HttpRequestMetrics:
    def __init__(self, base_url: str = DEFAULT_METRICS_URL, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def summary(self, namespace: str, revision: str, *, since: float, until: float) -> RequestSummary | None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = self.base_url + summary_path(namespace, revision, since=since, until=until)
        try:
            async with self._session.get(url) as response:
                body = await response.read()
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise MetricsUnavailable(
                        f"the autoscaler answered {response.status}: {body[:200].decode(errors='replace').strip()}")
            return RequestSummary.from_json(json.loads(body))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise MetricsUnavailable(f"the autoscaler's metrics could not be read: {error or type(error).__name__}") \
                from None
        except (ValueError, WireError) as error:
            raise MetricsUnavailable(f"the autoscaler's answer was not a request summary: {error}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class FakeRequestMetrics:
    """Summaries from a table keyed by (namespace, revision); ``unavailable`` makes every read fail."""

    def __init__(self, summaries: Mapping[tuple[str, str], RequestSummary] | None = None) -> None:
        self.summaries = dict(summaries or {})
        self.unavailable: str | None = None
        self.reads: list[tuple[str, str, float, float]] = []

    async def summary(self, namespace: str, revision: str, *, since: float, until: float) -> RequestSummary | None:
        self.reads.append((namespace, revision, since, until))
        if self.unavailable is not None:
            raise MetricsUnavailable(self.unavailable)
        return self.summaries.get((namespace, revision))
