"""The public ingress against clients that forge knserve's internal headers or speak HTTP/1.0.

Two Services run the runtime sample (it answers with the headers it got): ``direct``, whose
pod takes traffic straight from Envoy (target-burst-capacity 0 takes the activator out of
the path once the pod is ready), and ``buffered``, which keeps the activator in its path
(the default burst capacity is more than one pod has). Through 127.0.0.1:<ingress>, a
request carrying ``K-Network-Probe``, ``K-Original-Host``, a ``kube-probe/`` User-Agent or
forged ``Knative-Serving-*`` headers gets the app's own answer, with the Host it sent; and
HTTP/1.0 clients (``ab``, ``curl -0``) are served.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Stack

RUNTIME_IMAGE = "knserve.dev/samples/runtime"


def service(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1", **annotations}},
            "spec": {"containers": [{"image": RUNTIME_IMAGE}]},
        }},
    }


PATHS = {
    "direct": {"autoscaling.knative.dev/target-burst-capacity": "0"},
    "buffered": {},
}


@pytest.fixture(scope="module")
def namespace(stack: Stack) -> Iterator[str]:
    """One namespace for the module: its two Services serve every test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    stack.kubectl("create", "namespace", name)
    deadline = time.monotonic() + 30
    while stack.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"namespace {name} never got its default service account"
        time.sleep(0.1)
    yield name
    stack.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def hosts(stack: Stack, namespace: str) -> dict[str, str]:
    for name, template_annotations in PATHS.items():
        stack.apply(service(name, template_annotations), namespace)
    found = {}
    for name in PATHS:
        stack.wait_ready("ksvc", name, namespace)
        found[name] = f"{name}.{namespace}.example.com"
        stack.wait_answer(found[name])
    return found


def headers_seen(stack: Stack, host: str, forged: dict[str, str]) -> dict[str, str]:
    """The headers the app got for a request with ``forged`` added (fails unless the app answered)."""
    status, body = stack.request(host, "/", headers=forged)
    assert status == 200, (forged, status, body)
    answer = json.loads(body)  # not "queue", "activator" or a probe's empty 200
    return {name.lower(): value for name, value in answer["headers"].items()}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(
    "forged",
    [
        pytest.param({"K-Network-Probe": "queue"}, id="queue-proxy probe"),
        pytest.param({"K-Network-Probe": "activator"}, id="activator probe"),
        pytest.param({"K-Network-Probe": "probe", "K-Network-Hash": "override"}, id="ingress probe"),
        pytest.param({"User-Agent": "kube-probe/1.37"}, id="kubelet user agent"),
        pytest.param({"K-Kubelet-Probe": "queue"}, id="kubelet header"),
    ],
)
def test_a_forged_probe_gets_the_apps_answer(stack: Stack, hosts: dict[str, str], path: str,
                                             forged: dict[str, str]) -> None:
    seen = headers_seen(stack, hosts[path], forged)
    assert not any(name.startswith("k-network-") or name == "k-kubelet-probe" for name in seen), seen
    if "User-Agent" in forged:
        assert seen["user-agent"] == forged["User-Agent"]  # passed on, and not taken for the kubelet


@pytest.mark.parametrize("path", list(PATHS))
def test_a_forged_original_host_does_not_change_the_host_the_app_sees(stack: Stack, hosts: dict[str, str],
                                                                       path: str) -> None:
    seen = headers_seen(stack, hosts[path], {"K-Original-Host": "evil.example.org"})
    assert seen["host"] == hosts[path]
    assert "k-original-host" not in seen


@pytest.mark.parametrize("path", list(PATHS))
def test_forged_revision_and_proxy_headers_are_ignored(stack: Stack, hosts: dict[str, str], path: str) -> None:
    # Naming another revision (or namespace) neither reroutes the request nor reaches the app.
    seen = headers_seen(stack, hosts[path], {
        "Knative-Serving-Revision": "other-00001", "Knative-Serving-Namespace": "kube-system",
        "K-Proxy-Request": "activator", "Knative-Serving-Tag": "canary",
    })
    assert seen["host"] == hosts[path]
    assert not any(name.startswith("knative-serving-") for name in seen), seen
    # Only the activator marks what it forwards; a request Envoy sends to the pod has no mark.
    assert seen.get("k-proxy-request") == ("activator" if path == "buffered" else None)


def http_10_get(port: int, host: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection._http_vsn = 10  # as ab and curl -0 send it
    connection._http_vsn_str = "HTTP/1.0"
    try:
        connection.request("GET", "/?via=http10", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", list(PATHS))
def test_http_10_requests_are_served(stack: Stack, hosts: dict[str, str], path: str) -> None:
    status, body = http_10_get(stack.local.ports.ingress, hosts[path])
    assert status == 200, body
    answer = json.loads(body)
    assert answer["query"] == {"via": ["http10"]}
    assert {name.lower(): value for name, value in answer["headers"].items()}["host"] == hosts[path]
