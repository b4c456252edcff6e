import asyncio

import pytest

from kube.client import STRATEGIC_MERGE_PATCH
from kube.errors import AlreadyExists, Conflict, Gone, NotFound
from kube.fake import FakeKubeClient
from kube.resources import CONFIGURATIONS, DEPLOYMENTS, PODS, SERVICE_ACCOUNTS


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


def pod(name: str, node: str = "", **metadata: object) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", **metadata},
            "spec": {"nodeName": node} if node else {}}


async def test_list_and_watch_select_by_field() -> None:
    fake = FakeKubeClient([(PODS, pod("here", "node-1")), (PODS, pod("there", "node-2")), (PODS, pod("pending"))])
    listed = await fake.list(PODS, field_selector="spec.nodeName=node-1")
    assert [item["metadata"]["name"] for item in listed.items] == ["here"]
    unscheduled = await fake.list(PODS, field_selector="spec.nodeName=")
    assert [item["metadata"]["name"] for item in unscheduled.items] == ["pending"]
    await fake.create(PODS, pod("new-here", "node-1"))
    await fake.create(PODS, pod("new-there", "node-2"))
    events = [(event.type, event.object["metadata"]["name"]) async for event in fake.watch(
        PODS, resource_version=listed.resource_version, field_selector="spec.nodeName=node-1", timeout_seconds=0)]
    assert events == [("ADDED", "new-here")]


async def test_binding_places_a_pod_once_and_answers_with_a_status() -> None:
    fake = FakeKubeClient()
    created = await fake.create(PODS, pod("web"))
    uid = created["metadata"]["uid"]

    def binding(node: str, binding_uid: str = uid) -> dict:
        return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web", "namespace": "ns", "uid": binding_uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}

    with pytest.raises(Conflict, match="Precondition failed"):
        await fake.create_subresource(PODS, "ns", "web", "binding", binding("node-1", "another-uid"))
    answer = await fake.create_subresource(PODS, "ns", "web", "binding", binding("node-1"))
    assert answer["kind"] == "Status" and answer["status"] == "Success"
    assert (await fake.get(PODS, "ns", "web"))["spec"]["nodeName"] == "node-1"
    with pytest.raises(Conflict, match='already assigned to node "node-1"'):
        await fake.create_subresource(PODS, "ns", "web", "binding", binding("node-2"))
    with pytest.raises(NotFound):
        await fake.create_subresource(PODS, "ns", "gone", "binding", binding("node-1"))
    assert [str(action) for action in fake.actions] == ["create pods ns/web", "create_subresource pods ns/web/binding"]


async def test_token_request_is_bound_to_an_existing_pod() -> None:
    fake = FakeKubeClient([(SERVICE_ACCOUNTS, {"metadata": {"name": "default", "namespace": "ns"}})])
    created = await fake.create(PODS, pod("web"))

    def request(pod_uid: str) -> dict:
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "expirationSeconds": 600, "boundObjectRef": {"kind": "Pod", "name": "web", "uid": pod_uid}}}

    answer = await fake.create_subresource(SERVICE_ACCOUNTS, "ns", "default", "token",
                                           request(created["metadata"]["uid"]))
    assert answer["status"]["token"].startswith("fake-token:ns:default:")
    assert answer["status"]["expirationTimestamp"].endswith("Z")
    with pytest.raises(Conflict):
        await fake.create_subresource(SERVICE_ACCOUNTS, "ns", "default", "token", request("old-uid"))
    with pytest.raises(NotFound):
        await fake.create_subresource(SERVICE_ACCOUNTS, "ns", "missing", "token", request(created["metadata"]["uid"]))
    with pytest.raises(NotFound, match="does not serve"):
        await fake.create_subresource(PODS, "ns", "web", "eviction", {})


async def test_a_patch_naming_a_uid_holds_only_for_that_object() -> None:
    fake = FakeKubeClient()
    created = await fake.create(PODS, pod("web"))
    uid = created["metadata"]["uid"]
    patched = await fake.patch(PODS, "ns", "web", {"metadata": {"uid": uid}, "status": {"phase": "Running"}},
                               content_type=STRATEGIC_MERGE_PATCH, subresource="status")
    assert patched["status"] == {"phase": "Running"}
    with pytest.raises(Conflict, match="Precondition failed"):
        await fake.patch(PODS, "ns", "web", {"metadata": {"uid": "successor"}, "status": {"phase": "Failed"}},
                         content_type=STRATEGIC_MERGE_PATCH, subresource="status")


async def test_delete_with_grace_zero_and_a_uid_precondition() -> None:
    fake = FakeKubeClient()
    created = await fake.create(PODS, pod("web"))
    with pytest.raises(Conflict):
        await fake.delete(PODS, "ns", "web", uid="successor", grace_period_seconds=0)
    await fake.delete(PODS, "ns", "web", uid=created["metadata"]["uid"], grace_period_seconds=0)
    assert fake.peek(PODS, "ns", "web") is None
