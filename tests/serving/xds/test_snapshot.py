import pytest

from serving.xds import type_urls
from serving.xds.model import Endpoint, Split
from serving.xds.resources import cluster, listener, route
from serving.xds.snapshot import InconsistentSnapshotError, Resource, ResourceSet, Snapshot, describe, from_message
from tests.serving.xds.factories import make_snapshot, resource

CDS, EDS, LDS, RDS = type_urls.ADS_ORDER


@pytest.mark.parametrize(
    ("resources", "problems"),
    [
        pytest.param({}, [], id="empty is consistent"),
        pytest.param(
            {"clusters": [resource(CDS, "a", references=("a",))]},
            ["no endpoints for cluster 'a'"],
            id="cluster without endpoints",
        ),
        pytest.param(
            {"clusters": [resource(CDS, "a", references=("a",))], "endpoints": [resource(EDS, "a"), resource(EDS, "b")]},
            ["endpoints for no cluster: 'b'"],
            id="orphan endpoints",
        ),
        pytest.param(
            {"listeners": [resource(LDS, "l", references=("r",))]},
            ["no route configuration 'r'"],
            id="listener without its routes",
        ),
        pytest.param(
            {"routes": [resource(RDS, "r")]},
            ["route configuration no listener uses: 'r'"],
            id="routes no listener uses",
        ),
        pytest.param(
            {"listeners": [resource(LDS, "l", references=("r",))], "routes": [resource(RDS, "r", references=("x", "y"))]},
            ["routes send to missing cluster 'x'", "routes send to missing cluster 'y'"],
            id="routes to missing clusters",
        ),
        pytest.param(
            {"clusters": [resource(CDS, "a", references=("a",)), resource(CDS, "a", references=("a",))],
             "endpoints": [resource(EDS, "a")]},
            ["CDS resource 'a' is given twice"],
            id="a name twice",
        ),
    ],
)
def test_snapshot_consistency(resources: dict[str, list[Resource]], problems: list[str]) -> None:
    if not problems:
        Snapshot.create(1, **resources)
        return
    with pytest.raises(InconsistentSnapshotError) as error:
        Snapshot.create(1, **resources)
    assert error.value.problems == problems


def test_a_cluster_no_route_uses_is_allowed() -> None:
    snapshot = make_snapshot(1, clusters=("a", "warming"), routed=("a",))
    assert set(snapshot[CDS].items) == {"a", "warming"}


def test_versions_follow_content_only() -> None:
    first, again = make_snapshot(1), make_snapshot(7)
    changed_routes = make_snapshot(2, route_body="x")

    assert first[CDS].version == again[CDS].version
    assert first[RDS].version == again[RDS].version
    assert changed_routes[RDS].version != first[RDS].version
    assert changed_routes[CDS].version == first[CDS].version


def test_merged_keeps_old_names_and_takes_new_content() -> None:
    old = ResourceSet.of(EDS, [resource(EDS, "a", "1"), resource(EDS, "b", "1")])
    new = ResourceSet.of(EDS, [resource(EDS, "b", "2"), resource(EDS, "c", "2")])

    merged = old.merged(new)

    assert {name: item.body for name, item in merged.items.items()} == {"a": b"a:1", "b": b"b:2", "c": b"c:2"}
    assert merged.version == ResourceSet.of(EDS, [resource(EDS, "a", "1"), *new.items.values()]).version
    assert old.merged(old) is old
    assert ResourceSet.of(EDS, []).merged(new) is new


@pytest.mark.parametrize(
    ("message", "want"),
    [
        pytest.param(cluster.make_cluster("ns/r"), (CDS, "ns/r", {"ns/r"}), id="cluster needs its endpoints"),
        pytest.param(cluster.make_load_assignment("ns/r", (Endpoint("10.0.0.1"),)), (EDS, "ns/r", set()), id="endpoints"),
        pytest.param(listener.make_listener("external", host="0.0.0.0", port=1, route_config_name="ext-routes"),
                     (LDS, "external", {"ext-routes"}), id="listener needs its route configuration"),
        pytest.param(route.make_route_config("external", [
            route.make_virtual_host("a", ("a",), (Split("r1", "ns", 50), Split("r2", "ns", 50))),
            route.make_virtual_host("b", ("b",), (Split("r3", "other", 1),)),
        ]), (RDS, "external", {"ns/r1", "ns/r2", "other/r3"}), id="routes need their clusters"),
    ],
)
def test_describe_reads_names_and_references(message: object, want: tuple[str, str, set[str]]) -> None:
    assert describe(message) == want  # type: ignore[arg-type]


def test_from_message_encodes_once_with_its_response_entry() -> None:
    made = from_message(cluster.make_cluster("ns/r"))
    assert made.body == bytes(cluster.make_cluster("ns/r"))
    assert made.entry.endswith(made.body)
    assert made.references == frozenset({"ns/r"})
