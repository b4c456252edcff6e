"""Knative's own client, ``kn``, against knserve: create, update (port, env, traffic, tags),
export, apply and prune, as a kn user types them. kn is built once from the Go module proxy
(``make binaries``) and cached beside the control plane."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml

from localcluster import binaries

IMAGE = "ghcr.io/knative/helloworld-go:latest"


@pytest.fixture(scope="module")
def kn_path() -> str:
    return str(binaries.ensure_kn(progress=lambda message: None))


@pytest.fixture
def kn(stack, namespace, kn_path) -> Iterator:  # type: ignore[no-untyped-def]
    def run(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([kn_path, *args, "-n", namespace], env=stack.cluster.env, capture_output=True,
                                text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, f"kn {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    yield run


def wait_body(stack, host: str, want: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = stack.wait_answer(host).strip()
        if body == want:
            return
        time.sleep(0.3)
    raise AssertionError(f"{host} answered {body!r}, never {want!r}")


def test_kn_create_update_traffic_export_apply_and_prune(stack, namespace, kn, tmp_path):
    host = f"hello.{namespace}.example.com"
    kn("service", "create", "hello", "--image", IMAGE, "--env", "TARGET=World", "--wait-timeout", "120")
    wait_body(stack, host, "Hello World!")

    # No port when created: the default probe is "the serving port", so moving the port moves it too.
    kn("service", "update", "hello", "--port", "8888", "--wait-timeout", "120")
    ready = stack.wait_ready("ksvc", "hello", namespace)
    assert ready["status"]["latestReadyRevisionName"] == "hello-00002"
    assert ready["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8888

    kn("service", "update", "hello", "--env", "TARGET=Knative", "--wait-timeout", "120")
    stack.wait_ready("ksvc", "hello", namespace)
    wait_body(stack, host, "Hello Knative!")

    kn("service", "update", "hello", "--tag", "hello-00001=old", "--traffic", "old=10", "--traffic", "@latest=90",
       "--wait-timeout", "120")
    traffic = stack.wait_ready("ksvc", "hello", namespace)["status"]["traffic"]
    assert sorted((t["revisionName"], t["percent"], t.get("tag", "")) for t in traffic) == [
        ("hello-00001", 10, "old"), ("hello-00003", 90, "")]
    wait_body(stack, f"old-hello.{namespace}.example.com", "Hello World!")

    export = yaml.safe_load(kn("service", "export", "hello", "-o", "yaml").stdout)
    assert (export["kind"], export["spec"]["service"]["kind"]) == ("Export", "Service")
    exported = export["spec"]["service"]
    template = exported["spec"]["template"]["spec"]
    assert template["containers"][0]["readinessProbe"] == {"successThreshold": 1, "tcpSocket": {"port": 0}}
    assert (template["containerConcurrency"], template["timeoutSeconds"], template["enableServiceLinks"]) == (
        0, 300, False)
    assert not exported.get("status")

    template["containers"][0]["env"] = [{"name": "TARGET", "value": "Applied"}]
    exported["spec"]["template"].setdefault("metadata", {}).pop("name", None)
    manifest = tmp_path / "hello.yaml"
    manifest.write_text(yaml.safe_dump(exported))
    kn("service", "apply", "hello", "-f", str(manifest), "--wait-timeout", "120")
    wait_body(stack, host, "Hello Applied!")

    kn("service", "update", "hello", "--untag", "old", "--traffic", "@latest=100", "--wait-timeout", "120")
    stack.wait_ready("ksvc", "hello", namespace)
    kn("revision", "delete", "--prune", "hello")
    latest = stack.get("ksvc", "hello", namespace)["status"]["latestReadyRevisionName"]

    def remaining() -> list[str]:
        listed = yaml.safe_load(stack.kubectl("get", "revisions", "-n", namespace, "-o", "yaml").stdout)
        return sorted(item["metadata"]["name"] for item in listed["items"]
                      if not item["metadata"].get("deletionTimestamp"))

    deadline = time.monotonic() + 60
    while remaining() != [latest] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert remaining() == [latest]
