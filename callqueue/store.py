"""The durable store: NATS JetStream holds every accepted call.

    stream KNSERVE_CALLS   subjects ``calls.<namespace>.<service>.<id>``, file storage, limits
                           retention (a request's body stays for the stream's max age, so a dead
                           call can be replayed); one message per call and round: the body, with
                           headers ``Call-Id`` and ``Call-Round``; ``Nats-Msg-Id`` makes a
                           repeated publish a no-op
    consumer <ns>_<service> durable pull consumer per Service, explicit acks: the work queue.
                           ``max_ack_pending`` is the Service's async concurrency, across every
                           queue replica; ``ack_wait`` is the lease a dispatcher keeps alive with
                           ``in_progress()`` while an attempt runs; unlimited deliveries (the
                           record counts attempts, not the consumer)
    KV knserve-calls       ``<ns>.<service>.<id>`` -> the call's record (``calls.Call``), updated
                           with compare-and-set; ``dead.<ns>.<service>.<id>`` indexes dead letters
    KV knserve-idempotency ``<ns>.<service>.<sha256(key)>`` -> call id, created once

Nothing is kept for ever: bodies stay ``RETENTION_SECONDS`` (7 days) after they were accepted,
call records and dead letters as long after their last change, idempotency keys a day.

Side effects: network to a NATS server. ``CallStore`` is the boundary the accept server sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from callqueue.calls import Call, replay

log = logging.getLogger(__name__)

STREAM: Final = "KNSERVE_CALLS"
SUBJECT_PREFIX: Final = "calls"
CALLS_BUCKET: Final = "knserve-calls"
IDEMPOTENCY_BUCKET: Final = "knserve-idempotency"
REPLICAS_BUCKET: Final = "knserve-queue-replicas"
REPLICA_TTL: Final = 10.0
RETENTION_SECONDS: Final = 7 * 24 * 3600.0
"""A replica's key in ``knserve-queue-replicas`` (file storage, like everything here: a NATS
restart must not take the bucket away from replicas that made it at start)."""
CALL_ID_HEADER: Final = "Call-Id"
ROUND_HEADER: Final = "Call-Round"
LEASE_SECONDS: Final = 30.0
"""``ack_wait``: a call whose dispatcher stops renewing its lease this long is delivered again."""


class StoreUnavailable(RuntimeError):
    """The durable store cannot be reached or refused a write: nothing was stored."""


class Conflict(RuntimeError):
    """The record changed since it was read (compare-and-set lost)."""


def subject(namespace: str, service: str) -> str:
    return f"{SUBJECT_PREFIX}.{namespace}.{service}"


def call_subject(namespace: str, service: str, call_id: str) -> str:
    return f"{subject(namespace, service)}.{call_id}"


def consumer_name(namespace: str, service: str) -> str:
    """``<namespace>_<service>``: unambiguous, since neither name may hold ``_``."""
    return f"{namespace}_{service}"


def record_key(namespace: str, service: str, call_id: str) -> str:
    return f"{namespace}.{service}.{call_id}"


def dead_key(namespace: str, service: str, call_id: str) -> str:
    return f"dead.{namespace}.{service}.{call_id}"


def idempotency_key(namespace: str, service: str, key: str) -> str:
    return f"{namespace}.{service}.{hashlib.sha256(key.encode()).hexdigest()}"


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of a call's message to a dispatcher: its lease."""

    call_id: str
    round: int
    """The call's round the message carries (a replay publishes the next)."""
    sequence: int
    deliveries: int
    published: float
    """Unix seconds the message was stored."""
    body: bytes
    ack: Callable[[], Awaitable[None]]
    nak: Callable[[float], Awaitable[None]]
    """Deliver again after the given seconds."""
    renew: Callable[[], Awaitable[None]]
    """Keep the lease (``in_progress``)."""
    term: Callable[[], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Backlog:
    depth: int
    """Calls not yet acknowledged: waiting, backing off or running."""
    waiting: int
    """Of those, not yet handed to any dispatcher."""
    oldest_age: float
    """Seconds since the oldest unacknowledged call was stored (0 when none)."""


class CallStore(Protocol):
    async def create(self, call: Call, body: bytes) -> Call: ...

    async def claim_idempotency(self, namespace: str, service: str, key: str, call_id: str) -> str | None: ...

    async def release_idempotency(self, namespace: str, service: str, key: str) -> None: ...

    async def get(self, namespace: str, service: str, call_id: str) -> tuple[Call, int] | None: ...

    async def update(self, call: Call, revision: int) -> int: ...

    async def put(self, call: Call) -> int: ...

    async def replay(self, call: Call, revision: int, now: float) -> Call: ...

    async def dead_letters(self, namespace: str, service: str) -> list[Call]: ...

    async def ensure_service(self, namespace: str, service: str, concurrency: int) -> None: ...


class JetStreamStore:
    """``CallStore`` over a NATS server with JetStream."""

    def __init__(self, servers: list[str], *, replicas: int = 1, stream_max_age: float = RETENTION_SECONDS,
                 idempotency_ttl: float = 24 * 3600, lease: float = LEASE_SECONDS) -> None:
        self.servers = servers
        self.replicas = replicas
        self.stream_max_age = stream_max_age  # request bodies, and call records since their last change
        self.idempotency_ttl = idempotency_ttl
        self.lease = lease
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._calls: KeyValue | None = None
        self._idempotency: KeyValue | None = None
        self._replicas: KeyValue | None = None
        self._services: dict[tuple[str, str], int] = {}
        self._subscriptions: dict[tuple[str, str], JetStreamContext.PullSubscription] = {}

    # --- connection ------------------------------------------------------------------------------

    async def connect(self, *, timeout: float = 5.0) -> None:
        """Connect (retrying for ever in the background once connected) and make the stream and buckets."""
        self._nc = await nats.connect(servers=self.servers, connect_timeout=timeout, max_reconnect_attempts=-1,
                                      reconnect_time_wait=0.5, allow_reconnect=True, name="knserve-queue",
                                      error_cb=self._on_error, disconnected_cb=self._on_disconnect,
                                      reconnected_cb=self._on_reconnect)
        self._js = self._nc.jetstream(timeout=timeout)
        await self._ensure_layout()

    async def _on_error(self, error: Exception) -> None:
        log.warning("nats: %s", error)

    async def _on_disconnect(self) -> None:
        log.warning("nats: disconnected; accepting answers 503 until it is back")

    async def _on_reconnect(self) -> None:
        log.info("nats: reconnected")

    async def _ensure_layout(self) -> None:
        js = self.js
        config = api.StreamConfig(name=STREAM, subjects=[f"{SUBJECT_PREFIX}.>"], retention=api.RetentionPolicy.LIMITS,
                                  storage=api.StorageType.FILE, max_age=self.stream_max_age,
                                  num_replicas=self.replicas, duplicate_window=120.0)
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await js.update_stream(config)
        self._calls = await self._bucket(CALLS_BUCKET, ttl=self.stream_max_age)
        self._idempotency = await self._bucket(IDEMPOTENCY_BUCKET, ttl=self.idempotency_ttl)
        self._replicas = await self._bucket(REPLICAS_BUCKET, ttl=REPLICA_TTL)

    async def _bucket(self, name: str, *, ttl: float) -> KeyValue:
        """The key-value bucket ``name`` whose entries live ``ttl`` seconds after their last write;
        a bucket an earlier version made with other limits (call records once had none) is updated
        in place, its entries kept."""
        js = self.js
        try:
            return await js.create_key_value(bucket=name, history=1, ttl=ttl, replicas=self.replicas,
                                             storage=api.StorageType.FILE)
        except nats.js.errors.BadRequestError:
            info = await js.stream_info(f"KV_{name}")
            await js.update_stream(dataclasses.replace(info.config, max_age=ttl))
            log.info("bucket %s: entries now live %.0f s after their last change", name, ttl)
            return await js.key_value(name)

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise StoreUnavailable("the queue is not connected to NATS")
        return self._js

    @property
    def calls(self) -> KeyValue:
        if self._calls is None:
            raise StoreUnavailable("the queue is not connected to NATS")
        return self._calls

    def _check(self) -> None:
        if not self.connected:
            raise StoreUnavailable("the queue is not connected to NATS")

    # --- services --------------------------------------------------------------------------------

    async def ensure_service(self, namespace: str, service: str, concurrency: int) -> None:
        """The Service's consumer exists with ``concurrency`` as its ``max_ack_pending``."""
        if self._services.get((namespace, service)) == concurrency:
            return
        self._check()
        await self.js.add_consumer(STREAM, api.ConsumerConfig(
            durable_name=consumer_name(namespace, service), filter_subject=f"{subject(namespace, service)}.*",
            ack_policy=api.AckPolicy.EXPLICIT, deliver_policy=api.DeliverPolicy.ALL, ack_wait=self.lease,
            max_deliver=-1, max_ack_pending=concurrency, max_waiting=512, num_replicas=self.replicas,
        ))
        self._services[(namespace, service)] = concurrency

    async def services(self) -> list[tuple[str, str]]:
        """Every Service with a consumer (one that ever had a call accepted)."""
        self._check()
        found = []
        offset = 0
        while True:
            infos = await self.js._jsm.consumers_info(STREAM, offset=offset)
            for info in infos:
                name = info.name or ""
                namespace, _, service = name.partition("_")
                if namespace and service:
                    found.append((namespace, service))
            if len(infos) < 256:
                return found
            offset += len(infos)

    async def heartbeat(self, pod_name: str) -> int:
        """Say this replica lives; how many replicas said so in the last ``REPLICA_TTL`` seconds."""
        self._check()
        assert self._replicas is not None
        await self._replicas.put(pod_name.replace(".", "_"), b"1")
        status = await self._replicas.status()
        return max(1, int(status.values))

    async def backlog(self, namespace: str, service: str) -> Backlog:
        self._check()
        info = await self.js.consumer_info(STREAM, consumer_name(namespace, service))
        waiting = int(info.num_pending or 0)
        depth = waiting + int(info.num_ack_pending or 0)
        oldest = 0.0
        if depth:
            floor = info.ack_floor.stream_seq if info.ack_floor and info.ack_floor.stream_seq else 0
            try:
                message = await self.js._jsm.get_msg(STREAM, seq=floor + 1, next=True,
                                                     subject=f"{subject(namespace, service)}.*")
                if message.time is not None:
                    oldest = max(0.0, _now() - _timestamp(message.time))
            except nats.js.errors.NotFoundError:
                pass
        return Backlog(depth=depth, waiting=waiting, oldest_age=oldest)

    # --- calls -----------------------------------------------------------------------------------

    async def _publish(self, call: Call, body: bytes) -> int:
        try:
            ack = await self.js.publish(call_subject(call.namespace, call.service, call.id), body, headers={
                CALL_ID_HEADER: call.id, ROUND_HEADER: str(call.round), "Nats-Msg-Id": f"{call.id}.{call.round}"})
        except (TimeoutError, nats.errors.Error) as error:
            raise StoreUnavailable(f"storing the call failed: {error}") from error
        return int(ack.seq)

    async def create(self, call: Call, body: bytes) -> Call:
        """Store the body in the log and the record in the bucket, both at once (one round trip
        of latency). Returns only once both are stored; :class:`StoreUnavailable` otherwise
        (then what half was stored is taken back, or, for a message without its record, dropped
        by the dispatcher a minute later)."""
        self._check()
        key = record_key(call.namespace, call.service, call.id)
        published, recorded = await asyncio.gather(self._publish(call, body), self.calls.create(key, call.to_bytes()),
                                                   return_exceptions=True)
        if isinstance(published, BaseException) or isinstance(recorded, BaseException):
            if not isinstance(recorded, BaseException):
                with contextlib.suppress(Exception):
                    await self.calls.delete(key)
            error = published if isinstance(published, BaseException) else recorded
            assert isinstance(error, BaseException)
            raise StoreUnavailable(f"storing the call failed: {error!r}") from error
        return call

    async def claim_idempotency(self, namespace: str, service: str, key: str, call_id: str) -> str | None:
        """None when ``key`` is new (now claimed for ``call_id``), else the id that claimed it first."""
        self._check()
        assert self._idempotency is not None
        name = idempotency_key(namespace, service, key)
        try:
            await self._idempotency.create(name, call_id.encode())
            return None
        except nats.js.errors.KeyWrongLastSequenceError:
            entry = await self._idempotency.get(name)
            return (entry.value or b"").decode() or None
        except (TimeoutError, nats.errors.Error) as error:
            raise StoreUnavailable(f"storing the idempotency key failed: {error}") from error

    async def release_idempotency(self, namespace: str, service: str, key: str) -> None:
        if self._idempotency is not None and self.connected:
            try:
                await self._idempotency.delete(idempotency_key(namespace, service, key))
            except (TimeoutError, nats.errors.Error):
                log.warning("could not release idempotency key of %s/%s", namespace, service)

    async def get(self, namespace: str, service: str, call_id: str) -> tuple[Call, int] | None:
        self._check()
        try:
            entry = await self.calls.get(record_key(namespace, service, call_id))
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        return Call.from_bytes(entry.value), int(entry.revision)

    async def update(self, call: Call, revision: int) -> int:
        self._check()
        try:
            return int(await self.calls.update(record_key(call.namespace, call.service, call.id), call.to_bytes(),
                                               last=revision))
        except nats.js.errors.KeyWrongLastSequenceError as error:
            raise Conflict(f"call {call.id} changed meanwhile") from error

    async def put(self, call: Call) -> int:
        self._check()
        return int(await self.calls.put(record_key(call.namespace, call.service, call.id), call.to_bytes()))

    async def mark_dead(self, call: Call) -> None:
        await self.calls.put(dead_key(call.namespace, call.service, call.id), call.id.encode())

    async def body(self, call: Call) -> bytes:
        """The request body of ``call`` (its latest round's message)."""
        self._check()
        message = await self.js._jsm.get_last_msg(STREAM, call_subject(call.namespace, call.service, call.id))
        return bytes(message.data or b"")

    async def replay(self, call: Call, revision: int, now: float) -> Call:
        """Queue a finished call again: its body published anew, the record reset (compare-and-set)."""
        replay(call, now, sequence=0)  # refuses a call that cannot be replayed before anything is written
        body = await self.body(call)
        sequence = await self._publish(dataclasses.replace(call, round=call.round + 1), body)
        replayed = replay(call, now, sequence=sequence)
        await self.update(replayed, revision)
        try:
            await self.calls.delete(dead_key(call.namespace, call.service, call.id))
        except nats.errors.Error:
            pass
        return replayed

    async def dead_letters(self, namespace: str, service: str) -> list[Call]:
        self._check()
        watcher = await self.calls.watch(f"dead.{namespace}.{service}.*", ignore_deletes=True, meta_only=True)
        ids = []
        try:
            async for entry in watcher:
                if entry is None:
                    break
                ids.append(entry.key.rsplit(".", 1)[-1])
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        calls = []
        for call_id in ids:
            found = await self.get(namespace, service, call_id)
            if found is not None:
                calls.append(found[0])
        return calls

    # --- dispatch --------------------------------------------------------------------------------

    async def fetch(self, namespace: str, service: str, batch: int, timeout: float) -> list[Delivery]:
        """Up to ``batch`` deliveries of the Service's calls, waiting at most ``timeout``."""
        self._check()
        key = (namespace, service)
        subscription = self._subscriptions.get(key)
        if subscription is None:
            subscription = await self.js.pull_subscribe_bind(consumer_name(namespace, service), stream=STREAM)
            self._subscriptions[key] = subscription
        try:
            messages = await subscription.fetch(batch=batch, timeout=timeout)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except (nats.errors.Error, nats.js.errors.Error) as error:  # no consumer leader yet, and the like
            raise StoreUnavailable(f"fetching calls failed: {error!r}") from error
        return [_delivery(message) for message in messages]


def _delivery(message: Msg) -> Delivery:
    metadata = message.metadata

    async def nak(delay: float) -> None:
        await message.nak(delay=max(0.001, delay))

    return Delivery(
        call_id=(message.headers or {}).get(CALL_ID_HEADER, ""),
        round=int((message.headers or {}).get(ROUND_HEADER, "0") or 0), sequence=int(metadata.sequence.stream),
        deliveries=int(metadata.num_delivered or 1), published=_timestamp(metadata.timestamp) if metadata.timestamp else 0.0,
        body=bytes(message.data), ack=message.ack, nak=nak, renew=message.in_progress, term=message.term,
    )


def _now() -> float:
    return time.time()


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    text = str(value)
    # RFC 3339 with nanoseconds: keep microseconds for fromisoformat.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6]}{'+00:00' if zone in ('Z', '') else zone}"
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
