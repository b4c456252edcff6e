"""The make-before-break order, step by step, with an Envoy that ACKs when told to."""

from serving.xds import type_urls
from serving.xds.sequencer import NodeSequencer, Stage
from serving.xds.snapshot import Snapshot
from tests.serving.xds.factories import make_snapshot

CDS, EDS, LDS, RDS = type_urls.ADS_ORDER


def envoy_acks(sequencer: NodeSequencer, *type_urls_acked: str) -> None:
    for type_url in type_urls_acked:
        offered = sequencer.offered(type_url)
        assert offered is not None, f"nothing offered for {type_url}"
        sequencer.ack(type_url, offered)


def stage_of(sequencer: NodeSequencer) -> Stage:
    return sequencer.stage  # a call, so the checker does not carry one assert's narrowing to the next


def names(sequencer: NodeSequencer, type_url: str) -> set[str] | None:
    offered = sequencer.offered(type_url)
    return None if offered is None else set(offered.items)


def settled_on(snapshot: Snapshot) -> NodeSequencer:
    sequencer = NodeSequencer()
    sequencer.set_target(snapshot)
    envoy_acks(sequencer, CDS, EDS, LDS, RDS)
    assert stage_of(sequencer) is Stage.SETTLED
    return sequencer


def test_nothing_is_offered_before_a_snapshot() -> None:
    sequencer = NodeSequencer()
    assert stage_of(sequencer) is Stage.IDLE
    assert [sequencer.offered(type_url) for type_url in type_urls.ADS_ORDER] == [None] * 4


def test_first_snapshot_offers_clusters_and_endpoints_together_then_routes() -> None:
    sequencer = NodeSequencer()
    sequencer.set_target(make_snapshot(1))

    assert stage_of(sequencer) is Stage.WARMING
    assert names(sequencer, CDS) == names(sequencer, EDS) == {"a"}
    assert sequencer.offered(LDS) is None and sequencer.offered(RDS) is None

    envoy_acks(sequencer, CDS)
    assert sequencer.offered(LDS) is None, "routes wait for the endpoints' ACK too"
    envoy_acks(sequencer, EDS)
    assert stage_of(sequencer) is Stage.ROUTING
    assert names(sequencer, LDS) == {"l"} and names(sequencer, RDS) == {"r"}
    assert sequencer.served_version == 0

    envoy_acks(sequencer, RDS, LDS)
    assert sequencer.served_version == 1
    assert stage_of(sequencer) is Stage.SETTLED


def test_route_only_change_goes_straight_to_routes() -> None:
    sequencer = settled_on(make_snapshot(1, clusters=("a", "b"), routed=("a",)))
    clusters_before = sequencer.offered(CDS)

    sequencer.set_target(make_snapshot(2, clusters=("a", "b"), routed=("a", "b")))

    assert stage_of(sequencer) is Stage.ROUTING
    assert sequencer.offered(CDS) is clusters_before
    envoy_acks(sequencer, RDS)
    assert sequencer.served_version == 2
    assert stage_of(sequencer) is Stage.SETTLED


def test_replacing_a_cluster_warms_the_new_one_and_drops_the_old_one_after_the_routes() -> None:
    sequencer = settled_on(make_snapshot(1, clusters=("old",)))

    sequencer.set_target(make_snapshot(2, clusters=("new",)))

    assert names(sequencer, CDS) == names(sequencer, EDS) == {"old", "new"}
    assert set(sequencer.offered(RDS).items["r"].references) == {"old"}  # type: ignore[union-attr]
    envoy_acks(sequencer, CDS, EDS)
    assert stage_of(sequencer) is Stage.ROUTING
    assert names(sequencer, CDS) == {"old", "new"}, "the old cluster stays while the old routes may run"
    envoy_acks(sequencer, RDS)
    assert stage_of(sequencer) is Stage.PRUNING
    assert names(sequencer, CDS) == names(sequencer, EDS) == {"new"}
    envoy_acks(sequencer, CDS, EDS)
    assert stage_of(sequencer) is Stage.SETTLED


def test_endpoint_only_change_is_served_once_endpoints_are_acked() -> None:
    sequencer = settled_on(make_snapshot(1))

    sequencer.set_target(make_snapshot(2, endpoints={"a": "pod-2"}))

    assert stage_of(sequencer) is Stage.WARMING
    assert sequencer.served_version == 1
    envoy_acks(sequencer, EDS)
    assert sequencer.served_version == 2
    assert stage_of(sequencer) is Stage.SETTLED


def test_empty_endpoints_and_routes_need_no_ack() -> None:
    sequencer = NodeSequencer()
    sequencer.set_target(make_snapshot(1, clusters=()))

    envoy_acks(sequencer, CDS)
    assert stage_of(sequencer) is Stage.ROUTING
    envoy_acks(sequencer, LDS, RDS)
    assert stage_of(sequencer) is Stage.SETTLED


def test_refused_routes_stop_the_sequence_until_the_next_snapshot() -> None:
    sequencer = settled_on(make_snapshot(1, clusters=("old",)))
    sequencer.set_target(make_snapshot(2, clusters=("new",)))
    envoy_acks(sequencer, CDS, EDS)
    refused = sequencer.offered(RDS)
    assert refused is not None

    rejection = sequencer.nack(RDS, refused, "duplicate domain")

    assert rejection.snapshot_version == 2 and rejection.message == "duplicate domain"
    assert sequencer.is_rejected(RDS, refused.version)
    assert sequencer.blocking_rejection() == rejection
    assert stage_of(sequencer) is Stage.ROUTING
    assert names(sequencer, CDS) == {"old", "new"}, "the last good routes still need the old cluster"
    assert sequencer.served_version == 1

    sequencer.set_target(make_snapshot(3, clusters=("new",), route_body="fixed"))
    assert sequencer.blocking_rejection() is None
    envoy_acks(sequencer, RDS)
    assert sequencer.served_version == 3


def test_a_new_snapshot_mid_way_starts_from_what_envoy_accepted() -> None:
    sequencer = settled_on(make_snapshot(1, clusters=("a",)))
    sequencer.set_target(make_snapshot(2, clusters=("a", "bad")))
    refused = sequencer.offered(CDS)
    assert refused is not None
    sequencer.nack(CDS, refused, "bad cluster")

    sequencer.set_target(make_snapshot(3, clusters=("a", "good")))

    assert names(sequencer, CDS) == {"a", "good"}, "a refused cluster is not carried over"


def test_an_ack_of_an_older_offer_does_not_count_for_the_newer_one() -> None:
    sequencer = settled_on(make_snapshot(1, clusters=("a",)))
    sequencer.set_target(make_snapshot(2, clusters=("a", "b")))
    sent = sequencer.offered(CDS)
    sequencer.set_target(make_snapshot(3, clusters=("a", "b", "c")))
    assert sent is not None

    sequencer.ack(CDS, sent)
    envoy_acks(sequencer, EDS)

    assert stage_of(sequencer) is Stage.WARMING
    assert sequencer.acked_version(CDS) == sent.version
