"""The runtime contract as the app sees it (Knative's test/conformance/runtime).

Environment: ``PORT``, ``K_SERVICE``, ``K_CONFIGURATION``, ``K_REVISION``. Request headers:
``Forwarded`` (RFC 7239) and ``X-Forwarded-For`` are present, ``X-Forwarded-Proto`` is http,
a user's own header passes unchanged, and the ingress's routing headers
(``Knative-Serving-Revision``/``-Namespace``) never reach the app.
"""

from __future__ import annotations

import ipaddress
import json
import re

from tests.e2e.conformance.helpers import host, service

TOKEN = re.compile(r"^[0-9a-zA-Z!#$%&'*+\-.^_|~]+$")
QUOTED = re.compile(r'^"[^"]*"$')


def is_forwarded_header(value: str) -> bool:
    """Roughly valid RFC 7239: ``key=value`` pairs split by ``;`` and ``,``, token or quoted values."""
    pairs = [pair.strip() for pair in re.split(r"[;,]", value) if pair.strip()]
    if not pairs:
        return False
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not TOKEN.match(key) or key.lower() not in ("for", "by", "proto", "host"):
            return False
        if text and not (TOKEN.match(text) or QUOTED.match(text)):
            return False
    return True


def is_address_list(value: str) -> bool:
    try:
        return all(ipaddress.ip_address(part.strip()) for part in value.split(","))
    except ValueError:
        return False


def test_app_gets_the_contract_environment_and_headers(stack, namespace):
    name = "runtime"
    stack.apply(service(name), namespace)
    revision = stack.wait_ready("ksvc", name, namespace)["status"]["latestReadyRevisionName"]

    body = stack.wait_answer(host(name, namespace), path="/some/path?a=1",
                             headers={"This-Was-User-Set": "a value"})
    seen = json.loads(body)

    env = seen["env"]
    assert env["K_SERVICE"] == name
    assert env["K_CONFIGURATION"] == name
    assert env["K_REVISION"] == revision
    assert env["PORT"] and env["PORT"].isdigit()

    assert seen["path"] == "/some/path" and seen["query"] == {"a": ["1"]}
    headers = {key.lower(): value for key, value in seen["headers"].items()}
    assert headers["host"] == host(name, namespace)
    assert headers["this-was-user-set"] == "a value"
    assert is_forwarded_header(headers["forwarded"]), headers["forwarded"]
    assert is_address_list(headers["x-forwarded-for"]), headers["x-forwarded-for"]
    assert headers["x-forwarded-proto"] == "http"
    assert "knative-serving-revision" not in headers, headers
    assert "knative-serving-namespace" not in headers, headers


def test_routing_headers_sent_by_a_client_do_not_reach_the_app(stack, namespace):
    name = "runtime"
    stack.apply(service(name), namespace)
    stack.wait_ready("ksvc", name, namespace)

    body = stack.wait_answer(host(name, namespace), headers={
        "Knative-Serving-Revision": "someone-else-00001", "Knative-Serving-Namespace": "elsewhere"})
    headers = {key.lower() for key in json.loads(body)["headers"]}
    assert "knative-serving-revision" not in headers
    assert "knative-serving-namespace" not in headers
