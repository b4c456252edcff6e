"""``timeoutSeconds`` (Knative's TestRevisionTimeout): a first byte later than the timeout
gives 504; a response that started in time is cut when it runs past it.
"""

from __future__ import annotations

import json

from tests.e2e.conformance.helpers import host, request_streamed, service

TIMEOUT_SECONDS = 2


def test_revision_timeout(stack, namespace):
    name = "timeout"
    stack.apply(service(name, timeout_seconds=TIMEOUT_SECONDS), namespace)
    ready = stack.wait_ready("ksvc", name, namespace)
    revision = ready["status"]["latestReadyRevisionName"]
    assert stack.get("rev", revision, namespace)["spec"]["timeoutSeconds"] == TIMEOUT_SECONDS
    target = host(name, namespace)
    stack.wait_answer(target)  # a pod is up, so no cold start counts against the timeout

    # answers within the timeout
    status, body = stack.request(target, "/?sleep=500")
    assert status == 200 and json.loads(body)["env"]["K_REVISION"] == revision

    # the first byte comes after the timeout: 504
    status, body = stack.request(target, f"/?sleep={(TIMEOUT_SECONDS + 2) * 1000}")
    assert status == 504, body

    # the first byte in time, the body streaming past the timeout: 200 and a cut body
    streamed = request_streamed(stack, target, f"/?stream={TIMEOUT_SECONDS + 3}&interval=200")
    assert streamed.status == 200
    assert not streamed.complete, streamed.body[-200:]
    lines = streamed.body.decode().splitlines()
    assert json.loads(lines[0])["env"]["K_REVISION"] == revision
    ticks = [json.loads(line)["tick"] for line in lines[1:] if line.strip().endswith("}")]
    wanted_if_uncut = (TIMEOUT_SECONDS + 3) * 1000 // 200
    assert 0 < len(ticks) < wanted_if_uncut, ticks
