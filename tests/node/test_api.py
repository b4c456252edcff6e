"""The node agent's API verbs over the in-memory API server."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from kube.errors import ApiError, Conflict
from kube.fake import FakeKubeClient
from kube.resources import CONFIGMAPS, LEASES, NODES, PODS, SECRETS, SERVICE_ACCOUNTS
from node.api import NodeApi, ServerInfo


def pod(name: str = "web") -> dict:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"containers": [{"name": "app"}]}}


async def test_a_node_is_registered_once_and_its_status_patched() -> None:
    fake = FakeKubeClient()
    api = NodeApi(fake)
    assert await api.get_node("node-1") is None
    created = await api.create_node({"metadata": {"name": "node-1"}, "spec": {}})
    assert created["kind"] == "Node"
    patched = await api.patch_node_status("node-1", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert patched["status"]["conditions"][0]["type"] == "Ready"
    assert (await api.get_node("node-1") or {})["status"] == patched["status"]


async def test_a_lease_is_created_then_replaced_and_a_stale_one_conflicts() -> None:
    api = NodeApi(FakeKubeClient())
    assert await api.get_lease("kube-node-lease", "node-1") is None
    lease = {"metadata": {"name": "node-1", "namespace": "kube-node-lease"}, "spec": {"renewTime": "a"}}
    created = await api.create_lease(lease)
    renewed = await api.replace_lease({**created, "spec": {"renewTime": "b"}})
    assert renewed["spec"]["renewTime"] == "b" and renewed["kind"] == "Lease"
    with pytest.raises(Conflict):
        await api.replace_lease({**created, "spec": {"renewTime": "c"}})


async def test_binding_sets_the_pods_node_and_a_second_binding_is_refused() -> None:
    fake = FakeKubeClient()
    api = NodeApi(fake)
    uid = (await fake.create(PODS, pod()))["metadata"]["uid"]
    await api.bind_pod("ns", "web", uid=uid, node_name="node-1")
    assert (fake.peek(PODS, "ns", "web") or {})["spec"]["nodeName"] == "node-1"
    with pytest.raises(ApiError) as refused:
        await api.bind_pod("ns", "web", uid=uid, node_name="node-1")
    assert refused.value.status == 409
    assert [str(action) for action in fake.writes(resource=PODS)][-1] == "create_subresource pods ns/web/binding"


async def test_pod_status_is_written_only_to_the_pod_of_that_uid() -> None:
    fake = FakeKubeClient()
    api = NodeApi(fake)
    uid = (await fake.create(PODS, pod()))["metadata"]["uid"]
    written = await api.patch_pod_status("ns", "web", {"metadata": {"uid": uid}, "status": {"phase": "Running"}})
    assert written["status"]["phase"] == "Running" and written["spec"] == pod()["spec"]
    with pytest.raises(ApiError) as successor:
        await api.patch_pod_status("ns", "web", {"metadata": {"uid": "the-old-pod"}, "status": {"phase": "Failed"}})
    assert successor.value.status == 409


async def test_delete_now_leaves_a_successor_alone_and_ignores_a_pod_already_gone() -> None:
    fake = FakeKubeClient()
    api = NodeApi(fake)
    uid = (await fake.create(PODS, pod()))["metadata"]["uid"]
    await api.delete_pod_now("ns", "web", uid="the-old-pod")
    assert fake.peek(PODS, "ns", "web") is not None
    await api.delete_pod_now("ns", "web", uid=uid)
    assert fake.peek(PODS, "ns", "web") is None
    await api.delete_pod_now("ns", "web", uid=uid)


async def test_config_map_data_joins_binary_data_and_missing_objects_are_none() -> None:
    fake = FakeKubeClient([
        (CONFIGMAPS, {"metadata": {"name": "settings", "namespace": "ns"}, "data": {"a": "1"},
                      "binaryData": {"b": base64.b64encode(b"two").decode()}}),
        (SECRETS, {"metadata": {"name": "key", "namespace": "ns"}, "data": {"k": base64.b64encode(b"v").decode()}}),
    ])
    api = NodeApi(fake)
    assert await api.get_config_map_data("ns", "settings") == {"a": "1", "b": "two"}
    assert await api.get_config_map_data("ns", "missing") is None
    assert (await api.get_secret("ns", "key") or {})["data"] == {"k": "dg=="}
    assert await api.get_secret("ns", "missing") is None


async def test_a_token_is_requested_for_the_pods_service_account() -> None:
    fake = FakeKubeClient([(SERVICE_ACCOUNTS, {"metadata": {"name": "runner", "namespace": "ns"}})])
    api = NodeApi(fake)
    uid = (await fake.create(PODS, pod()))["metadata"]["uid"]
    token, expires = await api.request_token("ns", "runner", pod_name="web", pod_uid=uid, expiration_seconds=3607)
    assert token.startswith("fake-token:ns:runner:") and expires.endswith("Z")
    request = fake.writes("create_subresource", SERVICE_ACCOUNTS)[0].object or {}
    assert request["spec"]["expirationSeconds"] == 3607
    assert request["spec"]["boundObjectRef"] == {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": uid}


@pytest.mark.parametrize("failure", [
    pytest.param(aiohttp.ServerDisconnectedError(), id="server disconnected"),
    pytest.param(aiohttp.ClientOSError(111, "Connection refused"), id="refused"),
    pytest.param(TimeoutError(), id="timed out"),
])
async def test_a_server_that_does_not_answer_is_an_api_error_with_status_zero(failure: Exception) -> None:
    fake = FakeKubeClient()
    fake.fail_on("get", LEASES, failure)
    with pytest.raises(ApiError) as unreachable:
        await NodeApi(fake).get_lease("kube-node-lease", "node-1")
    assert (unreachable.value.status, unreachable.value.reason) == (0, "Unreachable")


async def test_api_errors_pass_through_unchanged() -> None:
    fake = FakeKubeClient()
    fake.fail_on("get", NODES, ApiError(403, "Forbidden", "nodes is forbidden"))
    with pytest.raises(ApiError) as forbidden:
        await NodeApi(fake).get_node("node-1")
    assert (forbidden.value.status, forbidden.value.reason) == (403, "Forbidden")


def test_the_server_reached_through_another_address_is_checked_against_its_service_name() -> None:
    server = ServerInfo(url="https://127.0.0.1:6443", ca_pem=b"ca", host="127.0.0.1", port=6443)
    through_gateway = server.reached_at("10.244.0.1")
    assert through_gateway == ServerInfo(url="https://10.244.0.1:6443", ca_pem=b"ca", host="10.244.0.1", port=6443,
                                         tls_server_name="kubernetes.default.svc")
