"""The node agent's bookkeeping over the in-memory API server: which pods it binds, which it
runs and stops as its informers hear of them (re-lists included), and what it clears away
after a restart. Pod workers are stand-ins here; the functional tests run real processes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from knserve.clock import FakeClock
from kube.errors import ApiError
from kube.fake import FakeKubeClient
from kube.resources import PODS
from node import agent as agent_module
from node.addresses import AllocationStore
from node.agent import NodeAgent, wants_binding
from node.api import NodeApi, ServerInfo
from node.context import ImageMapCache, NodeContext, NodeSettings, StateLayout
from node.network import LoopbackRange
from tests.support.eventually import eventually_async

NODE = "node-1"


class StandInWorker:
    """What the agent asks of a ``PodWorker``, without processes."""

    def __init__(self, ctx: NodeContext, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        self.pod = pod
        self.uid, self.namespace, self.name = metadata["uid"], metadata["namespace"], metadata["name"]
        self.key = f"{self.namespace}/{self.name}"
        self.host_network = False
        self.pod_ip = ctx.allocations.address_for(self.uid)
        ctx.layout.work_dir(self.uid).mkdir(parents=True, exist_ok=True)
        self.started = False
        self.stopped_with: float | None = None

    def start(self) -> None:
        self.started = True

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod

    async def terminate(self, grace: float, *, pre_stop: bool = True) -> None:
        self.stopped_with = grace

    async def publish(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def termination_grace_period(self) -> float:
        return 30.0


def pod(name: str, *, node: str = NODE, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"},
            "spec": {**({"nodeName": node} if node else {}), "containers": [{"name": "app"}], **spec}}


@pytest.fixture
def stand_in_workers(monkeypatch: pytest.MonkeyPatch) -> list[StandInWorker]:
    made: list[StandInWorker] = []

    def make(ctx: NodeContext, pod: dict[str, Any]) -> StandInWorker:
        made.append(StandInWorker(ctx, pod))
        return made[-1]

    monkeypatch.setattr(agent_module, "PodWorker", make)
    monkeypatch.setattr(agent_module, "BIND_RETRY_SECONDS", 0.01)
    return made


def node_agent(fake: FakeKubeClient, state: Path, *, bind_pending_pods: bool = True) -> NodeAgent:
    layout = StateLayout(state)
    layout.pods.mkdir(parents=True, exist_ok=True)
    clock = FakeClock()
    api = NodeApi(fake)
    server = ServerInfo(url="https://127.0.0.1:6443", ca_pem=None, host="127.0.0.1", port=6443)
    ctx = NodeContext(
        api=api,
        settings=NodeSettings(node_name=NODE, host_ip="127.0.0.1", shutdown_grace=1.0, base_env={},
                              bind_pending_pods=bind_pending_pods),
        layout=layout,
        allocations=AllocationStore(layout.allocations, block=ipaddress.IPv4Network("127.0.1.0/24")),
        server=server,
        pod_server=server,
        probe_session=None,  # type: ignore[arg-type]  # no probes here
        images=ImageMapCache(api, namespace="knserve", name="images", clock=clock),
        clock=clock,
        network=LoopbackRange(),
    )
    return NodeAgent(ctx, log_port=0, log_tls=None)


@contextlib.asynccontextmanager
async def running(agent: NodeAgent) -> AsyncIterator[None]:
    """The agent's informers (and the leftover sweep) running; no Node, Lease or log endpoint."""
    tasks = [asyncio.create_task(agent.pods.run()), asyncio.create_task(agent._stop_leftovers_once_listed())]
    if agent.unscheduled is not None:
        tasks.append(asyncio.create_task(agent.unscheduled.run()))
    try:
        await agent.pods.wait_synced()
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize(("pod_object", "want"), [
    pytest.param(pod("a", node=""), True, id="pending"),
    pytest.param(pod("a"), False, id="already on a node"),
    pytest.param(pod("a", node="", schedulerName="custom"), False, id="another scheduler's"),
    pytest.param(pod("a", node="", schedulerName="default-scheduler"), True, id="the default scheduler's"),
    pytest.param({**pod("a", node=""), "status": {"phase": "Succeeded"}}, False, id="finished"),
    pytest.param({**pod("a", node=""), "metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
                 False, id="being deleted"),
])
def test_wants_binding(pod_object: dict[str, Any], want: bool) -> None:
    assert wants_binding(pod_object) is want


async def test_pending_pods_are_bound_here_and_a_failed_bind_is_tried_again(
    tmp_path: Path, stand_in_workers: list[StandInWorker]
) -> None:
    fake = FakeKubeClient()
    agent = node_agent(fake, tmp_path)
    fake.fail_on("create_subresource", PODS, ApiError(500, "InternalError", "etcd is away"), times=1)
    async with running(agent):
        first = await fake.create(PODS, pod("first", node=""))
        await fake.create(PODS, pod("elsewhere", node="", schedulerName="custom"))
        await eventually_async(lambda: any(worker.name == "first" for worker in stand_in_workers),
                               what="a worker for the bound pod")
        assert (fake.peek(PODS, "ns", "first") or {})["spec"]["nodeName"] == NODE
        assert stand_in_workers[0].uid == first["metadata"]["uid"] and stand_in_workers[0].started
        assert "nodeName" not in (fake.peek(PODS, "ns", "elsewhere") or {})["spec"]
        assert [str(action) for action in fake.writes("create_subresource")] == [
            "create_subresource pods ns/first/binding"]


async def test_without_binding_pending_pods_are_left_to_a_scheduler(
    tmp_path: Path, stand_in_workers: list[StandInWorker]
) -> None:
    fake = FakeKubeClient()
    agent = node_agent(fake, tmp_path, bind_pending_pods=False)
    assert agent.unscheduled is None
    async with running(agent):
        await fake.create(PODS, pod("pending", node=""))
        await fake.create(PODS, pod("placed"))
        await eventually_async(lambda: stand_in_workers, what="a worker for the placed pod")
    assert [worker.name for worker in stand_in_workers] == ["placed"]
    assert "nodeName" not in (fake.peek(PODS, "ns", "pending") or {})["spec"]


async def test_pods_on_the_node_run_and_a_deleted_one_is_stopped_and_removed(
    tmp_path: Path, stand_in_workers: list[StandInWorker]
) -> None:
    fake = FakeKubeClient([(PODS, pod("web")), (PODS, pod("other-node", node="node-2"))])
    agent = node_agent(fake, tmp_path)
    async with running(agent):
        assert [worker.name for worker in stand_in_workers] == ["web"]
        web = stand_in_workers[0]
        assert web.started
        deleting = fake.peek(PODS, "ns", "web") or {}
        deleting["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", deletionGracePeriodSeconds=5)
        await fake.update(PODS, deleting)
        # stopped, then deleted with its uid
        await eventually_async(lambda: fake.peek(PODS, "ns", "web") is None, what="the pod deleted")
        await eventually_async(lambda: not agent.workers, what="the worker forgotten")
        assert web.stopped_with == 5.0
        assert not agent.ctx.layout.pod_dir(web.uid).exists()
        assert web.uid not in agent.ctx.allocations.known_pods()


async def test_a_relist_stops_pods_that_went_and_a_same_named_successor_replaces_its_predecessor(
    tmp_path: Path, stand_in_workers: list[StandInWorker]
) -> None:
    fake = FakeKubeClient([(PODS, pod("web")), (PODS, pod("db"))])
    agent = node_agent(fake, tmp_path)
    agent.pods._watch_timeout_seconds = 1
    agent.pods._retry_delay = 0
    async with running(agent):
        old_web, db = sorted(stand_in_workers, key=lambda worker: worker.name, reverse=True)
        # While the watch is away: web is replaced by a pod of the same name, db goes; history is lost.
        fake.compact()
        await fake.delete(PODS, "ns", "web")
        await fake.create(PODS, pod("web"))
        await fake.delete(PODS, "ns", "db")
        fake.compact()
        await eventually_async(lambda: agent.pods.lists >= 2 and len(stand_in_workers) == 3 and not (
            set(agent.workers) & {old_web.uid, db.uid}), what="a re-list and its changes")
        new_web = stand_in_workers[2]
        assert new_web.name == "web" and new_web.uid != old_web.uid and new_web.started
        assert old_web.stopped_with is not None and db.stopped_with is not None
        assert set(agent.workers) == {new_web.uid}


async def test_after_a_restart_what_pods_gone_meanwhile_left_is_cleared_and_the_rest_kept(
    tmp_path: Path, stand_in_workers: list[StandInWorker]
) -> None:
    fake = FakeKubeClient([(PODS, pod("web"))])
    uid = (fake.peek(PODS, "ns", "web") or {})["metadata"]["uid"]
    layout = StateLayout(tmp_path)
    for left in (uid, "gone-while-away"):
        (layout.pod_dir(left) / "containers" / "app").mkdir(parents=True)
    allocations = AllocationStore(layout.allocations, block=ipaddress.IPv4Network("127.0.1.0/24"))
    allocations.address_for(uid)
    allocations.address_for("gone-while-away")
    agent = node_agent(fake, tmp_path)
    async with running(agent):
        await eventually_async(lambda: not layout.pod_dir("gone-while-away").exists(), what="the leftover removed")
        await eventually_async(lambda: agent.ctx.allocations.known_pods() == {uid}, what="its address released")
        assert layout.pod_dir(uid).exists()
        assert [worker.uid for worker in stand_in_workers] == [uid]
