import asyncio
import contextlib
from collections.abc import AsyncIterator

from kube.cache import by_controller_uid
from kube.fake import FakeKubeClient
from kube.informer import Change, Informer, InformerFactory
from kube.resources import CONFIGURATIONS, PODS
from tests.support.eventually import eventually_async


def config(name: str, owner_uid: str | None = None) -> dict:
    metadata: dict = {"name": name, "namespace": "ns", "labels": {"app": name}}
    if owner_uid:
        metadata["ownerReferences"] = [{"uid": owner_uid, "controller": True, "name": "o", "kind": "Service"}]
    return {"metadata": metadata, "spec": {}}


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[list[Change]]:
    """Run ``informer`` for the block, synced at its start; yields what its handlers hear."""
    changes: list[Change] = []
    informer.add_handler(changes.append)
    task = asyncio.create_task(informer.run())
    try:
        await informer.wait_synced()
        yield changes
    finally:
        task.cancel()


async def test_informer_lists_watches_and_indexes() -> None:
    fake = FakeKubeClient([(CONFIGURATIONS, config("a", "owner-1"))])
    informer = Informer(fake, CONFIGURATIONS, indexers={"owner": by_controller_uid})
    async with running(informer) as changes:

        def seen() -> list[tuple[str, str]]:
            return [(change.kind, change.object["metadata"]["name"]) for change in changes]

        assert [o["metadata"]["name"] for o in informer.store.by_index("owner", "owner-1")] == ["a"]
        await fake.create(CONFIGURATIONS, config("b"))
        await fake.delete(CONFIGURATIONS, "ns", "a")
        await eventually_async(lambda: ("delete", "a") in seen(), what="the informer to catch up")
        assert seen() == [("add", "a"), ("add", "b"), ("delete", "a")]
        assert informer.store.list("ns", "app=b")[0]["metadata"]["name"] == "b"
        assert informer.store.by_index("owner", "owner-1") == []


async def test_informer_relists_after_gone_and_reports_missed_deletes() -> None:
    fake = FakeKubeClient([(CONFIGURATIONS, config("a")), (CONFIGURATIONS, config("b"))])
    informer = Informer(fake, CONFIGURATIONS, watch_timeout_seconds=1, retry_delay=0)
    async with running(informer) as changes:
        # while the watch is between requests, history is compacted and an object vanishes
        fake.compact()
        await fake.delete(CONFIGURATIONS, "ns", "a")
        fake.compact()
        await eventually_async(lambda: informer.store.get("ns", "a") is None, what="the informer to catch up")
        assert informer.lists >= 2
        assert any(c.kind == "delete" and c.object["metadata"]["name"] == "a" for c in changes)


async def test_an_update_this_process_wrote_reaches_the_handlers_from_the_version_they_knew() -> None:
    fake = FakeKubeClient([(CONFIGURATIONS, config("a"))])
    informer = Informer(fake, CONFIGURATIONS)
    async with running(informer) as changes:
        known = informer.store.get("ns", "a")
        changed = {**known, "spec": {"template": "v2"}}
        written = await fake.update(CONFIGURATIONS, changed)
        informer.store.remember_write(written)  # the cache has it before the watch brings it
        await eventually_async(lambda: len(changes) == 2, what="the informer to catch up")
        update = changes[1]
        assert update.kind == "update"
        assert update.old is not None and update.old["spec"] == {}
        assert update.object["spec"] == {"template": "v2"}


async def test_an_object_this_process_creates_reaches_the_handlers_once_and_at_once() -> None:
    fake = FakeKubeClient([])
    informer = Informer(fake, CONFIGURATIONS)
    async with running(informer) as changes:
        created = await fake.create(CONFIGURATIONS, config("a"))
        informer.store.remember_write(created)  # before the watch has brought it
        assert [(c.kind, c.object["metadata"]["name"]) for c in changes] == [("add", "a")]
        changed = await fake.update(CONFIGURATIONS, {**created, "spec": {"template": "v2"}})
        # the watch's ADDED was not announced again
        await eventually_async(lambda: len(changes) == 2, what="the informer to catch up")
        assert changes[1].kind == "update" and changes[1].object["spec"] == changed["spec"]


def pod(name: str, node: str = "") -> dict:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": node} if node else {}}


async def test_an_informer_with_a_field_selector_sees_only_what_it_selects() -> None:
    fake = FakeKubeClient([(PODS, pod("here", "node-1")), (PODS, pod("there", "node-2"))])
    informer = Informer(fake, PODS, field_selector="spec.nodeName=node-1")
    async with running(informer) as changes:
        pending = await fake.create(PODS, pod("pending"))
        await fake.create_subresource(PODS, "ns", "pending", "binding", {
            "metadata": {"name": "pending", "uid": pending["metadata"]["uid"]}, "target": {"kind": "Node", "name": "node-1"}})
        await eventually_async(lambda: informer.store.get("ns", "pending") is not None,
                               what="the informer to catch up")
        assert sorted(informer.store.keys()) == ["ns/here", "ns/pending"]
        assert [(c.kind, c.object["metadata"]["name"]) for c in changes] == [("add", "here"), ("add", "pending")]


def test_the_factory_shares_one_informer_per_selectors() -> None:
    factory = InformerFactory(FakeKubeClient(), namespace="ns")
    on_node = factory.informer(PODS, field_selector="spec.nodeName=node-1")
    assert factory.informer(PODS, field_selector="spec.nodeName=node-1") is on_node
    assert on_node.field_selector == "spec.nodeName=node-1" and on_node.namespace == "ns"
    assert factory.informer(PODS) is not on_node
    assert factory.informer(PODS, label_selector="app", field_selector="spec.nodeName=node-1") is not on_node
    assert len(factory.informers) == 3
