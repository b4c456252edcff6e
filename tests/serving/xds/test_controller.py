"""XdsController's readiness, against its cache with a simulated Envoy (no sockets)."""

import asyncio

import pytest

from knserve.clock import FakeClock
from serving.xds import type_urls
from serving.xds.cache import NodeInfo, NodeSession, NodeStatus
from serving.xds.controller import INGRESS_NODE_CLUSTER, ConfigRejectedError, XdsController
from serving.xds.model import Endpoint, IngressModel, IngressRule, RevisionBackend, Split
from tests.serving.xds.factories import make_snapshot

CDS, EDS, LDS, RDS = type_urls.ADS_ORDER


def model(percent: int, *, generation: int) -> IngressModel:
    return IngressModel(
        rules=(IngressRule("default", "hello", ("hello.default.example.com",),
                           (Split("a", "default", percent), Split("b", "default", 100 - percent)), generation=generation),),
        backends=(RevisionBackend("default", "a", (Endpoint("10.0.0.1"),)), RevisionBackend("default", "b")),
    )


def connect(controller: XdsController, node_id: str = "envoy-1") -> NodeSession:
    return controller.cache.open(NodeInfo(node_id, INGRESS_NODE_CLUSTER), lambda: None)


def accept_everything(session: NodeSession) -> None:
    """What Envoy does, in ADS order, until nothing new is offered."""
    acked: dict[str, str] = {}
    while True:
        for type_url in type_urls.ADS_ORDER:
            offered = session.offered(type_url)
            if offered is not None and acked.get(type_url) != offered.version:
                acked[type_url] = offered.version
                session.ack(type_url, offered)
                break
        else:
            return


async def test_a_route_is_served_once_every_connected_envoy_acked_it() -> None:
    controller = XdsController()
    first, second = connect(controller, "envoy-1"), connect(controller, "envoy-2")
    version = controller.update(model(90, generation=1))

    waiting = asyncio.create_task(controller.wait_route_served("default/hello", 1, timeout=5))
    accept_everything(first)
    await asyncio.sleep(0)
    assert not waiting.done(), "envoy-2 has not ACKed yet"
    accept_everything(second)
    await waiting

    assert controller.is_served(version)
    assert controller.is_route_served("default/hello", 1)
    assert [status.served_version for status in controller.statuses()] == [1, 1]


async def test_nothing_is_served_without_an_envoy() -> None:
    controller = XdsController()
    version = controller.update(model(90, generation=1))
    assert not controller.is_served(version)
    with pytest.raises(TimeoutError):
        await controller.wait_served(version, timeout=0.05)


async def test_a_disconnected_envoy_does_not_hold_readiness_back() -> None:
    controller = XdsController()
    gone, staying = connect(controller, "gone"), connect(controller, "staying")
    gone.close()
    controller.update(model(90, generation=1))
    accept_everything(staying)
    assert controller.is_route_served("default/hello", 1)


async def test_a_later_generation_is_served_by_a_later_snapshot_only() -> None:
    controller = XdsController()
    session = connect(controller)
    controller.update(model(90, generation=1))
    accept_everything(session)
    controller.update(model(50, generation=2))

    assert controller.is_route_served("default/hello", 1)
    assert not controller.is_route_served("default/hello", 2)
    assert controller.first_version("default/hello", 2) == 2
    with pytest.raises(LookupError, match="generation 3 was never given"):
        controller.first_version("default/hello", 3)
    accept_everything(session)
    assert controller.is_route_served("default/hello", 2)


async def test_a_refusal_fails_the_waiters_with_envoys_error() -> None:
    controller = XdsController()
    session = connect(controller)
    controller.update(model(90, generation=1))
    accept_everything(session)
    version = controller.update(model(50, generation=2))
    waiting = asyncio.create_task(controller.wait_served(version, timeout=5))
    await asyncio.sleep(0)

    routes = session.offered(RDS)
    assert routes is not None
    session.nack(RDS, routes, "Only unique values for domains are permitted")

    with pytest.raises(ConfigRejectedError, match="unique values for domains") as refused:
        await waiting
    assert refused.value.node_id == "envoy-1"
    assert refused.value.rejection.snapshot_version == version
    assert controller.is_served(version - 1)


def test_publish_needs_newer_versions_and_progress_is_reported_per_group() -> None:
    controller = XdsController()
    seen: list[NodeStatus] = []
    controller.on_progress(seen.append)
    controller.cache.open(NodeInfo("elsewhere", "other-group"), lambda: None)
    connect(controller)

    assert controller.publish(make_snapshot(5)) == 5 == controller.version
    with pytest.raises(ValueError, match="not newer"):
        controller.publish(make_snapshot(5))
    assert controller.update(IngressModel()) == 6
    assert {status.node.id for status in seen} == {"envoy-1"}


def test_conflicts_of_the_last_model_are_kept() -> None:
    controller = XdsController()
    hello = model(100, generation=1)
    other = IngressRule("default", "other", ("hello.default.example.com",), (Split("a", "default", 100),))
    controller.update(IngressModel(rules=(*hello.rules, other), backends=hello.backends))
    assert [conflict.dropped for conflict in controller.conflicts] == ["default/other"]
    controller.update(hello)
    assert controller.conflicts == ()


async def test_an_envoy_that_never_acknowledges_stops_holding_routes_back_after_the_ack_timeout() -> None:
    clock = FakeClock()
    controller = XdsController(clock=clock, ack_timeout=10)
    real, silent = connect(controller, "envoy-real"), connect(controller, "silent")
    version = controller.update(model(90, generation=1))
    accept_everything(real)
    assert not controller.is_served(version), "within the bound, the silent one is still waited for"

    clock.advance(10)
    assert controller.is_served(version)
    assert "acknowledged nothing for 10s" in controller.lagging()["silent"]
    assert [status.connected for status in controller.statuses()] == [True, True], "its stream is kept"

    # Later Routes are not held back either, not even for the bound.
    later = controller.update(model(50, generation=2))
    accept_everything(real)
    assert controller.is_served(later)

    # Once it acknowledges, it counts again.
    accept_everything(silent)
    assert controller.lagging() == {}
    newest = controller.update(model(40, generation=3))
    accept_everything(real)
    assert not controller.is_served(newest)
    accept_everything(silent)
    assert controller.is_served(newest)


async def test_a_waiting_route_is_released_when_the_silent_envoy_runs_out_of_time() -> None:
    controller = XdsController(ack_timeout=0.2)
    real, _silent = connect(controller, "envoy-real"), connect(controller, "silent")
    controller.update(model(90, generation=1))
    accept_everything(real)
    await controller.wait_route_served("default/hello", 1, timeout=5)
    assert list(controller.lagging()) == ["silent"]


async def test_an_envoy_that_refuses_everything_does_not_hold_back_one_that_accepts() -> None:
    controller = XdsController()
    real, refusing = connect(controller, "envoy-real"), connect(controller, "refusing")
    version = controller.update(model(90, generation=1))
    waiting = asyncio.create_task(controller.wait_served(version, timeout=5))
    clusters = refusing.offered(CDS)
    assert clusters is not None
    refusing.nack(CDS, clusters, "made-up error")
    await asyncio.sleep(0)
    assert not waiting.done(), "the accepting Envoy has not ACKed yet"

    accept_everything(real)
    await waiting
    assert "made-up error" in controller.lagging()["refusing"]


async def test_a_silent_envoy_does_not_turn_a_real_refusal_into_readiness() -> None:
    clock = FakeClock()
    controller = XdsController(clock=clock, ack_timeout=10)
    real, _silent = connect(controller, "envoy-real"), connect(controller, "silent")
    version = controller.update(model(90, generation=1))
    clusters = real.offered(CDS)
    assert clusters is not None
    real.nack(CDS, clusters, "bad cluster")
    assert not controller.is_served(version)
    clock.advance(10)
    with pytest.raises(ConfigRejectedError, match="bad cluster"):
        controller.is_served(version)
