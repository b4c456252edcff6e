"""A client cannot pass for the call queue: with ``knserve.dev/async: always``, a request that
carries ``K-Call-Dispatch`` (the queue's mark on its own dispatches) with any value a client
could send is still answered 202 and queued, the queue's real dispatches still reach the app,
and the app never sees the header. The app is the runtime sample, which answers with the
headers it got; the call's stored response is that answer. Stack, queue and NATS as in
``test_queue_e2e``: Envoy on 127.0.0.1, config/ as it is."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from tests.e2e.conftest import Stack
from tests.e2e.test_queue_e2e import apply, http, wait_queue, wait_state

RUNTIME_IMAGE = "knserve.dev/samples/runtime"


def always_async_service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "annotations": {"knserve.dev/async": "always"}},
        "spec": {"template": {"spec": {"containers": [{"image": RUNTIME_IMAGE}]}}},
    }


def app_headers(view: dict[str, Any]) -> dict[str, str]:
    """The headers the app got for a call, lower-cased, from the answer stored with the call."""
    assert view["response"]["status"] == 200, view
    answer = json.loads(view["response"]["body"])
    return {name.lower(): value for name, value in answer["headers"].items()}


def test_a_forged_k_call_dispatch_is_queued_and_the_app_never_sees_the_header(stack: Stack, namespace: str) -> None:
    apply(stack, always_async_service("echo"), namespace)
    stack.wait_ready("ksvc", "echo", namespace)
    wait_queue(stack)
    host = f"echo.{namespace}.example.com"
    deadline = time.monotonic() + 30
    while True:  # the Route's rules carry the annotation once the controller has seen it
        code, headers, body = http(stack, "POST", host, "/plain", body=b"no prefer")
        if code == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 202, (code, body)
    calls = {"plain": headers["X-Call-Id"]}

    for label, guess in (("one", "1"), ("token-shaped", secrets.token_hex(32)), ("empty", "")):
        code, headers, body = http(stack, "POST", host, f"/{label}", body=label.encode(),
                                   headers={"K-Call-Dispatch": guess})
        assert code == 202, (label, code, body)
        calls[label] = headers["X-Call-Id"]
    code, headers, body = http(stack, "POST", host, "/asked", body=b"asked",
                               headers={"K-Call-Dispatch": "1", "Prefer": "respond-async"})
    assert code == 202, (code, body)
    calls["asked"] = headers["X-Call-Id"]

    for label, call_id in calls.items():  # a dispatch queued again would have stored the queue's 202
        view = wait_state(stack, host, call_id, "succeeded")
        assert view["attempts"] == 1, (label, view)
        seen = app_headers(view)
        assert seen["x-call-id"] == call_id and seen["x-attempt"] == "1", (label, seen)
        assert "k-call-dispatch" not in seen, (label, seen)
        assert "k-network-ingress-token" not in seen and "prefer" not in seen, (label, seen)
        assert json.loads(view["response"]["body"])["path"] == ("/plain" if label == "plain" else f"/{label}")
