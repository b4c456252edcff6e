"""The activator's data-port handler: find the revision, wait for a pod, forward, account.

Answers, in order:
- ``K-Network-Probe: activator``: ``200 activator`` (the probe that tells the activator is in
  a revision's path); requests without revision headers to ``/healthz`` or from the kubelet:
  ``200 ok`` (``200 draining`` while draining: a stopping activator still serves, and its
  endpoint stays "serving" while it terminates, so Routes can keep it until another is ready);
- no ``Knative-Serving-Revision`` / ``Knative-Serving-Namespace`` header, or an unknown
  revision: ``404``;
- given an ingress token, a request naming a revision without it (``K-Network-Ingress-Token``,
  which Envoy adds to the requests it routes): ``403``. Only the ingress, which applies the
  Routes' hosts and visibility, decides which revision a request reaches; a pod sending
  made-up revision headers straight to the activator does not;
- the revision's queue is full: ``503 pending request queue full`` at once;
- no answer within the revision's ``timeoutSeconds`` (waiting included), no response
  headers within ``responseStartTimeoutSeconds`` of arrival, or a response body silent for
  ``idleTimeoutSeconds``: ``504 activator request timeout`` (a response already under way
  is cut instead);
- the pod cannot be reached: ``502``;
- a WebSocket (any protocol switch) the pod accepts: its ``101``, then the two connections
  joined until either closes; the revision's slot stays taken meanwhile, no timeout applies.

Every request that names a known revision counts in the ``ConcurrencyReporter`` from arrival
to answer; the first one for a revision the reporter has not seen goes to the autoscaler at
once. The answers the activator gives itself for a known revision (its 502, 503 and 504,
never forwarded to a pod) are also counted there as responses, with their latency, for the
autoscaler's request metrics; a pod's answers are counted by that pod's queue-proxy. Side effects: network I/O through the collaborators passed in.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable

import aiohttp
from aiohttp import web

from activator.backends import Backends, QueueFull, RevisionGone
from activator.metrics import ActivatorMetrics
from activator.proxy import Progress, forward
from activator.reporter import StatPusher
from activator.revisions import RevisionInfo
from activator.stats import ConcurrencyReporter
from knserve.networking import (
    INGRESS_TOKEN_HEADER,
    KUBELET_PROBE_USER_AGENT_PREFIX,
    NAMESPACE_HEADER,
    PROBE_HEADER,
    REVISION_HEADER,
)

log = logging.getLogger(__name__)

ACTIVATOR_PROBE_VALUE = "activator"
TIMEOUT_MESSAGE = "activator request timeout"
QUEUE_FULL_MESSAGE = "pending request queue full"
NOT_FROM_INGRESS_MESSAGE = "The activator serves only requests the ingress routed to it.\n"


class _OwnResponse(web.Response):
    """An answer the activator gives itself: the request never reached a pod."""


class ActivationHandler:
    def __init__(
        self,
        *,
        backends: Backends,
        reporter: ConcurrencyReporter,
        pusher: StatPusher,
        metrics: ActivatorMetrics,
        session: aiohttp.ClientSession,
        ingress_token: Callable[[], str | None] | None = None,
    ) -> None:
        self._ingress_token = ingress_token
        self._backends = backends
        self._reporter = reporter
        self._pusher = pusher
        self._metrics = metrics
        self._session = session
        self.draining = False
        self.last_request = 0.0  # time.monotonic() of the last request that named a revision

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        headers = request.headers
        if headers.get(PROBE_HEADER) == ACTIVATOR_PROBE_VALUE:
            return web.Response(text=ACTIVATOR_PROBE_VALUE)
        namespace, name = headers.get(NAMESPACE_HEADER), headers.get(REVISION_HEADER)
        if not namespace or not name:
            if request.path == "/healthz" or headers.get("User-Agent", "").startswith(KUBELET_PROBE_USER_AGENT_PREFIX):
                return web.Response(text="draining" if self.draining else "ok")
            return web.Response(
                status=404,
                text=f"The request names no revision: the activator needs the {REVISION_HEADER} and "
                f"{NAMESPACE_HEADER} headers.\n",
            )
        if self._ingress_token is not None and not self._from_ingress(headers.get(INGRESS_TOKEN_HEADER)):
            return web.Response(status=403, text=NOT_FROM_INGRESS_MESSAGE)
        info = self._backends.get(namespace, name)
        if info is None:
            return web.Response(status=404, text=f"Revision {namespace}/{name} is not known to the activator.\n")

        loop = asyncio.get_running_loop()
        arrived = loop.time()
        self.last_request = time.monotonic()
        first = self._reporter.request_in(namespace, name, now=self.last_request)
        if first is not None:
            self._pusher.send_now(first)
        status, own = 500, False
        try:
            response = await self._serve(request, info, arrived)
            status, own = response.status, isinstance(response, _OwnResponse)
            return response
        finally:
            seconds = loop.time() - arrived
            self._reporter.request_out(namespace, name, now=time.monotonic(), code=status if own else 0, seconds=seconds)
            self._metrics.observe(
                namespace, name, status, seconds, service=info.service, configuration=info.configuration
            )

    def _from_ingress(self, shown: str | None) -> bool:
        assert self._ingress_token is not None
        expected = self._ingress_token()
        # No token to compare with (its Secret unreadable): refuse rather than serve anyone.
        if not expected or not shown:
            return False
        return hmac.compare_digest(expected.encode(), shown.encode())

    async def _serve(self, request: web.BaseRequest, info: RevisionInfo, arrived: float) -> web.StreamResponse:
        namespace, name = info.namespace, info.name
        start_deadline = arrived + info.response_start_timeout_seconds if info.response_start_timeout_seconds else None
        progress = Progress()
        try:
            async with asyncio.timeout(info.timeout_seconds) as overall:
                progress.overall = overall
                try:
                    async with asyncio.timeout_at(start_deadline):
                        dest = await self._backends.acquire(namespace, name)
                except QueueFull:
                    return _OwnResponse(status=503, text=QUEUE_FULL_MESSAGE)
                except RevisionGone as gone:
                    return _OwnResponse(status=503, text=f"{gone}.\n")
                try:
                    return await forward(
                        request,
                        dest,
                        self._session,
                        progress,
                        start_deadline=start_deadline,
                        idle_timeout=info.idle_timeout_seconds or None,
                    )
                finally:
                    self._backends.release(namespace, name, dest)
        except TimeoutError:
            if progress.started:
                raise  # the answer is under way: cutting the connection is all that is left
            return _OwnResponse(status=504, text=TIMEOUT_MESSAGE)
        except aiohttp.ClientError as error:
            if progress.started:
                raise
            log.warning("cannot forward to revision %s/%s: %s", namespace, name, error)
            return _OwnResponse(status=502, text=f"Error reaching revision {namespace}/{name}: {error}\n")
