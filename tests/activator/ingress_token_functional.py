"""The activator given the ingress token serves only requests that carry it (Envoy adds it)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from activator.app import Activator
from activator.revisions import Endpoints, RevisionInfo, StaticRevisionSource
from knserve.networking import INGRESS_TOKEN_HEADER
from knserve.tokenfile import TokenFile
from tests.activator.fakes import FakeAutoscaler, FakePod

NS = "other-team"


async def test_made_up_revision_headers_without_the_token_reach_nothing(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("the-ingress-token\n")
    autoscaler = await FakeAutoscaler().start()
    pod = await FakePod("private-pod").start()
    activator = Activator(source=StaticRevisionSource(), autoscaler_url=autoscaler.url, probe_interval=0.05,
                          ingress_token=TokenFile(token_file))
    await activator.start(host="127.0.0.1", port=0, metrics_port=None)
    assert activator.backends is not None
    activator.backends.upsert_revision(RevisionInfo(NS, "private-00001"))
    activator.backends.set_endpoints(NS, "private-00001", Endpoints.of([pod.dest], []))
    host, port = activator.addresses["data"]
    spoofed = {"Knative-Serving-Revision": "private-00001", "Knative-Serving-Namespace": NS,
               "Host": "private.other-team.svc.cluster.local"}
    try:
        async with aiohttp.ClientSession() as client:
            for headers in (spoofed, {**spoofed, INGRESS_TOKEN_HEADER: "a-guess"}):
                async with client.get(f"http://{host}:{port}/", headers=headers) as response:
                    assert response.status == 403
                    assert "only requests the ingress routed" in await response.text()
            assert pod.served == 0
            async with client.get(f"http://{host}:{port}/healthz") as response:
                assert response.status == 200, "health checks need no token"
            async with client.get(f"http://{host}:{port}/echo",
                                  headers={**spoofed, INGRESS_TOKEN_HEADER: "the-ingress-token"}) as response:
                assert response.status == 200
                assert (await response.json())["pod"] == "private-pod"
    finally:
        await activator.stop()
        await pod.stop()
        await autoscaler.stop()
