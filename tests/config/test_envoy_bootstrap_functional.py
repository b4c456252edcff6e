"""A real Envoy started the way the envoy Deployment starts it (its args, the generated
bootstrap) finds the xDS server by name, joins the ingress group under its pod's name, gets
its listeners over mutual TLS with the certificate the controller issues, and answers the
kubelet's probe on the ready port without exposing the rest of the admin interface."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from serving.xds.bootstrap_manifest import cluster_bootstrap, xds_client_tls
from serving.xds.controller import INGRESS_NODE_CLUSTER, XdsController
from serving.xds.model import EMPTY_MODEL
from serving.xds.tls import make_certificates
from serving.xds.translate import IngressSettings
from tests.config import manifests
from tests.support.envoy_process import find_envoy
from tests.support.eventually import eventually_async
from tests.support.ports import free_port

POD_NAME = "envoy-5f7c9d-x2kq8"


def _envoy_args(bootstrap_path: Path) -> list[str]:
    """The envoy container's command and args, pointed at this test's bootstrap file."""
    (deployment,) = [d for d in manifests.of_kind("Deployment") if d["metadata"]["name"] == "envoy"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = [manifests.expand(arg, {"POD_NAME": POD_NAME}) for arg in container["args"]]
    args[args.index("-c") + 1] = str(bootstrap_path)
    assert container["command"] == ["envoy"]
    return [find_envoy(), *args]


@contextlib.asynccontextmanager
async def _running(argv: list[str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=output,
                                                       stderr=output, start_new_session=True)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_envoy_from_the_deployment_joins_the_ingress_and_answers_its_probes(tmp_path: Path) -> None:
    external, internal, admin, ready = (free_port() for _ in range(4))
    certificates = make_certificates(server_addresses=("127.0.0.1", "::1"))
    certificates.write_client(tmp_path / "xds-tls")  # where the Deployment mounts the Secret, here
    xds = XdsController(settings=IngressSettings(external_host="127.0.0.1", external_port=external,
                                                  internal_host="127.0.0.1", internal_port=internal),
                        certificates=certificates)
    try:  # "localhost" may resolve to ::1 first (Envoy asks for IPv6 before IPv4): listen on both
        xds_port = await xds.start("[::]:0")
    except OSError:  # a host without IPv6
        xds_port = await xds.start("127.0.0.1:0")
    xds.update(EMPTY_MODEL)
    bootstrap = cluster_bootstrap(xds_host="localhost", xds_port=xds_port, admin_port=admin, ready_port=ready,
                                  tls=xds_client_tls(str(tmp_path / "xds-tls")))
    path = tmp_path / "envoy-bootstrap.json"
    path.write_text(json.dumps(bootstrap))
    log = tmp_path / "envoy.log"
    waiting = functools.partial(eventually_async, timeout=20.0, interval=0.05, ignore=(aiohttp.ClientError, OSError),
                                detail=lambda: f"envoy log:\n{log.read_text(errors='replace')[-2000:]}")
    try:
        async with _running(_envoy_args(path), log), aiohttp.ClientSession() as session:

            async def joined() -> bool:
                return any(status.node.id == POD_NAME and status.connected
                           for status in xds.cache.statuses(INGRESS_NODE_CLUSTER))

            await waiting(joined, what=f"an Envoy named {POD_NAME} to connect to the xDS server")

            async def live() -> tuple[int, str] | None:
                async with session.get(f"http://127.0.0.1:{ready}/ready") as response:
                    answer = (response.status, (await response.text()).strip())
                return answer if answer[0] == 200 else None

            assert await waiting(live, what="the ready port to say LIVE") == (200, "LIVE")

            async def listening() -> bool:
                _, writer = await asyncio.open_connection("127.0.0.1", external)
                writer.close()
                return True

            await waiting(listening, what="the external listener to open")

            for path_or_method in ("/stats", "/config_dump", "/quitquitquit"):
                async with session.get(f"http://127.0.0.1:{ready}{path_or_method}") as response:
                    assert response.status == 404
            async with session.post(f"http://127.0.0.1:{ready}/ready") as response:
                assert response.status == 404
    finally:
        await xds.stop(grace=0.5)
