import asyncio

import pytest

from kube.errors import AlreadyExists, Conflict, Gone, NotFound
from kube.fake import FakeKubeClient
from kube.resources import CONFIGURATIONS, DEPLOYMENTS


def config(name: str = "hello", **spec: object) -> dict:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": dict(spec)}


async def test_create_assigns_identity_and_drops_status() -> None:
    fake = FakeKubeClient()
    created = await fake.create(CONFIGURATIONS, {**config(), "status": {"x": 1}})
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["uid"]
    assert "status" not in created
    with pytest.raises(AlreadyExists):
        await fake.create(CONFIGURATIONS, config())
    assert [str(a) for a in fake.actions] == ["create configurations ns/hello"]


async def test_update_bumps_generation_only_on_spec_change_and_checks_version() -> None:
    fake = FakeKubeClient()
    created = await fake.create(CONFIGURATIONS, config(a=1))
    labelled = {**created, "metadata": {**created["metadata"], "labels": {"x": "y"}}}
    after_labels = await fake.update(CONFIGURATIONS, labelled)
    assert after_labels["metadata"]["generation"] == 1
    after_spec = await fake.update(CONFIGURATIONS, {**after_labels, "spec": {"a": 2}})
    assert after_spec["metadata"]["generation"] == 2
    with pytest.raises(Conflict):
        await fake.update(CONFIGURATIONS, labelled)  # stale resourceVersion


async def test_status_write_touches_only_status() -> None:
    fake = FakeKubeClient()
    created = await fake.create(CONFIGURATIONS, config(a=1))
    written = await fake.update_status(CONFIGURATIONS, {**created, "spec": {"a": 9}, "status": {"ok": True}})
    assert written["spec"] == {"a": 1}
    assert written["status"] == {"ok": True}
    updated = await fake.update(CONFIGURATIONS, {**written, "status": {"ok": False}})
    assert updated["status"] == {"ok": True}


async def test_induced_failure_happens_once() -> None:
    fake = FakeKubeClient()
    fake.fail_on("create", DEPLOYMENTS, RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        await fake.create(DEPLOYMENTS, config())
    await fake.create(DEPLOYMENTS, config())
    with pytest.raises(NotFound):
        await fake.get(DEPLOYMENTS, "ns", "other")


async def test_watch_replays_after_version_and_reports_gone_after_compaction() -> None:
    fake = FakeKubeClient()
    listed = await fake.list(CONFIGURATIONS)
    await fake.create(CONFIGURATIONS, config("a"))
    events = []
    async for event in fake.watch(CONFIGURATIONS, resource_version=listed.resource_version, timeout_seconds=0):
        events.append((event.type, event.object["metadata"]["name"]))
    assert events == [("ADDED", "a")]
    fake.compact()
    with pytest.raises(Gone):
        async for _ in fake.watch(CONFIGURATIONS, resource_version=listed.resource_version, timeout_seconds=0):
            pass


async def test_watch_wakes_on_new_writes() -> None:
    fake = FakeKubeClient()
    listed = await fake.list(CONFIGURATIONS)

    async def first_event() -> str:
        async for event in fake.watch(CONFIGURATIONS, resource_version=listed.resource_version, timeout_seconds=5):
            return str(event.object["metadata"]["name"])
        return ""

    task = asyncio.create_task(first_event())
    await asyncio.sleep(0)
    await fake.create(CONFIGURATIONS, config("late"))
    assert await task == "late"
