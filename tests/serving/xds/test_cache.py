from serving.xds import type_urls
from serving.xds.cache import NodeInfo, NodeStatus, SnapshotCache
from serving.xds.sequencer import Stage
from tests.serving.xds.factories import make_snapshot

CDS, EDS, LDS, RDS = type_urls.ADS_ORDER
INGRESS = NodeInfo(id="envoy-1", cluster="ingress")


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_a_node_connecting_later_gets_its_groups_snapshot() -> None:
    cache = SnapshotCache()
    cache.set_snapshot("ingress", make_snapshot(1))
    cache.set_snapshot("other", make_snapshot(2, clusters=("x",)))

    session = cache.open(INGRESS, Wakes())

    offered = session.offered(CDS)
    assert offered is not None and set(offered.items) == {"a"}


def test_setting_a_snapshot_wakes_only_that_groups_streams() -> None:
    cache = SnapshotCache()
    ingress_wakes, other_wakes = Wakes(), Wakes()
    cache.open(INGRESS, ingress_wakes)
    cache.open(NodeInfo(id="envoy-2", cluster="other"), other_wakes)

    cache.set_snapshot("ingress", make_snapshot(1))

    assert ingress_wakes.count == 1
    assert other_wakes.count == 0


def test_acks_move_the_node_on_and_wake_every_stream_of_it() -> None:
    cache = SnapshotCache()
    cache.set_snapshot("ingress", make_snapshot(1))
    first, second = Wakes(), Wakes()
    session = cache.open(INGRESS, first)
    cache.open(INGRESS, second)

    for type_url in (CDS, EDS):
        offered = session.offered(type_url)
        assert offered is not None
        session.ack(type_url, offered)

    assert session.offered(LDS) is not None
    assert (first.count, second.count) == (2, 2)


def test_status_tells_acks_rejections_and_connection() -> None:
    cache = SnapshotCache()
    seen: list[NodeStatus] = []
    stop = cache.add_observer(seen.append)
    cache.set_snapshot("ingress", make_snapshot(1))
    session = cache.open(INGRESS, Wakes())
    clusters = session.offered(CDS)
    assert clusters is not None

    session.ack(CDS, clusters)
    rejection = session.nack(EDS, session.offered(EDS), "bad endpoints")  # type: ignore[arg-type]

    [status] = cache.statuses("ingress")
    assert status.connected and status.stage is Stage.WARMING
    assert status.acked == {CDS: clusters.version}
    assert status.rejection == rejection == status.last_rejection
    assert status.target_version == 1 and status.served_version == 0

    session.close()
    session.close()
    assert cache.statuses()[0].connected is False
    assert [status.connected for status in seen] == [True, True, True, False]
    stop()
    cache.open(INGRESS, Wakes())
    assert len(seen) == 4


def test_a_node_keeps_its_progress_across_reconnects() -> None:
    cache = SnapshotCache()
    cache.set_snapshot("ingress", make_snapshot(1))
    session = cache.open(INGRESS, Wakes())
    for type_url in type_urls.ADS_ORDER:
        session.ack(type_url, session.offered(type_url))  # type: ignore[arg-type]
    session.close()

    again = cache.open(INGRESS, Wakes())

    assert cache.statuses()[0].served_version == 1
    assert again.offered(LDS) is not None


def test_a_new_envoy_process_under_a_known_id_starts_over() -> None:
    cache = SnapshotCache()
    cache.set_snapshot("ingress", make_snapshot(1))
    session = cache.open(INGRESS, Wakes())
    for type_url in type_urls.ADS_ORDER:
        session.ack(type_url, session.offered(type_url))  # type: ignore[arg-type]
    session.close()

    restarted = cache.open(INGRESS, Wakes(), fresh=True)

    [status] = cache.statuses()
    assert (status.served_version, status.stage, status.acked) == (0, Stage.WARMING, {})
    assert restarted.offered(LDS) is None


def test_only_the_latest_disconnected_nodes_are_remembered() -> None:
    cache = SnapshotCache(keep_disconnected=2)
    sessions = [cache.open(NodeInfo(f"envoy-{index}", "ingress"), Wakes()) for index in range(4)]
    for session in sessions[:3]:
        session.close()

    assert [(status.node.id, status.connected) for status in cache.statuses()] == [
        ("envoy-1", False), ("envoy-2", False), ("envoy-3", True),
    ]
    cache.open(NodeInfo("envoy-1", "ingress"), Wakes())
    sessions[3].close()
    assert {status.node.id for status in cache.statuses()} == {"envoy-1", "envoy-2", "envoy-3"}
