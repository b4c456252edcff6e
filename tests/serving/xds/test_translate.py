import datetime

import pytest
from envoy_data_plane.envoy.config.route import v3 as route_v3

from serving.xds import type_urls, wire
from serving.xds.model import Endpoint, IngressModel, IngressRule, RevisionBackend, Split, Visibility
from serving.xds.resources import cluster, listener, route
from serving.xds.snapshot import Snapshot
from serving.xds.translate import HostConflict, IngressSettings, ModelError, Translator, check_model

CDS, EDS, LDS, RDS = type_urls.ADS_ORDER
NS = "default"


def backend(revision: str, *hosts: str, namespace: str = NS) -> RevisionBackend:
    return RevisionBackend(namespace, revision, tuple(Endpoint(host) for host in hosts))


def rule(name: str, hosts: tuple[str, ...], *splits: tuple[str, int], visibility: Visibility = Visibility.EXTERNAL_IP,
         generation: int = 1) -> IngressRule:
    return IngressRule(NS, name, hosts, tuple(Split(revision, NS, percent) for revision, percent in splits),
                       visibility=visibility, generation=generation)


def route_config(snapshot: Snapshot, name: str) -> route_v3.RouteConfiguration:
    return route_v3.RouteConfiguration.parse(snapshot[RDS].items[name].body)


HELLO = rule("hello", ("hello.default.example.com",), ("hello-00001", 90), ("hello-00002", 10))
CANARY = rule("hello", ("canary-hello.default.example.com",), ("hello-00002", 100))
LOCAL = rule("hello", ("hello.default.svc.cluster.local", "hello.default.svc"), ("hello-00001", 90), ("hello-00002", 10),
             visibility=Visibility.CLUSTER_LOCAL)
BACKENDS = (backend("hello-00001", "10.0.0.1"), backend("hello-00002", "10.0.0.2", "10.0.0.3"))


VirtualHosts = list[tuple[tuple[str, ...], tuple[Split, ...]]]


@pytest.mark.parametrize(
    ("model", "external", "internal"),
    [
        pytest.param(IngressModel(), [], [], id="empty model: listeners with no virtual hosts"),
        pytest.param(
            IngressModel(rules=(HELLO, CANARY), backends=BACKENDS),
            [(HELLO.hosts, HELLO.splits), (CANARY.hosts, CANARY.splits)],
            [],
            id="public route with a tag",
        ),
        pytest.param(
            IngressModel(rules=(HELLO, LOCAL), backends=BACKENDS),
            [(HELLO.hosts, HELLO.splits)],
            [(LOCAL.hosts, LOCAL.splits)],
            id="cluster-local hosts on the internal listener",
        ),
        pytest.param(
            IngressModel(rules=(HELLO, rule("other", ("x.example.com", "HELLO.default.example.com"), ("hello-00001", 1))),
                         backends=BACKENDS),
            [(HELLO.hosts, HELLO.splits), (("x.example.com",), (Split("hello-00001", NS, 1),))],
            [],
            id="a host another Route has is left out, whatever its case",
        ),
        pytest.param(
            IngressModel(rules=(HELLO, rule("hello", ("hello.default.example.com", "again.example.com"), ("hello-00002", 1))),
                         backends=BACKENDS),
            [(HELLO.hosts, HELLO.splits), (("again.example.com",), (Split("hello-00002", NS, 1),))],
            [],
            id="a Route's host in two of its rules: the first rule has it",
        ),
        pytest.param(
            IngressModel(rules=(rule("hello", ("a.example.com", "a.example.com"), ("hello-00001", 100)),), backends=BACKENDS),
            [(("a.example.com",), (Split("hello-00001", NS, 100),))],
            [],
            id="a host twice in a rule",
        ),
    ],
)
def test_route_configurations(model: IngressModel, external: VirtualHosts, internal: VirtualHosts) -> None:
    snapshot = Translator().translate(model, version=1).snapshot

    for name, hosts in (("external", external), ("internal", internal)):
        want = route.make_route_config(
            name, [route.make_virtual_host(names[0], names, splits) for names, splits in hosts]
        )
        assert snapshot[RDS].items[name].body == wire.encode(want), "assembled bytes equal the builder's"
        assert route_config(snapshot, name) == want
        assert snapshot[RDS].items[name].references == {
            f"{split.namespace}/{split.revision}" for _, splits in hosts for split in splits
        }


def test_clusters_endpoints_and_listeners() -> None:
    settings = IngressSettings(external_port=18080, internal_port=18081, connect_timeout=datetime.timedelta(seconds=3))
    unused = backend("hello-00003")
    snapshot = Translator(settings).translate(IngressModel(rules=(HELLO,), backends=(*BACKENDS, unused)), version=4).snapshot

    assert snapshot.version == 4
    assert {name: item.body for name, item in snapshot[CDS].items.items()} == {
        f"{NS}/{revision}": wire.encode(cluster.make_cluster(f"{NS}/{revision}", connect_timeout=datetime.timedelta(seconds=3)))
        for revision in ("hello-00001", "hello-00002", "hello-00003")
    }
    assert {name: item.body for name, item in snapshot[EDS].items.items()} == {
        f"{NS}/{b.revision}": wire.encode(cluster.make_load_assignment(f"{NS}/{b.revision}", b.endpoints))
        for b in (*BACKENDS, unused)
    }
    assert {name: item.body for name, item in snapshot[LDS].items.items()} == {
        "external": wire.encode(listener.make_listener("external", host="127.0.0.1", port=18080, route_config_name="external")),
        "internal": wire.encode(listener.make_listener("internal", host="127.0.0.1", port=18081, route_config_name="internal")),
    }


def test_in_cluster_settings_listen_everywhere() -> None:
    settings = IngressSettings.in_cluster()
    assert (settings.external_host, settings.external_port) == ("0.0.0.0", 8080)
    assert (settings.internal_host, settings.internal_port) == ("0.0.0.0", 8081)


def test_a_host_claimed_twice_is_reported() -> None:
    taken = rule("other", ("hello.default.example.com",), ("hello-00002", 100))
    local = rule("third", ("hello.default.example.com",), ("hello-00002", 100), visibility=Visibility.CLUSTER_LOCAL)

    translation = Translator().translate(IngressModel(rules=(HELLO, taken, local), backends=BACKENDS), version=1)

    assert translation.conflicts == (
        HostConflict("hello.default.example.com", "external", kept="default/hello", dropped="default/other"),
    ), "the same host on the other listener is no conflict"
    assert [host.name for host in route_config(translation.snapshot, "internal").virtual_hosts] == ["hello.default.example.com"]


@pytest.mark.parametrize(
    ("model", "problems"),
    [
        pytest.param(IngressModel(rules=(HELLO,), backends=BACKENDS), [], id="servable"),
        pytest.param(
            IngressModel(rules=(HELLO,), backends=BACKENDS[:1]),
            ["Route default/hello sends traffic to default/hello-00002, which the model has no backend for."],
            id="split to a revision without backend",
        ),
        pytest.param(
            IngressModel(rules=(rule("hello", ("h",), ("hello-00001", 0)),), backends=BACKENDS),
            ["Route default/hello has a rule for h with no positive percent."],
            id="no traffic at all",
        ),
        pytest.param(
            IngressModel(rules=(rule("hello", (), ("hello-00001", 100)),), backends=BACKENDS),
            ["Route default/hello has a rule with no hosts."],
            id="no hosts",
        ),
        pytest.param(
            IngressModel(backends=(*BACKENDS, backend("hello-00001", "10.9.9.9"))),
            ["Revision default/hello-00001 has more than one backend; give each revision one."],
            id="two backends for a revision",
        ),
    ],
)
def test_check_model(model: IngressModel, problems: list[str]) -> None:
    assert check_model(model) == problems


def test_translate_refuses_an_unservable_model_with_every_problem() -> None:
    model = IngressModel(rules=(HELLO, rule("x", (), ("gone", 100))), backends=BACKENDS)
    with pytest.raises(ModelError) as error:
        Translator().translate(model, version=1)
    assert error.value.problems == check_model(model)
    assert len(error.value.problems) == 2


def test_unchanged_parts_are_reused_and_changed_ones_rebuilt() -> None:
    translator = Translator()
    first = translator.translate(IngressModel(rules=(HELLO, CANARY), backends=BACKENDS), version=1).snapshot
    scaled = (BACKENDS[0], backend("hello-00002", "10.0.0.2"))
    shifted = rule("hello", ("hello.default.example.com",), ("hello-00001", 50), ("hello-00002", 50))

    second = translator.translate(IngressModel(rules=(shifted, CANARY), backends=scaled), version=2).snapshot

    assert second[CDS].items["default/hello-00001"] is first[CDS].items["default/hello-00001"]
    assert second[EDS].items["default/hello-00001"] is first[EDS].items["default/hello-00001"]
    assert second[EDS].items["default/hello-00002"] is not first[EDS].items["default/hello-00002"]
    assert second[LDS].version == first[LDS].version
    assert second[RDS].version != first[RDS].version
    assert route_config(second, "external").virtual_hosts[1] == route_config(first, "external").virtual_hosts[1]
    assert route_config(second, "external").virtual_hosts[0] != route_config(first, "external").virtual_hosts[0]


def test_every_routed_request_carries_the_ingress_token_the_activator_requires() -> None:
    model = IngressModel(rules=(HELLO, LOCAL), backends=BACKENDS)
    snapshot = Translator(IngressSettings(ingress_token="s3cret")).translate(model, version=1).snapshot
    for name in ("external", "internal"):
        added = [(option.header.key, option.header.value) for option in route_config(snapshot, name).request_headers_to_add]
        assert added == [("K-Network-Ingress-Token", "s3cret")]
    plain = Translator(IngressSettings()).translate(model, version=1).snapshot
    assert route_config(plain, "external").request_headers_to_add == []
