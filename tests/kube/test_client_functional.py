"""The REST client and an informer against the real API server of the test session."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kube.client import connect
from kube.errors import AlreadyExists, Conflict, NotFound
from kube.informer import Informer
from kube.resources import CONFIGMAPS


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
