"""Durable asynchronous calls on the whole stack: Services applied with kubectl, calls made
through Envoy on 127.0.0.1 with ``Prefer: respond-async``, the queue (Deployment
knserve-queue) and NATS (StatefulSet nats) running as config/ has them.

The function is a small aiohttp app run by the node (the container sets its command): it
appends ``<call id> <attempt>`` to a file the test reads for every run, fails the attempts
``?fail=N`` asks for (with ``?status=`` and ``?retry_after=``), sleeps ``?sleep=`` seconds,
and echoes the body."""

from __future__ import annotations

import collections
import http.server as http_server
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack

FUNCTION = r"""
import asyncio, os, time
from aiohttp import web
RUNS = os.environ["RUNS_FILE"]
in_flight = 0
async def handle(request):
    global in_flight
    call_id, attempt = request.headers.get("X-Call-Id", "-"), int(request.headers.get("X-Attempt", "0"))
    in_flight += 1
    try:
        with open(RUNS, "a") as runs:
            runs.write(f"S {call_id} {attempt} {time.time():.6f} {request.headers.get('Prefer', '-')}\n")
        body = await request.read()
        await asyncio.sleep(float(request.query.get("sleep", "0")))
        if attempt <= int(request.query.get("fail", "0")):
            headers = {"Retry-After": request.query["retry_after"]} if "retry_after" in request.query else {}
            return web.Response(status=int(request.query.get("status", "503")), text="not yet", headers=headers)
        return web.Response(text=f"done {attempt} " + body.decode(), headers={"X-Result": "yes"})
    finally:
        in_flight -= 1
        with open(RUNS, "a") as runs:
            runs.write(f"E {call_id} {attempt} {time.time():.6f} -\n")
app = web.Application(client_max_size=8 * 1024 * 1024)
app.router.add_route("*", "/{tail:.*}", handle)
web.run_app(app, host="0.0.0.0", port=int(os.environ["PORT"]), print=None)
"""


def function_service(name: str, runs_file: Path, *, annotations: dict[str, str] | None = None,
                     template_annotations: dict[str, str] | None = None, container_concurrency: int = 0) -> dict:
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "annotations": {
            "knserve.dev/async-min-backoff": "300ms", "knserve.dev/async-max-backoff": "2s",
            "knserve.dev/async-max-attempts": "5", **(annotations or {})}},
        "spec": {"template": {
            "metadata": {"annotations": template_annotations or {}},
            "spec": {
                "containerConcurrency": container_concurrency,
                "containers": [{"image": "knserve.dev/tests/async-function", "command": ["python3", "-c", FUNCTION],
                                "env": [{"name": "RUNS_FILE", "value": str(runs_file)}]}]},
        }},
    }


def lines(runs_file: Path) -> list[tuple[str, str, int, float, str]]:
    """(S or E, call id, attempt, time, Prefer) per line the function wrote; whole lines only."""
    if not runs_file.exists():
        return []
    found = []
    for line in runs_file.read_text().splitlines():
        parts = line.split(" ", 4)
        if len(parts) == 5:
            found.append((parts[0], parts[1], int(parts[2]), float(parts[3]), parts[4]))
    return found


def runs(runs_file: Path) -> list[tuple[str, int, float, str]]:
    """(call id, attempt, start time, Prefer) of every run the function started, in order."""
    return [(call_id, attempt, at, prefer) for kind, call_id, attempt, at, prefer in lines(runs_file) if kind == "S"]


def peak_concurrency(runs_file: Path) -> int:
    """Most runs in progress at once, over every pod of the function (they share the host's clock)."""
    events = sorted((at, 1 if kind == "S" else -1) for kind, _, _, at, _ in lines(runs_file))
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def http(stack: Stack, method: str, host: str, path: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Message, bytes]:
    """(status, headers read case-insensitively, body)."""
    request = urllib.request.Request(stack.ingress + path, data=body, method=method,
                                     headers={"Host": host, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def accept(stack: Stack, host: str, path: str = "/", body: bytes = b"", **headers: str) -> tuple[int, Message, bytes]:
    return http(stack, "POST", host, path, body=body, headers={"Prefer": "respond-async", **headers})


def status(stack: Stack, host: str, call_id: str) -> dict[str, Any]:
    code, _, body = http(stack, "GET", host, f"/.well-known/knserve/calls/{call_id}")
    if code == 503:
        return {"state": "(queue unavailable)"}
    assert code == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


def wait_state(stack: Stack, host: str, call_id: str, *states: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        view = status(stack, host, call_id)
        if not seen or seen[-1] != view["state"]:
            seen.append(view["state"])
        if view["state"] in states:
            view["seen"] = seen
            return view
        assert time.monotonic() < deadline, f"call {call_id} went {seen}, never {states}: {view}"
        time.sleep(0.05)


def wait_queue(stack: Stack, timeout: float = 120) -> None:
    """NATS and the queue rolled out, and the internal ingress (where calls are dispatched) has
    an endpoint."""
    for kind, name in (("statefulset", "nats"), ("deployment", "knserve-queue")):
        stack.kubectl("rollout", "status", f"{kind}/{name}", "-n", "knative-serving", f"--timeout={timeout:.0f}s",
                      timeout=timeout + 10)
    deadline = time.monotonic() + timeout
    while True:
        slices = json.loads(stack.kubectl("get", "endpointslices", "-n", "knative-serving", "-l",
                                          "kubernetes.io/service-name=knserve-internal", "-o", "json").stdout)["items"]
        if any((endpoint.get("conditions") or {}).get("ready") for found in slices
               for endpoint in found.get("endpoints") or []):
            return
        assert time.monotonic() < deadline, "knserve-internal has no ready endpoint"
        time.sleep(0.2)


@pytest.fixture
def runs_file(tmp_path: Path) -> Path:
    return tmp_path / "runs.log"


class Receiver(http_server.BaseHTTPRequestHandler):
    received: list[tuple[Message, bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        Receiver.received.append((self.headers, self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def callback_url(stack: Stack) -> Iterator[str]:
    """A receiver on the node's address (the host's side of the pod bridge), where pods reach it."""
    Receiver.received = []
    server = http_server.ThreadingHTTPServer((stack.local.node_ip(), 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{stack.local.node_ip()}:{server.server_address[1]}/done"
    server.shutdown()


def apply(stack: Stack, manifest: dict, namespace: str, timeout: float = 30) -> None:
    """``kubectl apply``, again while the webhook's endpoints are still coming up."""
    deadline = time.monotonic() + timeout
    while True:
        result = stack.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
        if result.returncode == 0:
            return
        assert "no endpoints available" in result.stderr and time.monotonic() < deadline, result.stderr
        time.sleep(0.5)


def ready_function(stack: Stack, namespace: str, runs_file: Path, name: str = "fn", **options: Any) -> str:
    apply(stack, function_service(name, runs_file, **options), namespace)
    service = stack.wait_ready("ksvc", name, namespace)
    wait_queue(stack)
    return str(service["status"]["url"]).removeprefix("http://")


def test_an_async_call_is_accepted_runs_and_returns_the_functions_response(stack, namespace, runs_file,
                                                                            callback_url):
    host = ready_function(stack, namespace, runs_file)
    code, headers, body = accept(stack, host, "/work?sleep=1", b"hello", **{"X-Callback-Url": callback_url})
    assert code == 202, body
    call_id = headers["X-Call-Id"]
    assert headers["Location"] == f"/.well-known/knserve/calls/{call_id}" and json.loads(body)["id"] == call_id

    view = wait_state(stack, host, call_id, "succeeded")
    assert "running" in view["seen"] and view["seen"][-1] == "succeeded"
    assert view["attempts"] == 1 and view["lastStatus"] == 200
    assert view["response"]["status"] == 200 and view["response"]["body"] == "done 1 hello"
    assert view["response"]["headers"]["x-result"] == "yes"
    assert [(r[0], r[1], r[3]) for r in runs(runs_file)] == [(call_id, 1, "-")], "dispatched once, without Prefer"

    deadline = time.monotonic() + 30
    while not Receiver.received and time.monotonic() < deadline:
        time.sleep(0.1)
    [(callback_headers, callback_body)] = Receiver.received
    assert callback_body == b"done 1 hello"
    assert callback_headers["X-Call-Id"] == call_id and callback_headers["X-Function-Status"] == "200"
    assert callback_headers["X-Attempts"] == "1" and float(callback_headers["X-Duration-Seconds"]) >= 1.0

    # the same through the CLI
    from callqueue.cli import main as calls_cli

    assert calls_cli(["get", call_id, "--host", host, "--ingress", stack.ingress]) == 0


def test_retries_back_off_and_honour_retry_after_then_a_failing_call_is_a_dead_letter_that_replays(
        stack, namespace, runs_file):
    host = ready_function(stack, namespace, runs_file, annotations={"knserve.dev/async-max-attempts": "3"})
    code, headers, _ = accept(stack, host, "/?fail=2")
    retried = headers["X-Call-Id"]
    code, headers, _ = accept(stack, host, "/?fail=1&status=429&retry_after=3")
    throttled = headers["X-Call-Id"]
    code, headers, _ = accept(stack, host, "/?fail=99&status=500", b"replay me")
    failing = headers["X-Call-Id"]

    assert wait_state(stack, host, retried, "succeeded")["attempts"] == 3
    assert wait_state(stack, host, throttled, "succeeded")["attempts"] == 2
    dead = wait_state(stack, host, failing, "dead")
    assert dead["attempts"] == 3 and dead["lastStatus"] == 500 and dead["response"]["body"] == "not yet"

    code, _, body = http(stack, "GET", host, "/.well-known/knserve/calls?state=dead")
    assert code == 200 and [item["id"] for item in json.loads(body)["items"]] == [failing]

    started: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
    for call_id, attempt, at, _ in runs(runs_file):
        started[call_id].append((attempt, at))
    assert [a for a, _ in started[retried]] == [1, 2, 3] and [a for a, _ in started[failing]] == [1, 2, 3]
    assert [a for a, _ in started[throttled]] == [1, 2]
    # back-off: 300ms minimum, doubling (jittered in its upper half), capped at 2s; Retry-After wins
    (_, first), (_, second), (_, third) = started[retried]
    assert 0.3 <= second - first and 0.3 <= third - second
    (_, asked), (_, honoured) = started[throttled]
    assert honoured - asked >= 3.0, "Retry-After: 3"

    code, _, _ = http(stack, "POST", host, f"/.well-known/knserve/calls/{failing}/retry")
    assert code == 202
    assert wait_state(stack, host, failing, "dead")["replays"] == 1
    assert [a for c, a, _, _ in runs(runs_file) if c == failing] == [1, 2, 3, 1, 2, 3]


def test_a_queued_call_is_cancelled_and_a_running_one_is_not(stack, namespace, runs_file):
    host = ready_function(stack, namespace, runs_file, annotations={"knserve.dev/async-concurrency": "1"})
    first = accept(stack, host, "/?sleep=3")[1]["X-Call-Id"]
    second = accept(stack, host, "/")[1]["X-Call-Id"]
    wait_state(stack, host, first, "running")
    assert http(stack, "DELETE", host, f"/.well-known/knserve/calls/{first}")[0] == 409
    code, _, body = http(stack, "DELETE", host, f"/.well-known/knserve/calls/{second}")
    assert code == 200 and json.loads(body)["state"] == "cancelled"
    wait_state(stack, host, first, "succeeded")
    time.sleep(1)
    assert status(stack, host, second)["state"] == "cancelled"
    assert [r[0] for r in runs(runs_file)] == [first]


def test_bad_annotations_limits_unknown_hosts_idempotency_and_the_cluster_local_host(stack, namespace, runs_file):
    host = ready_function(stack, namespace, runs_file)
    refused = stack.kubectl("apply", "-n", namespace, "-f", "-", check=False, input=json.dumps(function_service(
        "bad", runs_file, annotations={"knserve.dev/async-max-attempts": "0"})))
    assert refused.returncode != 0
    assert "expected 1 <= 0 <= 100: metadata.annotations.knserve.dev/async-max-attempts" in refused.stderr
    code, _, body = accept(stack, host, "/", b"x" * (2 * 1024 * 1024))
    assert code == 413 and b"1048576" in body
    code, _, _ = accept(stack, f"nobody.{namespace}.example.com", "/")
    assert code == 404
    first = accept(stack, host, "/", **{"Idempotency-Key": "order-1"})[1]["X-Call-Id"]
    again = accept(stack, host, "/", **{"Idempotency-Key": "order-1"})[1]["X-Call-Id"]
    assert first == again
    wait_state(stack, host, first, "succeeded")
    # the cluster-local host, through the internal listener
    local = f"fn.{namespace}.svc.cluster.local"
    request = urllib.request.Request(stack.ingress_internal + "/", data=b"", method="POST",
                                     headers={"Host": local, "Prefer": "respond-async"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        local_id = response.headers["X-Call-Id"]
    wait_state(stack, host, local_id, "succeeded")
    assert collections.Counter(r[0] for r in runs(runs_file)) == {first: 1, local_id: 1}


def test_nats_down_answers_503_at_accept_and_nothing_accepted_is_lost(stack, namespace, runs_file):
    host = ready_function(stack, namespace, runs_file)
    accepted = [accept(stack, host, "/?sleep=0.2")[1]["X-Call-Id"] for _ in range(5)]
    stack.kubectl("scale", "statefulset/nats", "-n", "knative-serving", "--replicas=0")
    try:
        deadline = time.monotonic() + 60
        while True:
            code, headers, body = accept(stack, host, "/")
            if code == 503:
                break
            assert code == 202 and time.monotonic() < deadline, (code, body)
            accepted.append(headers["X-Call-Id"])
            time.sleep(0.2)
        assert headers["Retry-After"] and b"cannot store" in body
    finally:
        stack.kubectl("scale", "statefulset/nats", "-n", "knative-serving", "--replicas=1")
    wait_queue(stack)
    for call_id in accepted:
        wait_state(stack, host, call_id, "succeeded", timeout=90)


def accept_many(stack: Stack, host: str, count: int, path: str) -> list[str]:
    """``count`` calls accepted by 16 clients at once; the ids, all answered 202."""
    from concurrent.futures import ThreadPoolExecutor

    def one(index: int) -> str:
        code, headers, body = accept(stack, host, path, str(index).encode())
        assert code == 202, (code, body)
        return str(headers["X-Call-Id"])

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


def finished_ids(runs_file: Path) -> set[str]:
    return {call_id for kind, call_id, _, _, _ in lines(runs_file) if kind == "E"}


def wait_progress(runs_file: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(finished_ids(runs_file)) < count:
        assert time.monotonic() < deadline, f"only {len(finished_ids(runs_file))} calls ran, waiting for {count}"
        time.sleep(0.2)


def test_no_accepted_call_is_lost_when_the_queue_nats_and_the_function_pods_are_deleted(
        stack, namespace, runs_file):
    """1,000 calls to a slow function (0.3 s each, 40 at a time); the queue's pod, the NATS
    server and the function's pod are deleted in turn (each once the one before has been
    replaced) while they drain. Every call ends succeeded. A call may run twice when the
    replica that ran it cannot record the function's answer before it stops (seen when NATS
    was deleted while a deleted replica was still draining: its calls' outcomes could not be
    saved within its 25 s, their leases ran out and they ran again); the test prints repeats
    and bounds them by what was in flight."""
    concurrency = 40
    host = ready_function(stack, namespace, runs_file, annotations={
        "knserve.dev/async-concurrency": str(concurrency), "knserve.dev/async-max-attempts": "20",
        "knserve.dev/async-min-backoff": "500ms", "knserve.dev/async-max-backoff": "3s"},
        template_annotations={"autoscaling.knative.dev/min-scale": "1"})
    ids = accept_many(stack, host, 1000, "/?sleep=0.3")
    assert len(set(ids)) == 1000

    faults = []
    wait_progress(runs_file, 150, timeout=120)
    queue_pod = stack.local.pods("queue")[0]["metadata"]["name"]
    stack.kubectl("delete", "pod", queue_pod, "-n", "knative-serving", "--wait=false")
    faults.append(("queue pod", len(finished_ids(runs_file))))
    # one fault at a time: the deleted replica has drained and gone, its replacement is up
    stack.kubectl("wait", "--for=delete", f"pod/{queue_pod}", "-n", "knative-serving", "--timeout=60s", timeout=70)
    wait_queue(stack)
    wait_progress(runs_file, min(900, len(finished_ids(runs_file)) + 100), timeout=120)
    stack.kubectl("delete", "pod", "nats-0", "-n", "knative-serving", "--wait=false")
    faults.append(("nats-0", len(finished_ids(runs_file))))
    wait_queue(stack)
    wait_progress(runs_file, min(950, max(650, len(finished_ids(runs_file)) + 100)), timeout=180)
    stack.kubectl("delete", "pod", "-n", namespace, "-l", "serving.knative.dev/service=fn", "--wait=false")
    faults.append(("function pod", len(finished_ids(runs_file))))

    wait_progress(runs_file, 1000, timeout=240)
    wait_queue(stack)
    states = collections.Counter()
    for call_id in ids:
        states[wait_state(stack, host, call_id, "succeeded", "dead", "failed", timeout=120)["state"]] += 1
    assert states == {"succeeded": 1000}

    started = collections.Counter(call_id for call_id, _, _, _ in runs(runs_file))
    assert set(started) == set(ids), "the function ran only accepted calls"
    repeated = {call_id: count for call_id, count in started.items() if count > 1}
    print(f"\nfaults (deleted, calls finished by then): {faults}; calls that ran more than once: "
          f"{len(repeated)} ({sum(repeated.values()) - len(repeated)} extra runs)")
    assert len(repeated) <= 3 * concurrency, "repeats only for calls in flight at a fault"


def test_a_service_at_zero_wakes_for_queued_calls_and_max_scale_bounds_the_function(stack, namespace, runs_file):
    """Initial scale 0 (config-autoscaler allows it for this test): no pod until calls come.
    100 queued calls wake the Service and drain; with max-scale 2 and containerConcurrency 1
    the function never runs more than 2 at once."""
    stack.kubectl("patch", "configmap", "config-autoscaler", "-n", "knative-serving", "--type=merge",
                  "-p", json.dumps({"data": {"allow-zero-initial-scale": "true"}}))
    try:
        host = ready_function(stack, namespace, runs_file, container_concurrency=1,
                              annotations={"knserve.dev/async-concurrency": "10"},
                              template_annotations={"autoscaling.knative.dev/initial-scale": "0",
                                                    "autoscaling.knative.dev/max-scale": "2"})
    finally:
        stack.kubectl("patch", "configmap", "config-autoscaler", "-n", "knative-serving", "--type=merge",
                      "-p", json.dumps({"data": {"allow-zero-initial-scale": None}}))
    pods = json.loads(stack.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    assert pods == [], "the Service starts at zero"
    ids = accept_many(stack, host, 100, "/?sleep=0.2")
    for call_id in ids:
        wait_state(stack, host, call_id, "succeeded", timeout=120)
    assert {call_id for call_id, _, _, _ in runs(runs_file)} == set(ids)
    assert peak_concurrency(runs_file) <= 2


def test_a_service_with_async_always_queues_requests_sent_without_prefer(stack, namespace, runs_file):
    host = ready_function(stack, namespace, runs_file, annotations={"knserve.dev/async": "always"})
    deadline = time.monotonic() + 30
    while True:  # the Route's rules carry the annotation once the controller has seen it
        code, headers, body = http(stack, "POST", host, "/plain", body=b"no prefer")
        if code == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 202, (code, body)
    view = wait_state(stack, host, headers["X-Call-Id"], "succeeded")
    assert view["response"]["body"] == "done 1 no prefer"
    assert [r[0] for r in runs(runs_file) if r[0] != "-"] == [headers["X-Call-Id"]], "dispatched once, no loop"


def test_a_backlog_is_demand_the_autoscaler_scales_to_within_max_scale(stack, namespace, runs_file):
    """One call at a time (async-concurrency 1) but 30 waiting: the backlog pushed to the
    autoscaler, not the one call in flight, sets the scale (backlog / target, capped by
    max-scale 3; one call in flight alone would give ceil(1 / 0.7) = 2)."""
    host = ready_function(stack, namespace, runs_file, container_concurrency=1,
                          annotations={"knserve.dev/async-concurrency": "1"},
                          template_annotations={"autoscaling.knative.dev/max-scale": "3"})
    ids = accept_many(stack, host, 30, "/?sleep=0.5")
    deadline = time.monotonic() + 60
    peak = 0
    while time.monotonic() < deadline and peak < 3:
        deployment = stack.get("deployment", "fn-00001-deployment", namespace)
        peak = max(peak, int(deployment["spec"].get("replicas") or 0))
        time.sleep(0.5)
    assert peak == 3
    for call_id in ids:
        wait_state(stack, host, call_id, "succeeded", timeout=120)
