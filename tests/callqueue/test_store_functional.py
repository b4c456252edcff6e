"""The JetStream store against a real nats-server on a loopback port."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from callqueue import calls
from callqueue.calls import Call, State
from callqueue.store import Conflict, JetStreamStore, StoreUnavailable
from tests.support.nats_process import NatsServer, free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    yield nats
    nats.stop()


@pytest.fixture
async def store(server: NatsServer) -> AsyncIterator[JetStreamStore]:
    js = JetStreamStore([server.url], lease=2.0)
    await js.connect()
    yield js
    await js.close()


def a_call(call_id: str = "c1", **changes: object) -> Call:
    call = Call(id=call_id, namespace="default", service="hello", host="hello.default.example.com", method="POST",
                path="/work?x=1", headers=(("content-type", "text/plain"),), created=1000.0, updated=1000.0)
    return dataclasses.replace(call, **changes)  # type: ignore[arg-type]


async def test_a_created_call_is_read_back_with_its_body(store: JetStreamStore) -> None:
    await store.ensure_service("default", "hello", 2)
    stored = await store.create(a_call(), b"payload")
    found = await store.get("default", "hello", "c1")
    assert found is not None and found[0] == stored
    assert await store.body(stored) == b"payload"
    deliveries = await store.fetch("default", "hello", 5, timeout=2)
    assert [(d.call_id, d.body) for d in deliveries] == [("c1", b"payload")]
    await deliveries[0].ack()


async def test_compare_and_set_refuses_a_stale_revision(store: JetStreamStore) -> None:
    await store.ensure_service("default", "hello", 2)
    await store.create(a_call(), b"")
    call, revision = await store.get("default", "hello", "c1") or pytest.fail("not stored")
    await store.update(calls.start(call, 1001.0), revision)
    with pytest.raises(Conflict):
        await store.update(calls.cancel(call, 1001.0), revision)


async def test_max_ack_pending_bounds_the_calls_in_flight_and_a_nak_delivers_again(store: JetStreamStore) -> None:
    await store.ensure_service("default", "hello", 2)
    for index in range(4):
        await store.create(a_call(f"c{index}"), b"")
    first = await store.fetch("default", "hello", 4, timeout=1)
    assert len(first) == 2
    assert await store.fetch("default", "hello", 4, timeout=0.5) == []
    await first[0].ack()
    await first[1].nak(0.2)
    later = await store.fetch("default", "hello", 4, timeout=2)
    assert {d.call_id for d in later} <= {"c1", "c2"} and len(later) >= 1
    backlog = await store.backlog("default", "hello")
    assert backlog.depth == 3 and backlog.oldest_age >= 0


async def test_an_expired_lease_delivers_the_call_again_and_renewing_it_does_not(store: JetStreamStore) -> None:
    await store.ensure_service("default", "hello", 1)
    await store.create(a_call(), b"")
    [held] = await store.fetch("default", "hello", 1, timeout=2)
    for _ in range(4):  # 3 s of renewals past a 2 s lease
        await asyncio.sleep(0.75)
        await held.renew()
    assert await store.fetch("default", "hello", 1, timeout=0.5) == []
    await asyncio.sleep(2.5)
    [again] = await store.fetch("default", "hello", 1, timeout=2)
    assert again.call_id == "c1" and again.deliveries == 2


async def test_idempotency_key_returns_the_first_id(store: JetStreamStore) -> None:
    assert await store.claim_idempotency("default", "hello", "key-1", "first") is None
    assert await store.claim_idempotency("default", "hello", "key-1", "second") == "first"
    assert await store.claim_idempotency("default", "other", "key-1", "third") is None


async def test_dead_letters_are_listed_and_a_replay_queues_the_body_again(store: JetStreamStore) -> None:
    await store.ensure_service("default", "hello", 2)
    stored = await store.create(a_call(), b"again")
    [delivery] = await store.fetch("default", "hello", 1, timeout=2)
    await delivery.ack()
    dead = dataclasses.replace(stored, state=State.DEAD, attempts=3, finished_at=1010.0)
    revision = await store.put(dead)
    await store.mark_dead(dead)
    assert [c.id for c in await store.dead_letters("default", "hello")] == ["c1"]
    replayed = await store.replay(dead, revision, now=1020.0)
    assert replayed.state is State.QUEUED and replayed.round == 1 and replayed.sequence > 0
    assert await store.dead_letters("default", "hello") == []
    [again] = await store.fetch("default", "hello", 1, timeout=2)
    assert again.body == b"again" and again.sequence == replayed.sequence and again.round == 1


async def test_what_was_stored_survives_a_server_restart(server: NatsServer, store: JetStreamStore) -> None:
    await store.ensure_service("default", "hello", 2)
    await store.create(a_call(), b"kept")
    server.kill()
    with pytest.raises(StoreUnavailable):
        await store.create(a_call("c2"), b"")
    server.start()
    reopened = JetStreamStore([server.url])
    await reopened.connect()
    try:
        found = await reopened.get("default", "hello", "c1")
        assert found is not None and found[0].state is State.QUEUED
        [delivery] = await reopened.fetch("default", "hello", 1, timeout=2)
        assert delivery.body == b"kept"
    finally:
        await reopened.close()


async def test_a_three_server_cluster_keeps_every_call_when_one_server_dies(tmp_path: Path) -> None:
    """The clustered set-up config/README.md documents: three servers, stream and buckets
    with three replicas; one server killed, accepting and reading go on."""
    cluster_ports = [free_port() for _ in range(3)]
    servers = [NatsServer(tmp_path / f"nats-{index}", name=f"nats-{index}", cluster_port=port,
                          routes=tuple(p for p in cluster_ports if p != port))
               for index, port in enumerate(cluster_ports)]
    try:
        for server in servers:
            server.start_background()
        for server in servers:
            server.wait_healthy(timeout=60)
        store = JetStreamStore([server.url for server in servers], replicas=3, lease=2.0)
        await connect_when_ready(store)
        try:
            await store.ensure_service("default", "hello", 4)
            for index in range(10):
                await store.create(a_call(f"before{index}"), b"kept")
            servers[0].kill()
            stored = []
            for index in range(10):
                stored.append(await create_when_ready(store, a_call(f"after{index}")))
            for index in range(10):
                assert await store.get("default", "hello", f"before{index}") is not None
            got: list[str] = []
            for _ in range(40):
                try:
                    deliveries = await store.fetch("default", "hello", 4, timeout=2)
                except StoreUnavailable:  # the consumer's leader moves off the dead server
                    await asyncio.sleep(0.25)
                    continue
                for delivery in deliveries:
                    got.append(delivery.call_id)
                    await delivery.ack()
                if len(got) >= 20:
                    break
            assert len(set(got)) == 20
        finally:
            await store.close()
    finally:
        for server in servers:
            server.stop()


async def connect_when_ready(store: JetStreamStore) -> None:
    for _ in range(60):  # the cluster elects its JetStream leader after the servers answer
        try:
            await store.connect()
            return
        except Exception:
            await store.close()
            await asyncio.sleep(0.5)
    await store.connect()


async def create_when_ready(store: JetStreamStore, call: Call) -> Call:
    for _ in range(40):  # a stream leader on the dead server is replaced within seconds
        try:
            return await store.create(call, b"")
        except StoreUnavailable:
            await asyncio.sleep(0.5)
    return await store.create(call, b"")


async def test_call_records_expire_and_a_bucket_made_without_limits_gets_them(server: NatsServer) -> None:
    import nats
    from nats.js import api

    connection = await nats.connect(server.url)
    try:
        jetstream = connection.jetstream()
        older = await jetstream.create_key_value(bucket="knserve-calls", history=1, storage=api.StorageType.FILE)
        await older.put("default.hello.kept", b"{}")  # a record an earlier version wrote

        store = JetStreamStore([server.url], lease=2.0, stream_max_age=3600.0)
        await store.connect()
        try:
            info = await jetstream.stream_info("KV_knserve-calls")
            assert info.config.max_age == 3600.0
            assert (await (await jetstream.key_value("knserve-calls")).get("default.hello.kept")).value == b"{}"
        finally:
            await store.close()
    finally:
        await connection.close()


async def test_a_new_store_keeps_records_and_bodies_seven_days(store: JetStreamStore, server: NatsServer) -> None:
    import nats

    from callqueue.store import RETENTION_SECONDS

    connection = await nats.connect(server.url)
    try:
        jetstream = connection.jetstream()
        assert (await jetstream.stream_info("KV_knserve-calls")).config.max_age == RETENTION_SECONDS == 7 * 24 * 3600
        assert (await jetstream.stream_info("KNSERVE_CALLS")).config.max_age == RETENTION_SECONDS
    finally:
        await connection.close()
