"""Reading the autoscaler's request metrics API (``knserve.request_metrics``) for the pages.

``MetricsSource`` is what the pages need: every revision of a namespace over a window, with
or without per-second series, or None when the API does not answer (the pages then say "no
data"). ``HttpMetrics`` asks the API over HTTP at an address a ``Locator`` gives: a fixed
URL (the ``autoscaler`` Service in a cluster) or, for a ``hostNetwork`` pod that cannot reach
cluster IPs (the local node does not forward them), a ready endpoint of that Service read from
its EndpointSlices. Answers are kept for ``ttl`` seconds so that many open pages cost one
request a second. ``FakeMetrics`` is for tests.

Side effects: HTTP requests, EndpointSlice reads (``EndpointsLocator``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

import aiohttp

from knserve.clock import Clock
from knserve.request_metrics import RevisionRequests, WireError, decode_namespace_answer, namespace_path
from kube.client import KubeClient
from kube.endpoints import ready_endpoints_at
from kube.errors import ApiError
from kube.resources import ENDPOINT_SLICES

log = logging.getLogger("knserve.dashboard")
Entries = Mapping[str, RevisionRequests]  # by revision name


class MetricsSource(Protocol):
    async def namespace(self, namespace: str, *, window: float, series: bool) -> Entries | None: ...


class Locator(Protocol):
    async def base_url(self) -> str | None: ...


class FixedLocator:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def base_url(self) -> str | None:
        return self.url


class EndpointsLocator:
    """``http://<address>:<port>`` of a ready endpoint of a Service, by port name."""

    def __init__(self, client: KubeClient, *, namespace: str, service: str, port_name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.service = service
        self.port_name = port_name

    async def base_url(self) -> str | None:
        try:
            slices = await self.client.list(ENDPOINT_SLICES, namespace=self.namespace,
                                            label_selector=f"kubernetes.io/service-name={self.service}")
        except ApiError as error:
            log.warning("cannot read the endpoints of %s/%s: %s", self.namespace, self.service, error)
            return None
        found = ready_endpoints_at(slices.items, self.port_name)
        if not found:
            return None
        address, port = found[0]
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{port}"


def parse_locator(spec: str, client: KubeClient) -> Locator:
    """``http(s)://...`` is a fixed address; ``endpoints:NAMESPACE/SERVICE:PORT_NAME`` a Service's
    ready endpoint. Raises ValueError with a sentence otherwise."""
    if spec.startswith(("http://", "https://")):
        return FixedLocator(spec)
    if spec.startswith("endpoints:"):
        target = spec.removeprefix("endpoints:")
        namespace, _, rest = target.partition("/")
        service, _, port_name = rest.partition(":")
        if namespace and service and port_name:
            return EndpointsLocator(client, namespace=namespace, service=service, port_name=port_name)
    raise ValueError(f"--metrics {spec!r} is neither an http:// URL nor endpoints:NAMESPACE/SERVICE:PORT_NAME.")


class HttpMetrics:
    def __init__(self, locator: Locator, session: aiohttp.ClientSession, clock: Clock, *, ttl: float = 1.0,
                 timeout: float = 3.0) -> None:
        self.locator = locator
        self.session = session
        self.clock = clock
        self.ttl = ttl
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._kept: dict[tuple[str, float, bool], tuple[float, Entries | None]] = {}
        self._locks: dict[tuple[str, float, bool], asyncio.Lock] = {}
        self._warned: set[str] = set()

    async def namespace(self, namespace: str, *, window: float, series: bool) -> Entries | None:
        key = (namespace, window, series)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one request at a time per key; the others take its answer
            kept = self._kept.get(key)
            if kept is not None and self.clock.monotonic() - kept[0] < self.ttl:
                return kept[1]
            answer = await self._fetch(namespace, window=window, series=series)
            self._kept[key] = (self.clock.monotonic(), answer)
            return answer

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    async def _fetch(self, namespace: str, *, window: float, series: bool) -> Entries | None:
        base = await self.locator.base_url()
        if base is None:
            self._warn_once("the autoscaler's metrics API has no ready endpoint; pages show no data")
            return None
        url = base + namespace_path(namespace, window=window, series=series)
        try:
            async with self.session.get(url, timeout=self.timeout) as response:
                if response.status == 404:
                    self._warn_once(f"{url} answered 404: this autoscaler has no request metrics API yet")
                    return None
                if response.status != 200:
                    self._warn_once(f"{url} answered {response.status}: {(await response.text())[:200]}")
                    return None
                body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            self._warn_once(f"cannot reach the autoscaler's metrics API at {base}: {error!r}")
            return None
        try:
            entries = decode_namespace_answer(body)
        except WireError as error:
            self._warn_once(f"the autoscaler's metrics answer could not be read: {error}")
            return None
        return {entry.summary.revision: entry for entry in entries}


class FakeMetrics:
    """Answers set by tests: ``answers[namespace]``, or None (no data) when unset."""

    def __init__(self, answers: dict[str, Entries] | None = None) -> None:
        self.answers: dict[str, Entries] = dict(answers or {})
        self.asked: list[tuple[str, float, bool]] = []

    async def namespace(self, namespace: str, *, window: float, series: bool) -> Entries | None:
        self.asked.append((namespace, window, series))
        return self.answers.get(namespace)
