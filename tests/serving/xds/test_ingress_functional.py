"""The xDS control plane against the real Envoy, with real HTTP backends on 127.0.0.1.

Each test starts its own Envoy (free ports everywhere) through ``LocalIngress`` and drives it
the way the Route reconciler will: ``controller.update(model)``, then wait until Envoy
serves it, then send HTTP with a Host header.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from serving.xds import type_urls
from serving.xds.bootstrap import BootstrapSettings, make_bootstrap
from serving.xds.cache import NodeStatus
from serving.xds.controller import ConfigRejectedError, XdsController
from serving.xds.model import Endpoint, IngressModel, IngressRule, RevisionBackend, Split, Visibility
from serving.xds.resources import cluster, route
from serving.xds.sequencer import Stage
from serving.xds.snapshot import Snapshot, from_message
from serving.xds.translate import Translator
from tests.support.envoy_process import find_envoy
from tests.support.xds_backends import NamedBackend, SteadyLoad, fire
from tests.support.xds_runner import LocalIngress

NS = "default"
HOST = "hello.default.example.com"
SERVE_TIMEOUT = 30.0


@pytest.fixture
async def ingress(tmp_path: Path) -> AsyncIterator[LocalIngress]:
    async with LocalIngress(tmp_path / "envoy") as running:
        yield running


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, NamedBackend]]:
    started = {name: await NamedBackend(name).start() for name in ("hello-00001", "hello-00002", "hello-00003")}
    yield started
    for backend in started.values():
        await backend.stop()


def backend_of(backend: NamedBackend) -> RevisionBackend:
    return RevisionBackend(NS, backend.name, (Endpoint("127.0.0.1", backend.port),))


def rule(*splits: tuple[str, int], hosts: tuple[str, ...] = (HOST,), generation: int = 1,
         visibility: Visibility = Visibility.EXTERNAL_IP, name: str = "hello") -> IngressRule:
    return IngressRule(
        namespace=NS, name=name, hosts=hosts, generation=generation, visibility=visibility,
        splits=tuple(Split(revision, NS, percent) for revision, percent in splits),
    )


async def get(url: str, host: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Host": host}) as response:
            return response.status, await response.text(), {key.lower(): value for key, value in response.headers.items()}


async def serve(controller: XdsController, model: IngressModel) -> int:
    version = controller.update(model)
    await controller.wait_served(version, timeout=SERVE_TIMEOUT)
    return version


async def settled(controller: XdsController) -> NodeStatus:
    """Wait until the Envoy has finished the whole sequence (old clusters pruned)."""
    async with asyncio.timeout(SERVE_TIMEOUT):
        while True:
            statuses = controller.statuses()
            if statuses and statuses[0].connected and statuses[0].stage is Stage.SETTLED \
                    and statuses[0].target_version == controller.version:
                return statuses[0]
            await asyncio.sleep(0.01)


async def envoy_stats(ingress: LocalIngress, pattern: str) -> dict[str, int]:
    status, body = await ingress.envoy.admin(f"/stats?filter={pattern}")
    assert status == 200
    return {name: int(value) for name, value in re.findall(r"^(\S+): (\d+)$", body, re.M)}


async def test_bootstrap_is_valid_for_envoy(tmp_path: Path) -> None:
    bootstrap = make_bootstrap(BootstrapSettings(node_id="n", xds_host="xds.knative-serving.svc", xds_port=18000))
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps(bootstrap))
    process = await asyncio.create_subprocess_exec(
        find_envoy(), "--mode", "validate", "-c", str(config), "--disable-hot-restart",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()[-2000:]


async def test_the_ads_stream_survives_envoys_keepalive_pings(tmp_path: Path) -> None:
    # grpcio's default policy answers pings on a stream without data with GOAWAY
    # "too_many_pings" after two strikes; with Envoy pinging every second that is 3 s.
    async with LocalIngress(tmp_path / "envoy", keepalive_interval_seconds=1) as ingress:
        await serve(ingress.controller, IngressModel())
        await asyncio.sleep(6)
        stats = await envoy_stats(ingress, r"^(cluster\.xds_cluster\.upstream_cx_total|control_plane\.connected_state)$")
    assert stats == {"cluster.xds_cluster.upstream_cx_total": 1, "control_plane.connected_state": 1}


async def test_routes_by_host_header_and_unknown_host_gets_404(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    one = backends["hello-00001"]
    await serve(ingress.controller, IngressModel(rules=(rule(("hello-00001", 100)),), backends=(backend_of(one),)))

    status, body, headers = await get(ingress.external_url, HOST)
    assert (status, body) == (200, "hello-00001")
    assert headers["x-seen-revision"] == "hello-00001"
    assert headers["x-seen-namespace"] == NS
    assert headers["x-seen-host"] == HOST  # Host is passed on untouched

    status, body, _ = await get(ingress.external_url, f"{HOST}:{ingress.settings.external_port}")
    assert (status, body) == (200, "hello-00001")

    status, _, _ = await get(ingress.external_url, "other.default.example.com")
    assert status == 404


async def test_split_follows_weights_and_tag_host_reaches_only_its_revision(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    one, two = backends["hello-00001"], backends["hello-00002"]
    tag_host = "canary-hello.default.example.com"

    def model(first: int, second: int, generation: int) -> IngressModel:
        return IngressModel(
            rules=(
                rule(("hello-00001", first), ("hello-00002", second), generation=generation),
                rule(("hello-00002", 100), hosts=(tag_host,), generation=generation),
            ),
            backends=(backend_of(one), backend_of(two)),
        )

    await serve(ingress.controller, model(90, 10, generation=1))
    tally = await fire(ingress.external_url, HOST, requests=5000)
    assert tally.failures == []
    assert abs(tally.share("hello-00001") - 90) <= 2, tally.answers
    assert abs(tally.share("hello-00002") - 10) <= 2, tally.answers

    ingress.controller.update(model(50, 50, generation=2))
    await ingress.controller.wait_route_served(f"{NS}/hello", 2, timeout=SERVE_TIMEOUT)
    # Envoy ACKs once its main thread took the config; its workers switch a moment later.
    await asyncio.sleep(0.2)
    tally = await fire(ingress.external_url, HOST, requests=5000)
    assert tally.failures == []
    assert abs(tally.share("hello-00001") - 50) <= 2, tally.answers
    assert abs(tally.share("hello-00002") - 50) <= 2, tally.answers

    tagged = await fire(ingress.external_url, tag_host, requests=200)
    assert dict(tagged.answers) == {"hello-00002": 200}


async def test_backend_change_under_steady_load_loses_nothing(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    one, two, three = backends["hello-00001"], backends["hello-00002"], backends["hello-00003"]
    controller = ingress.controller
    await serve(controller, IngressModel(rules=(rule(("hello-00001", 100)),), backends=(backend_of(one),)))

    async with SteadyLoad(ingress.external_url, HOST, rate=100) as load:
        await asyncio.sleep(0.5)
        # One update that adds a revision, moves all traffic to it and drops the old one:
        # the sequencer must warm hello-00002 first and prune hello-00001 last.
        await serve(controller, IngressModel(rules=(rule(("hello-00002", 100), generation=2),),
                                             backends=(backend_of(two),)))
        await settled(controller)
        await asyncio.sleep(0.5)
        await one.stop()
        # The same change step by step, as a reconciler rolling out would do it.
        await serve(controller, IngressModel(rules=(rule(("hello-00002", 100), generation=3),),
                                             backends=(backend_of(two), backend_of(three))))
        for percent in (10, 50, 100):
            await serve(controller, IngressModel(
                rules=(rule(("hello-00002", 100 - percent), ("hello-00003", percent), generation=4 + percent),),
                backends=(backend_of(two), backend_of(three)),
            ))
            await asyncio.sleep(0.3)
        await serve(controller, IngressModel(rules=(rule(("hello-00003", 100), generation=200),),
                                             backends=(backend_of(three),)))
        await settled(controller)
        await asyncio.sleep(0.5)

    assert load.tally.failures == []
    assert load.tally.total >= 200
    assert {"hello-00001", "hello-00002", "hello-00003"} <= set(load.tally.answers)


async def test_envoy_keeps_serving_without_control_plane_and_a_restart_does_not_blip(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    one, two = backends["hello-00001"], backends["hello-00002"]
    model = IngressModel(rules=(rule(("hello-00001", 50), ("hello-00002", 50)),), backends=(backend_of(one), backend_of(two)))
    first_version = await serve(ingress.controller, model)
    before = await envoy_stats(ingress, r"^(listener_manager\.listener_(added|modified|removed)|cluster_manager\.cluster_(added|modified|removed))$")

    async with SteadyLoad(ingress.external_url, HOST, rate=100) as load:
        await ingress.stop_control_plane()
        await asyncio.sleep(2.0)
        served_while_down = load.tally.total
        controller = await ingress.restart_control_plane()
        # A fresh counter: the new server's first snapshot is version 1 again, while Envoy
        # reconnects quoting versions it got from the previous server.
        assert controller.update(model) == 1 <= first_version
        await controller.wait_served(1, timeout=SERVE_TIMEOUT)
        await settled(controller)
        await asyncio.sleep(0.5)

    assert load.tally.failures == []
    assert served_while_down >= 100
    # Same content, same versions: Envoy changed no listener and no cluster on reconnect.
    after = await envoy_stats(ingress, r"^(listener_manager\.listener_(added|modified|removed)|cluster_manager\.cluster_(added|modified|removed))$")
    assert after == before

    # And the new server is in charge: a change goes through.
    await serve(controller, IngressModel(rules=(rule(("hello-00002", 100), generation=2),), backends=(backend_of(two),)))
    tally = await fire(ingress.external_url, HOST, requests=100)
    assert dict(tally.answers) == {"hello-00002": 100}


async def test_a_restarted_envoy_gets_the_whole_config_again(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    one = backends["hello-00001"]
    version = await serve(ingress.controller, IngressModel(rules=(rule(("hello-00001", 100)),), backends=(backend_of(one),)))

    await ingress.envoy.stop()
    await ingress.envoy.start()
    await ingress.envoy.wait_live(timeout=SERVE_TIMEOUT)

    status = await settled(ingress.controller)
    assert status.served_version == version
    assert (await get(ingress.external_url, HOST))[:2] == (200, "hello-00001")


async def test_cluster_local_rule_is_served_only_on_the_internal_listener(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    one, two = backends["hello-00001"], backends["hello-00002"]
    private_host = "private.default.svc.cluster.local"
    await serve(ingress.controller, IngressModel(
        rules=(
            rule(("hello-00001", 100)),
            rule(("hello-00002", 100), hosts=(private_host,), name="private", visibility=Visibility.CLUSTER_LOCAL),
        ),
        backends=(backend_of(one), backend_of(two)),
    ))

    assert (await get(ingress.external_url, private_host))[0] == 404
    assert (await get(ingress.internal_url, private_host))[:2] == (200, "hello-00002")
    assert (await get(ingress.internal_url, f"{private_host}:80"))[:2] == (200, "hello-00002")
    # Each listener serves its own visibility (in-cluster callers use a Route's cluster-local hosts).
    assert (await get(ingress.external_url, HOST))[:2] == (200, "hello-00001")
    assert (await get(ingress.internal_url, HOST))[0] == 404

    # A public change reaches Envoy as the external route configuration alone.
    reloads = r"^http\.(external|internal)\.rds\.(external|internal)\.config_reload$"
    before = await envoy_stats(ingress, reloads)
    await serve(ingress.controller, IngressModel(
        rules=(
            rule(("hello-00002", 100), generation=2),
            rule(("hello-00002", 100), hosts=(private_host,), name="private", visibility=Visibility.CLUSTER_LOCAL),
        ),
        backends=(backend_of(one), backend_of(two)),
    ))
    after = await envoy_stats(ingress, reloads)
    assert after["http.external.rds.external.config_reload"] == before["http.external.rds.external.config_reload"] + 1
    assert after["http.internal.rds.internal.config_reload"] == before["http.internal.rds.internal.config_reload"]
    assert (await get(ingress.external_url, HOST))[:2] == (200, "hello-00002")
    assert (await get(ingress.internal_url, private_host))[:2] == (200, "hello-00002")


async def test_a_changed_cluster_definition_does_not_wait_for_endpoints(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    one = backends["hello-00001"]
    model = IngressModel(rules=(rule(("hello-00001", 100)),), backends=(backend_of(one),))
    controller = ingress.controller
    await serve(controller, model)
    slower = dataclasses.replace(ingress.settings, connect_timeout=datetime.timedelta(seconds=2))
    rebuilt = Translator(slower).translate(model, version=controller.version + 1).snapshot

    controller.publish(rebuilt)
    # Envoy builds the cluster anew and waits for its endpoints: without them, 15 s.
    await controller.wait_served(rebuilt.version, timeout=5)
    await settled(controller)
    assert dict((await fire(ingress.external_url, HOST, requests=50)).answers) == {"hello-00001": 50}


@pytest.mark.parametrize("gap", [pytest.param(1.0, id="after-envoy-settled"), pytest.param(0.0, id="at-once")])
async def test_a_route_removed_and_added_back_gets_its_endpoints_again(
    ingress: LocalIngress, backends: dict[str, NamedBackend], gap: float
) -> None:
    """A Service deleted and applied anew: the same cluster leaves and returns with the same
    endpoints, and Envoy (which built it anew) must get them again."""
    one = backends["hello-00001"]
    model = IngressModel(rules=(rule(("hello-00001", 100)),), backends=(backend_of(one),))
    controller = ingress.controller
    await serve(controller, model)
    controller.update(IngressModel(rules=(), backends=()))
    await asyncio.sleep(gap)
    await serve(controller, model)
    await settled(controller)
    # Envoy's workers take the new config a moment after the ACK; without its endpoints the
    # cluster would stay empty for Envoy's 15 s EDS wait, far beyond this.
    async with asyncio.timeout(5):
        while (await get(ingress.external_url, HOST))[0] != 200:
            await asyncio.sleep(0.05)
    assert dict((await fire(ingress.external_url, HOST, requests=50)).answers) == {"hello-00001": 50}


async def envoy_counters(ingress: LocalIngress, suffix: str) -> int:
    """The sum of Envoy's counters whose name ends with ``suffix``."""
    async with aiohttp.ClientSession() as session, session.get(f"{ingress.envoy.admin_url}/stats",
                                                                   params={"filter": re.escape(suffix) + "$"}) as answer:
        lines = (await answer.text()).splitlines()
    return sum(int(line.rsplit(": ", 1)[1]) for line in lines if line.split(":", 1)[0].endswith(suffix))


async def test_an_endpoint_that_refuses_connections_costs_no_request_and_is_set_aside(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    """A pod whose node is gone: connections to it fail. Each request Envoy could not hand to it
    is tried again on the live pod (the virtual host's retry policy), so no client sees a failure;
    and after ``EJECT_AFTER_CONNECT_FAILURES`` failures in a row Envoy stops choosing it (outlier
    detection), so the retries stay few."""
    from tests.support.ports import free_port

    live = backends["hello-00001"]
    dead = Endpoint("127.0.0.1", free_port())  # nothing listens there
    await serve(ingress.controller, IngressModel(
        rules=(rule(("hello-00001", 100)),),
        backends=(RevisionBackend(NS, "hello-00001", (Endpoint("127.0.0.1", live.port), dead)),)))

    answers = [await get(ingress.external_url, HOST) for _ in range(60)]

    assert [(status, body) for status, body, _ in answers] == [(200, "hello-00001")] * 60
    assert await envoy_counters(ingress, "outlier_detection.ejections_enforced_consecutive_local_origin_failure") >= 1
    # choosing the dead pod at random would need about 30 retries; set aside, it takes a few (more
    # only if the requests outlast an ejection, on a busy machine)
    retries = await envoy_counters(ingress, ".upstream_rq_retry")
    assert cluster.EJECT_AFTER_CONNECT_FAILURES <= retries <= 3 * cluster.EJECT_AFTER_CONNECT_FAILURES, retries


async def test_a_pod_that_resets_a_request_it_has_seen_is_not_retried(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    """Only requests no pod has seen are retried: a pod that took the request and closed the
    connection without an answer gives the client a 503 (a POST may have had its effect)."""
    from tests.support.ports import free_port

    seen: list[bytes] = []

    async def take_and_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    port = free_port()
    server = await asyncio.start_server(take_and_hang_up, "127.0.0.1", port)
    try:
        await serve(ingress.controller, IngressModel(
            rules=(rule(("hello-00001", 100)),),
            backends=(RevisionBackend(NS, "hello-00001", (Endpoint("127.0.0.1", port),)),)))
        async with aiohttp.ClientSession() as session, session.post(
                ingress.external_url, headers={"Host": HOST}, data=b"pay once") as answer:
            assert answer.status == 503
        assert len(seen) == 1
    finally:
        server.close()


async def test_revision_without_endpoints_answers_503_at_once(ingress: LocalIngress) -> None:
    await serve(ingress.controller, IngressModel(
        rules=(rule(("hello-00001", 100)),), backends=(RevisionBackend(NS, "hello-00001", ()),)
    ))
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, _, _ = await get(ingress.external_url, HOST)
    assert status == 503
    assert loop.time() - started < 1.0


async def test_refused_config_reports_envoys_error_and_last_good_config_keeps_serving(
    ingress: LocalIngress, backends: dict[str, NamedBackend]
) -> None:
    one, two = backends["hello-00001"], backends["hello-00002"]
    controller = ingress.controller
    good = IngressModel(rules=(rule(("hello-00001", 100)),), backends=(backend_of(one), backend_of(two)))
    await serve(controller, good)

    # A route configuration with one domain twice: consistent, but Envoy refuses it.
    version = controller.version + 1
    translated = controller.cache.snapshot(controller.group)
    assert translated is not None
    duplicate = route.make_route_config("external", [
        route.make_virtual_host("first", (HOST,), (Split("hello-00002", NS, 100),)),
        route.make_virtual_host("second", (HOST,), (Split("hello-00002", NS, 100),)),
    ])
    bad = Snapshot.create(
        version,
        clusters=translated[type_urls.CLUSTER].items.values(),
        endpoints=translated[type_urls.ENDPOINT].items.values(),
        listeners=translated[type_urls.LISTENER].items.values(),
        routes=[from_message(duplicate), translated[type_urls.ROUTE].items["internal"]],
    )
    controller.publish(bad)
    with pytest.raises(ConfigRejectedError) as refused:
        await controller.wait_served(version, timeout=SERVE_TIMEOUT)
    assert refused.value.rejection.type_url == type_urls.ROUTE
    assert "unique values for domains" in refused.value.rejection.message
    assert "unique values for domains" in str(refused.value)
    [status] = controller.statuses()
    assert status.rejection == refused.value.rejection
    assert status.served_version == version - 1

    tally = await fire(ingress.external_url, HOST, requests=200)
    assert dict(tally.answers) == {"hello-00001": 200}

    # The next good model goes through; the refusal no longer blocks.
    fixed = IngressModel(rules=(rule(("hello-00002", 100), generation=2),), backends=(backend_of(one), backend_of(two)))
    await serve(controller, fixed)
    assert controller.statuses()[0].rejection is None
    tally = await fire(ingress.external_url, HOST, requests=200)
    assert dict(tally.answers) == {"hello-00002": 200}
