"""The accept and status server: what Envoy sends to the queue.

    <any path> with ``Prefer: respond-async`` (or any request for an ``async: always`` Service)
        -> 202, ``X-Call-Id``, ``Location: /.well-known/knserve/calls/<id>``, once stored
    GET    /.well-known/knserve/calls/<id>        the call's status (and response when finished)
    DELETE /.well-known/knserve/calls/<id>        cancel a queued call (409 once it runs)
    GET    /.well-known/knserve/calls?state=dead   the Service's dead letters
    POST   /.well-known/knserve/calls/<id>/retry  replay a dead, failed or cancelled call

Each request names its Service by its Host; an unknown Host is a 404 at once. When the store
is unreachable the answer is 503 with ``Retry-After``: nothing is ever answered 202 that was
not stored. Side effects: serves HTTP, writes to the store.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from typing import Final

import orjson
from aiohttp import web

from callqueue import calls
from callqueue.calls import Call, State, TransitionError
from callqueue.directory import Directory, Target
from callqueue.metrics import QueueMetrics
from callqueue.store import Conflict, JetStreamStore, StoreUnavailable
from knserve.clock import Clock, SystemClock
from knserve.networking import INTERNAL_HEADER_PREFIXES, INTERNAL_HEADERS

log = logging.getLogger(__name__)

CALLS_PREFIX: Final = "/.well-known/knserve/calls"
WELL_KNOWN_PREFIX: Final = "/.well-known/knserve/"
DEFAULT_BODY_LIMIT: Final = 1024 * 1024
RETRY_AFTER_SECONDS: Final = "5"
# Not kept with the call: hop-by-hop headers, what the queue itself reads, and what Envoy adds.
DROPPED_HEADERS: Final = frozenset({
    "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "content-length", "prefer", "x-callback-url", "idempotency-key", "x-envoy-expected-rq-timeout-ms",
    "x-envoy-internal", "x-request-id", "x-forwarded-proto", "x-envoy-decorator-operation",
})
_INTERNAL: Final = frozenset(header.lower() for header in INTERNAL_HEADERS)
_INTERNAL_PREFIXES: Final = tuple(prefix.lower() for prefix in INTERNAL_HEADER_PREFIXES)
_PREFER_ASYNC = re.compile(r"(^|[,;\s])respond-async($|[,;\s=])", re.IGNORECASE)


def kept_header(name: str) -> bool:
    """Whether a request header is stored with the call: not hop-by-hop, not the queue's own,
    not one of knserve's internal headers (the ingress adds those again on dispatch)."""
    lowered = name.lower()
    return lowered not in DROPPED_HEADERS and lowered not in _INTERNAL and not lowered.startswith(_INTERNAL_PREFIXES)


def wants_async(prefer: str | None) -> bool:
    return bool(prefer) and bool(_PREFER_ASYNC.search(prefer or ""))


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"error": message}, headers)


def _unavailable(error: Exception) -> web.Response:
    return _error(503, f"the call queue cannot store calls right now ({error}); try again later",
                  {"Retry-After": RETRY_AFTER_SECONDS})


class AcceptServer:
    def __init__(self, *, store: JetStreamStore, directory: Directory, metrics: QueueMetrics,
                 clock: Clock | None = None, body_limit: int = DEFAULT_BODY_LIMIT,
                 on_accepted: Callable[[Target], None] | None = None,
                 new_id: Callable[[], str] = calls.new_call_id) -> None:
        self.store = store
        self.directory = directory
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.body_limit = body_limit
        self.on_accepted = on_accepted or (lambda target: None)
        self.new_id = new_id
        self.random = random.Random()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.body_limit + 1)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = self.directory.lookup(request.host)
        if target is None:
            return _error(404, f"no Service answers host {request.host!r}")
        path = request.path
        if path == CALLS_PREFIX or path.startswith(CALLS_PREFIX + "/"):
            return await self.calls_api(request, target, path[len(CALLS_PREFIX):].strip("/"))
        if wants_async(request.headers.get("Prefer")) or target.policy.always_async:
            return await self.accept(request, target)
        return _error(400, "this endpoint queues asynchronous calls only: send the request with "
                           "'Prefer: respond-async'")

    # --- accept ----------------------------------------------------------------------------------

    async def accept(self, request: web.Request, target: Target) -> web.Response:
        length = request.content_length
        if length is not None and length > self.body_limit:
            return self._too_large()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        if len(body) > self.body_limit:
            return self._too_large()
        now = self.clock.time()
        call = Call(
            id=self.new_id(), namespace=target.namespace, service=target.service, host=request.host,
            method=request.method, path=request.path_qs,
            headers=tuple((str(k), v) for k, v in request.headers.items() if kept_header(k)),
            created=now, updated=now, callback_url=request.headers.get("X-Callback-Url") or None,
            idempotency_key=request.headers.get("Idempotency-Key") or None,
        )
        try:
            await self.store.ensure_service(target.namespace, target.service, target.policy.concurrency)
            if call.idempotency_key:
                first = await self.store.claim_idempotency(target.namespace, target.service, call.idempotency_key,
                                                           call.id)
                if first is not None:
                    return self._accepted(first, repeated=True)
            try:
                stored = await self.store.create(call, body)
            except StoreUnavailable:
                if call.idempotency_key:
                    await self.store.release_idempotency(target.namespace, target.service, call.idempotency_key)
                raise
        except (TimeoutError, StoreUnavailable, OSError) as error:
            return _unavailable(error)
        except Exception as error:  # the NATS client's own errors: nothing is known to be stored
            log.warning("accepting a call for %s failed: %r", call.service_key, error)
            return _unavailable(error)
        self.metrics.accepted.labels(target.namespace, target.service).inc()
        self.on_accepted(target)
        return self._accepted(stored.id)

    def _accepted(self, call_id: str, *, repeated: bool = False) -> web.Response:
        location = f"{CALLS_PREFIX}/{call_id}"
        headers = {"X-Call-Id": call_id, "Location": location}
        body: dict[str, object] = {"id": call_id, "location": location}
        if repeated:
            body["repeated"] = True
        return _json(202, body, headers)

    def _too_large(self) -> web.Response:
        return _error(413, f"the request body is larger than the call queue's limit of {self.body_limit} bytes; "
                           "nothing was stored")

    # --- status, cancel, list, retry ---------------------------------------------------------------

    async def calls_api(self, request: web.Request, target: Target, rest: str) -> web.Response:
        parts = rest.split("/") if rest else []
        try:
            if not parts:
                if request.method != "GET":
                    return _error(405, "use GET to list calls")
                return await self.list_calls(request, target)
            call_id = parts[0]
            if len(parts) == 1 and request.method == "GET":
                found = await self.store.get(target.namespace, target.service, call_id)
                if found is None:
                    return _error(404, f"no call {call_id} for Service {target.namespace}/{target.service}")
                return _json(200, found[0].status_view())
            if len(parts) == 1 and request.method == "DELETE":
                return await self.cancel(target, call_id)
            if len(parts) == 2 and parts[1] == "retry" and request.method == "POST":
                return await self.retry(target, call_id)
        except (TimeoutError, StoreUnavailable, OSError) as error:
            return _unavailable(error)
        return _error(404, f"no such call endpoint: {request.method} {request.path}")

    async def list_calls(self, request: web.Request, target: Target) -> web.Response:
        state = request.query.get("state", "dead")
        if state != State.DEAD.value:
            return _error(400, "only the dead letters can be listed: use ?state=dead")
        dead = await self.store.dead_letters(target.namespace, target.service)
        return _json(200, {"items": [call.status_view() for call in sorted(dead, key=lambda c: c.created)]})

    async def cancel(self, target: Target, call_id: str) -> web.Response:
        for _ in range(5):
            found = await self.store.get(target.namespace, target.service, call_id)
            if found is None:
                return _error(404, f"no call {call_id} for Service {target.namespace}/{target.service}")
            call, revision = found
            try:
                cancelled = calls.cancel(call, self.clock.time())
            except TransitionError as error:
                return _error(409, str(error))
            try:
                await self.store.update(cancelled, revision)
            except Conflict:
                continue
            return _json(200, cancelled.status_view())
        return _error(409, f"call {call_id} kept changing; try again")

    async def retry(self, target: Target, call_id: str) -> web.Response:
        found = await self.store.get(target.namespace, target.service, call_id)
        if found is None:
            return _error(404, f"no call {call_id} for Service {target.namespace}/{target.service}")
        call, revision = found
        try:
            replayed = await self.store.replay(call, revision, self.clock.time())
        except TransitionError as error:
            return _error(409, str(error))
        except Conflict:
            return _error(409, f"call {call_id} changed meanwhile; look at it again")
        self.on_accepted(target)
        return _json(202, replayed.status_view(), {"X-Call-Id": call_id, "Location": f"{CALLS_PREFIX}/{call_id}"})
