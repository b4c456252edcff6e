"""Knative's hello world, applied unchanged, answers through the ingress by Host header."""

from __future__ import annotations

from tests.e2e.conftest import EXAMPLES


def test_hello_world_answers_through_the_ingress(stack, namespace):
    stack.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "hello.yaml"))
    service = stack.wait_ready("ksvc", "hello", namespace)
    assert service["status"]["url"] == f"http://hello.{namespace}.example.com"
    assert service["status"]["latestReadyRevisionName"] == "hello-00001"

    body = stack.wait_answer(f"hello.{namespace}.example.com")
    assert body == "Hello World!\n"
    # host:port is the same virtual host
    assert stack.request(f"hello.{namespace}.example.com:8080")[1] == "Hello World!\n"


def test_unknown_host_gets_404(stack):
    status, _ = stack.request("nobody.nowhere.example.com")
    assert status == 404
