"""The dispatcher: takes calls from the store and makes them, through the ingress, until done.

Per Service with a consumer, one fetch loop takes deliveries (never more than the Service's
async concurrency is unacknowledged, across all replicas: the consumer's ``max_ack_pending``)
and runs each as a task:

    record missing         the accept is still writing it: deliver again in a second
    older round            a round that was replayed since: acknowledge and drop
    newer round            the replay is still writing the record: deliver again shortly
    finished               done earlier (its ack was lost): send a callback still owed, ack
    queued, not yet due    deliver again when due (``next_attempt``)
    queued or running      start an attempt (``running``, attempts + 1), keep the lease alive with
                           ``in_progress`` while the request runs, then ``calls.finish``: ack when
                           finished (callback first), or deliver again after the back-off

An attempt is sent to the ingress (``ingress_url``) with the Service's dispatch Host, the
call's method, path and headers, plus ``X-Call-Id`` and ``X-Attempt``; ``Prefer`` is never
sent (the ingress would route it back here), and ``K-Call-Dispatch: <ingress token>`` marks
it as the queue's own: for a Service with ``knserve.dev/async: always`` the ingress queues
every request without exactly that value, and removes the header before the app. The token
(``dispatch_token``, the mounted Secret ``knserve-ingress-token``) is a secret a client
cannot guess; the ingress already adds it to every request it routes here, so the queue
learns nothing new by holding it. While a configured token cannot be read, no call is
dispatched (the ingress would queue the dispatch again as a new call): deliveries wait and
the reason is logged. Without ``dispatch_token`` (a queue outside a cluster, ``--static``)
no ``K-Call-Dispatch`` is sent. Side effects: HTTP to the ingress and to callback URLs,
writes to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import Final

import aiohttp

from callqueue import calls
from callqueue.calls import Call, Outcome, Response, State
from callqueue.directory import Directory, Target
from callqueue.metrics import QueueMetrics
from callqueue.store import Conflict, Delivery, JetStreamStore, StoreUnavailable
from knserve.callpolicy import RetryPolicy, parse_retry_after
from knserve.clock import Clock, SystemClock
from knserve.networking import CALL_DISPATCH_HEADER

log = logging.getLogger(__name__)

DISPATCH_HEADER: Final = CALL_DISPATCH_HEADER
NO_TOKEN_RETRY_SECONDS: Final = 5.0
"""How soon a call is looked at again while the dispatch token cannot be read."""
CALLBACK_ATTEMPTS: Final = 5
ATTEMPT_TIMEOUT: Final = 900.0
"""Longest an attempt may take (above the longest revision timeout, 600 s)."""
OUTCOME_SAVE_SECONDS: Final = 120.0
"""How long an attempt's outcome is retried into a store that went away (NATS restarting)
before the call is left to its lease (and runs again)."""
SKIPPED_ON_DISPATCH: Final = frozenset({"prefer", "x-call-id", "x-attempt", DISPATCH_HEADER.lower()})
RESPONSE_HOP_HEADERS: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class Dispatcher:
    def __init__(self, *, store: JetStreamStore, directory: Directory, ingress_url: str, metrics: QueueMetrics,
                 clock: Clock | None = None, random_source: Callable[[], float] | None = None,
                 discover_every: float = 5.0, attempt_timeout: float = ATTEMPT_TIMEOUT,
                 dispatch_token: Callable[[], str | None] | None = None) -> None:
        self.store = store
        self.dispatch_token = dispatch_token
        """The ingress token, sent as ``K-Call-Dispatch`` (None: no marker is sent)."""
        self._token_missing = False
        self.directory = directory
        self.ingress_url = ingress_url.rstrip("/")
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.random = random_source or random.Random().random
        self.discover_every = discover_every
        self.attempt_timeout = attempt_timeout
        self._loops: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._group: asyncio.TaskGroup | None = None
        self.in_flight: dict[tuple[str, str], int] = {}
        self._pending: set[tuple[str, str]] = set()
        self._draining = asyncio.Event()
        self._calls: set[asyncio.Task[None]] = set()

    def notice(self, target: Target) -> None:
        """A call was accepted for ``target``: make sure this replica dispatches its Service."""
        if (target.namespace, target.service) not in self._loops:
            self._wake.set()
            self._pending.add((target.namespace, target.service))

    async def drain(self, timeout: float) -> int:
        """Stop taking calls and wait (at most ``timeout``) for the ones running here to finish;
        returns how many were still running (they are delivered again once their lease ends)."""
        self._draining.set()
        self._wake.set()
        running = [task for task in self._calls if not task.done()]
        if running:
            await asyncio.wait(running, timeout=timeout)
        return sum(1 for task in running if not task.done())

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=30)
        timeout = aiohttp.ClientTimeout(total=self.attempt_timeout, connect=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            self._session = session
            async with asyncio.TaskGroup() as group:
                self._group = group
                while not self._draining.is_set():
                    wanted = set(self._pending)
                    self._pending.clear()
                    try:
                        wanted.update(await self.store.services())
                    except (TimeoutError, StoreUnavailable, OSError) as error:
                        log.debug("listing services: %s", error)
                    except Exception as error:
                        log.warning("listing services: %r", error)
                    for key in wanted - set(self._loops):
                        self._loops[key] = group.create_task(self._service_loop(*key), name=f"dispatch:{key[0]}/{key[1]}")
                    self._wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.discover_every)

    # --- per Service -----------------------------------------------------------------------------

    async def _service_loop(self, namespace: str, service: str) -> None:
        key = (namespace, service)
        assert self._group is not None
        running: set[asyncio.Task[None]] = set()
        while not self._draining.is_set():
            target = self.directory.service(namespace, service)
            limit = target.policy.concurrency if target else RetryPolicy().concurrency
            free = limit - len(running)
            if free <= 0:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                if target is not None:
                    await self.store.ensure_service(namespace, service, target.policy.concurrency)
                deliveries = await self.store.fetch(namespace, service, free, timeout=1.0)
            except (TimeoutError, StoreUnavailable, OSError) as error:
                log.debug("fetching %s/%s: %s", namespace, service, error)
                await asyncio.sleep(1.0)
                continue
            except Exception as error:
                log.warning("fetching %s/%s: %r", namespace, service, error)
                await asyncio.sleep(1.0)
                continue
            for delivery in deliveries:
                task = self._group.create_task(self._handle(delivery, namespace, service),
                                               name=f"call:{delivery.call_id}")
                running.add(task)
                self._calls.add(task)
                self.in_flight[key] = len(running)

                def finished(done: asyncio.Task[None]) -> None:
                    running.discard(done)
                    self._calls.discard(done)
                    self.in_flight[key] = len(running)

                task.add_done_callback(finished)

    async def _handle(self, delivery: Delivery, namespace: str, service: str) -> None:
        try:
            await self._process(delivery, namespace, service)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the store went away mid-call: the lease runs out and it comes back
            log.warning("call %s: %r; it will be delivered again", delivery.call_id, error)

    async def _process(self, delivery: Delivery, namespace: str, service: str) -> None:
        found = await self.store.get(namespace, service, delivery.call_id)
        now = self.clock.time()
        if found is None:
            if now - delivery.published > 60:
                log.warning("call %s has no record a minute after it was stored; dropping it", delivery.call_id)
                await delivery.term()
            else:
                await delivery.nak(1.0)
            return
        call, revision = found
        if delivery.round < call.round:
            await delivery.ack()  # a round replayed since
            return
        if delivery.round > call.round:
            await delivery.nak(0.2)  # a replay still writing its record
            return
        target = self.directory.service(namespace, service)
        policy = target.policy if target else RetryPolicy()
        if call.state.finished:
            await self._callback(call, revision)
            await delivery.ack()
            return
        if call.state is State.QUEUED and call.next_attempt and call.next_attempt > now:
            await delivery.nak(call.next_attempt - now)
            return
        expired = calls.expire(call, policy, now)
        if expired is not None:
            await self._finish(delivery, expired, revision, policy)
            return
        if target is None:
            await delivery.nak(5.0)  # the Service is not known (yet, or any more): keep the call
            return
        marker = self._marker()
        if marker is None:
            await delivery.nak(NO_TOKEN_RETRY_SECONDS)  # dispatched unmarked, it could come back as a new call
            return
        try:
            started = calls.start(call, now)
            revision = await self.store.update(started, revision)
        except Conflict:
            await delivery.nak(0.05)  # cancelled or changed meanwhile: look again
            return
        self.metrics.dispatched.labels(namespace, service).inc()
        outcome = await self._attempt(delivery, started, target, marker)
        after = calls.finish(started, outcome, policy, self.clock.time(), self.random)
        if after.state is State.QUEUED:
            self.metrics.retried.labels(namespace, service).inc()
            await self._save(after, revision)
            assert after.next_attempt is not None
            await delivery.nak(after.next_attempt - self.clock.time())
            return
        await self._finish(delivery, after, revision, policy)

    async def _save(self, call: Call, revision: int) -> int:
        """Write an attempt's outcome, retrying while the store is away (keeping the lease), so
        a NATS restart does not make a finished call run again."""
        deadline = time.monotonic() + OUTCOME_SAVE_SECONDS
        while True:
            try:
                return await self.store.update(call, revision)
            except Conflict:
                raise
            except Exception as error:  # StoreUnavailable, timeouts, the NATS client's errors while it reconnects
                if time.monotonic() > deadline:
                    raise
                log.info("call %s: saving its outcome: %r; trying again", call.id, error)
                await asyncio.sleep(0.5)

    async def _finish(self, delivery: Delivery, call: Call, revision: int, policy: RetryPolicy) -> None:
        revision = await self._save(call, revision)
        counter = {State.SUCCEEDED: self.metrics.succeeded, State.FAILED: self.metrics.failed,
                   State.DEAD: self.metrics.dead}.get(call.state)
        if counter is not None:
            counter.labels(call.namespace, call.service).inc()
        if call.state is State.DEAD:
            await self.store.mark_dead(call)
        await self._callback(call, revision)
        await delivery.ack()

    # --- the attempt -----------------------------------------------------------------------------

    def _marker(self) -> list[tuple[str, str]] | None:
        """The ``K-Call-Dispatch`` header to send ([] without a token source); None while the
        token cannot be read (said once, when it goes missing)."""
        if self.dispatch_token is None:
            return []
        token = self.dispatch_token()
        if token is None:
            if not self._token_missing:
                self._token_missing = True
                log.warning("the ingress token (Secret knserve-ingress-token) cannot be read; calls wait until it "
                            "can: check that the queue's pod mounts it at the path given by --ingress-token-file")
            return None
        if self._token_missing:
            log.info("the ingress token can be read again; dispatching calls")
            self._token_missing = False
        return [(DISPATCH_HEADER, token)]

    async def _attempt(self, delivery: Delivery, call: Call, target: Target,
                       marker: list[tuple[str, str]]) -> Outcome:
        assert self._session is not None
        headers = [(k, v) for k, v in call.headers if k.lower() not in SKIPPED_ON_DISPATCH]
        headers += [("Host", target.dispatch_host), ("X-Call-Id", call.id), ("X-Attempt", str(call.attempts)),
                    *marker]
        lease = asyncio.create_task(self._keep_lease(delivery), name=f"lease:{call.id}")
        began = time.monotonic()
        try:
            async with self._session.request(call.method, self.ingress_url + call.path, headers=headers,
                                              data=delivery.body, allow_redirects=False) as response:
                body = await response.read()
                kept = tuple((k, v) for k, v in response.headers.items() if k.lower() not in RESPONSE_HOP_HEADERS)
                return Outcome(Response.capture(response.status, kept, body),
                               retry_after=parse_retry_after(response.headers.get("Retry-After"), self.clock.time()))
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return Outcome(error=f"{type(error).__name__}: {error}"[:500] or "connection error")
        finally:
            lease.cancel()
            log.debug("call %s attempt %d took %.3fs", call.id, call.attempts, time.monotonic() - began)

    async def _keep_lease(self, delivery: Delivery) -> None:
        while True:
            await asyncio.sleep(self.store.lease / 3)
            with contextlib.suppress(Exception):
                await delivery.renew()

    # --- callback --------------------------------------------------------------------------------

    async def _callback(self, call: Call, revision: int) -> None:
        """POST the final response to the call's callback URL (retried); recorded in the call."""
        if not call.callback_url or call.callback_status is not None or call.state is State.CANCELLED:
            return
        assert self._session is not None
        response = call.response or Response(0)
        duration = max(0.0, (call.finished_at or self.clock.time()) - (call.created))
        headers = [(k, v) for k, v in response.headers if k.lower() not in RESPONSE_HOP_HEADERS]
        headers += [("X-Call-Id", call.id), ("X-Function-Status", str(response.status)),
                    ("X-Duration-Seconds", f"{duration:.3f}"), ("X-Attempts", str(call.attempts)),
                    ("X-Call-State", call.state.value)]
        status: int | None = None
        attempts = call.callback_attempts
        for attempt in range(CALLBACK_ATTEMPTS):
            attempts += 1
            try:
                async with self._session.post(call.callback_url, data=response.body, headers=headers,
                                              timeout=aiohttp.ClientTimeout(total=30)) as answer:
                    await answer.read()
                    status = answer.status
                if status < 500 and status not in (408, 429):
                    break
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
                log.info("callback of call %s to %s failed: %s", call.id, call.callback_url, error)
                status = None
            if attempt + 1 < CALLBACK_ATTEMPTS:
                await asyncio.sleep(min(30.0, 0.5 * 2 ** attempt) * (0.5 + self.random() / 2))
        recorded = dataclasses.replace(call, callback_status=status if status is not None else 0,
                                       callback_attempts=attempts, updated=self.clock.time())
        try:
            await self.store.update(recorded, revision)
        except Conflict:
            log.info("call %s changed while its callback was sent", call.id)
