"""The REST client and an informer against the real API server of the test session."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kube.client import connect
from kube.errors import AlreadyExists, Conflict, NotFound
from kube.informer import Informer
from kube.resources import CONFIGMAPS, PODS, SERVICE_ACCOUNTS


def configmap(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"suite": "kube"}}, "data": data}


async def test_crud_conflicts_and_merge_patch(cluster: Any, namespace: str) -> None:
    client = await connect(str(cluster.kubeconfig))
    try:
        created = await client.create(CONFIGMAPS, configmap(namespace, "a", x="1"))
        assert created["kind"] == "ConfigMap"
        with pytest.raises(AlreadyExists):
            await client.create(CONFIGMAPS, configmap(namespace, "a"))
        updated = await client.update(CONFIGMAPS, {**created, "data": {"x": "2"}})
        with pytest.raises(Conflict):
            await client.update(CONFIGMAPS, {**created, "data": {"x": "3"}})  # stale resourceVersion
        patched = await client.patch(CONFIGMAPS, namespace, "a", {"data": {"y": "9"}})
        assert patched["data"] == {"x": "2", "y": "9"}
        assert updated["metadata"]["resourceVersion"] != patched["metadata"]["resourceVersion"]
        listed = await client.list(CONFIGMAPS, namespace=namespace, label_selector="suite=kube")
        assert [item["metadata"]["name"] for item in listed.items] == ["a"]
        await client.delete(CONFIGMAPS, namespace, "a")
        with pytest.raises(NotFound):
            await client.get(CONFIGMAPS, namespace, "a")
    finally:
        await client.close()


async def test_informer_follows_changes(cluster: Any, namespace: str) -> None:
    client = await connect(str(cluster.kubeconfig))
    informer = Informer(client, CONFIGMAPS, namespace=namespace, label_selector="suite=kube", watch_timeout_seconds=5)
    seen: list[tuple[str, str]] = []
    informer.add_handler(lambda change: seen.append((change.kind, change.object["metadata"]["name"])))
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.wait_synced(), 30)
        await client.create(CONFIGMAPS, configmap(namespace, "b"))
        await client.patch(CONFIGMAPS, namespace, "b", {"data": {"k": "v"}})
        await client.delete(CONFIGMAPS, namespace, "b")
        async with asyncio.timeout(30):
            while ("delete", "b") not in seen:
                await asyncio.sleep(0.05)
        assert seen == [("add", "b"), ("update", "b"), ("delete", "b")]
        assert informer.store.get(namespace, "b") is None
    finally:
        task.cancel()
        await client.close()


async def test_binding_token_request_and_an_immediate_delete_of_a_placed_pod(cluster: Any, namespace: str) -> None:
    client = await connect(str(cluster.kubeconfig))
    try:
        # A scheduler of its own keeps the node agent's binder away from this pod.
        created = await client.create(PODS, {"metadata": {"name": "placed", "namespace": namespace}, "spec": {
            "schedulerName": "nobody", "containers": [{"name": "app", "image": "example.test/app"}]}})
        uid = created["metadata"]["uid"]
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "placed", "namespace": namespace,
                                                                       "uid": uid},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": "nowhere"}}
        answer = await client.create_subresource(PODS, namespace, "placed", "binding", binding)
        assert (answer["kind"], answer["status"]) == ("Status", "Success")  # not a Binding
        with pytest.raises(Conflict):
            await client.create_subresource(PODS, namespace, "placed", "binding", binding)
        on_node = await client.list(PODS, namespace=namespace, field_selector="spec.nodeName=nowhere")
        assert [item["metadata"]["name"] for item in on_node.items] == ["placed"]

        token = await client.create_subresource(SERVICE_ACCOUNTS, namespace, "default", "token", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
                "expirationSeconds": 600, "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "placed",
                                                             "uid": uid}}})
        assert token["kind"] == "TokenRequest" and token["status"]["token"]

        with pytest.raises(Conflict):
            await client.delete(PODS, namespace, "placed", uid="not-its-uid", grace_period_seconds=0)
        # A bound pod waits for its kubelet unless deleted with grace 0.
        await client.delete(PODS, namespace, "placed", uid=uid, grace_period_seconds=0)
        with pytest.raises(NotFound):
            await client.get(PODS, namespace, "placed")
    finally:
        await client.close()
