"""``knserve activator`` and ``knserve autoscaler`` as processes, wired to each other."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.activator.fakes import FakePod
from tests.support.ports import free_port

HEADERS = {"Knative-Serving-Namespace": "default", "Host": "hello.default.example.com"}


async def start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knserve.cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=env,
    )


async def wait_healthy(client: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(15):
        while True:
            try:
                async with client.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def stop(process: asyncio.subprocess.Process) -> tuple[int, str]:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    output, _ = await asyncio.wait_for(process.communicate(), 15)
    return int(process.returncode or 0), output.decode(errors="replace")


@pytest.fixture
async def pod() -> AsyncIterator[FakePod]:
    fake = await FakePod("pod-a").start()
    yield fake
    await fake.stop()


async def test_both_processes_serve_and_a_cold_request_reaches_the_autoscaler(tmp_path: Path, pod: FakePod) -> None:
    ports = {name: free_port() for name in ("data", "activator_metrics", "stats", "autoscaler_metrics")}
    revisions = tmp_path / "revisions.json"
    revisions.write_text(json.dumps({"revisions": [
        {"namespace": "default", "name": "hello-00001", "containerConcurrency": 1, "ready": [pod.dest]},
        {"namespace": "default", "name": "cold-00001", "timeoutSeconds": 1},
    ]}))
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(json.dumps({
        "podAutoscalers": [{
            "metadata": {"name": "cold-00001", "namespace": "default"},
            "spec": {"scaleTargetRef": {"name": "cold-00001-deployment"}},
            "status": {"desiredScale": 0, "conditions": [
                {"type": "Active", "status": "False", "reason": "NoTraffic", "lastTransitionTime": "2020-01-01T00:00:00Z"},
                {"type": "ActivatorInPath", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
            ]},
        }],
        "replicas": [{"namespace": "default", "deployment": "cold-00001-deployment", "replicas": 0}],
    }))
    autoscaler = await start("autoscaler", "--static", str(cluster), "--host", "127.0.0.1",
                             "--port", str(ports["stats"]), "--metrics-port", str(ports["autoscaler_metrics"]))
    activator = await start("activator", "--static", str(revisions), "--host", "127.0.0.1", "--drain-seconds", "1",
                            "--port", str(ports["data"]), "--metrics-port", str(ports["activator_metrics"]),
                            "--autoscaler-url", f"http://127.0.0.1:{ports['stats']}")
    data = f"http://127.0.0.1:{ports['data']}"
    try:
        async with aiohttp.ClientSession() as client:
            await wait_healthy(client, f"http://127.0.0.1:{ports['stats']}/healthz")
            await wait_healthy(client, f"{data}/healthz")
            async with client.get(data + "/hi", headers={**HEADERS, "Knative-Serving-Revision": "hello-00001"}) as response:
                assert response.status == 200
                assert (await response.json())["pod"] == "pod-a"
            async with client.get(data + "/", headers={**HEADERS, "Knative-Serving-Revision": "cold-00001"}) as response:
                assert (response.status, await response.text()) == (504, "activator request timeout")
            async with client.get(f"http://127.0.0.1:{ports['autoscaler_metrics']}/metrics") as response:
                metrics = await response.text()
            assert 'autoscaler_desired_pods{namespace_name="default",revision_name="cold-00001"} 1.0' in metrics
    finally:
        activator_rc, activator_log = await stop(activator)
        autoscaler_rc, autoscaler_log = await stop(autoscaler)
    assert activator_rc == 0, activator_log
    assert autoscaler_rc == 0, autoscaler_log
    assert "scaling default/cold-00001-deployment from 0 to 1" in autoscaler_log
    assert "draining: serving until no request has come" in activator_log


async def test_without_any_cluster_configuration_the_commands_say_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config either
    for command in ("activator", "autoscaler"):
        process = await start(command, env=env)
        output, _ = await asyncio.wait_for(process.communicate(), 15)
        assert process.returncode == 2, output
        assert b"pass --kubeconfig" in output and b"Traceback" not in output
