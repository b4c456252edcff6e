"""Issue 4 (ingress) end to end: traffic splits, tags, rollbacks, zero-failure changes, a
controller restart, cluster-local visibility and gradual rollout, driven the way users do it
(``kubectl apply``/``patch`` and HTTP through Envoy with a Host header).

Load comes from a few threads, each with its own keep-alive ``http.client`` connection; every
answer is recorded, and any non-2xx or connection error counts as a failure.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.http_client import KeepAliveClient

HELLO_IMAGE = "ghcr.io/knative/helloworld-go"
SPLIT_REQUESTS = 5_000
SPLIT_TOLERANCE_POINTS = 2.0


# --- manifests --------------------------------------------------------------------------------

def hello_service(name: str, target: str, *, traffic: list[dict] | None = None,
                  labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:
    """A helloworld Service answering ``Hello <target>!``."""
    metadata: dict = {"name": name}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    spec: dict = {"template": {"spec": {"containers": [{
        "image": HELLO_IMAGE,
        "ports": [{"containerPort": 8080}],
        "env": [{"name": "TARGET", "value": target}],
    }]}}}
    if traffic is not None:
        spec["traffic"] = traffic
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": metadata, "spec": spec}


def patch_traffic(stack, name: str, namespace: str, traffic: list[dict]) -> None:
    stack.kubectl("patch", "ksvc", name, "-n", namespace, "--type", "merge",
                  "-p", json.dumps({"spec": {"traffic": traffic}}))


def wait_route_ready(stack, name: str, namespace: str) -> dict:
    """The Route Ready for its current generation (the ingress serves it), then the Service."""
    route = stack.wait_ready("route", name, namespace)
    stack.wait_ready("ksvc", name, namespace)
    return route


def wait_latest_ready(stack, name: str, namespace: str, revision: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while stack.get("configuration", name, namespace).get("status", {}).get("latestReadyRevisionName") != revision:
        assert time.monotonic() < deadline, f"{revision} never became the latest ready revision"
        time.sleep(0.1)


def route_condition(route: dict, kind: str) -> dict:
    return next((c for c in route.get("status", {}).get("conditions", []) if c["type"] == kind), {})


# --- load -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Answers:
    """Every answer seen: bodies of 2xx answers counted, everything else listed as a failure."""

    bodies: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    failures: list[str] = dataclasses.field(default_factory=list)
    answered_at: list[float] = dataclasses.field(default_factory=list)  # monotonic times of 2xx answers
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return sum(self.bodies.values()) + len(self.failures)

    def record(self, status: int, body: str) -> None:
        with self.lock:
            if 200 <= status < 300:
                self.bodies[body] += 1
                self.answered_at.append(time.monotonic())
            else:
                self.failures.append(f"{status} {body.strip()[:200]}")

    def fail(self, error: BaseException) -> None:
        with self.lock:
            self.failures.append(f"{type(error).__name__}: {error}")

    def answered_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for at in self.answered_at if start <= at <= end)

    def share(self, body: str) -> float:
        """Percent of all answers that were ``body``."""
        return 100.0 * self.bodies[body] / max(1, self.total)


def burst(port: int, host: str, total: int, *, clients: int = 8) -> Answers:
    """``total`` requests from ``clients`` concurrent keep-alive clients, as fast as they go."""
    answers = Answers()
    remaining = iter(range(total))
    take = threading.Lock()

    def worker() -> None:
        client = KeepAliveClient("127.0.0.1", port, host, timeout=30)
        try:
            while True:
                with take:
                    if next(remaining, None) is None:
                        return
                try:
                    answers.record(*client.get())
                except (OSError, http.client.HTTPException) as error:
                    answers.fail(error)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, name=f"burst-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@contextmanager
def steady_stream(port: int, host: str, *, rate: float = 100.0, clients: int = 4) -> Iterator[Answers]:
    """About ``rate`` requests a second from ``clients`` paced keep-alive clients while the
    block runs; the answers are complete when the block ends."""
    answers = Answers()
    stop = threading.Event()
    interval = clients / rate

    def worker(offset: float) -> None:
        client = KeepAliveClient("127.0.0.1", port, host, timeout=30)
        next_at = time.monotonic() + offset
        try:
            while not stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
                next_at = max(next_at + interval, time.monotonic() - interval)
                try:
                    answers.record(*client.get())
                except (OSError, http.client.HTTPException) as error:
                    answers.fail(error)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i * interval / clients,), name=f"stream-{i}")
               for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def assert_share(answers: Answers, want: dict[str, float]) -> None:
    assert not answers.failures, f"{len(answers.failures)} failed requests, first: {answers.failures[:5]}"
    assert set(answers.bodies) <= set(want), f"unexpected answers: {dict(answers.bodies)}"
    for body, percent in want.items():
        seen = answers.share(body)
        assert abs(seen - percent) <= SPLIT_TOLERANCE_POINTS, (
            f"{body.strip()!r} got {seen:.2f}% of {answers.total} requests, want {percent}% "
            f"+/- {SPLIT_TOLERANCE_POINTS} points: {dict(answers.bodies)}")


def assert_no_failures(answers: Answers, *, at_least: int) -> None:
    assert answers.total >= at_least, f"only {answers.total} requests were made"
    assert not answers.failures, (
        f"{len(answers.failures)} of {answers.total} requests failed, first: {answers.failures[:5]}")


# --- tests ------------------------------------------------------------------------------------

V1, V2 = "Hello v1!\n", "Hello v2!\n"


def deploy_two_revisions(stack, namespace: str, traffic: list[dict]) -> None:
    """hello-00001 answers v1, hello-00002 answers v2; ``traffic`` in effect and served."""
    stack.apply(hello_service("hello", "v1"), namespace)
    stack.wait_ready("ksvc", "hello", namespace)
    stack.apply(hello_service("hello", "v2", traffic=traffic), namespace)
    service = stack.wait_ready("ksvc", "hello", namespace)
    assert service["status"]["latestReadyRevisionName"] == "hello-00002"
    wait_route_ready(stack, "hello", namespace)


def test_split_tag_and_rollback(stack, namespace):
    ingress = stack.local.ports.ingress
    host = f"hello.{namespace}.example.com"
    deploy_two_revisions(stack, namespace, [
        {"revisionName": "hello-00001", "percent": 90},
        {"revisionName": "hello-00002", "percent": 10, "tag": "candidate"},
    ])
    route = stack.get("route", "hello", namespace)
    assert [(t["revisionName"], t["percent"], t.get("tag")) for t in route["status"]["traffic"]] == [
        ("hello-00001", 90, None), ("hello-00002", 10, "candidate")]
    assert route["status"]["traffic"][1]["url"] == f"http://candidate-hello.{namespace}.example.com"

    assert_share(burst(ingress, host, SPLIT_REQUESTS), {V1: 90, V2: 10})

    patch_traffic(stack, "hello", namespace, [
        {"revisionName": "hello-00001", "percent": 50},
        {"revisionName": "hello-00002", "percent": 50, "tag": "candidate"},
    ])
    wait_route_ready(stack, "hello", namespace)
    assert_share(burst(ingress, host, SPLIT_REQUESTS), {V1: 50, V2: 50})

    # The tag's host reaches its revision only.
    tagged = burst(ingress, f"candidate-hello.{namespace}.example.com", 200, clients=4)
    assert_no_failures(tagged, at_least=200)
    assert dict(tagged.bodies) == {V2: 200}

    # Rollback: everything back on hello-00001; the tag is gone with its target.
    patch_traffic(stack, "hello", namespace, [{"revisionName": "hello-00001", "percent": 100}])
    wait_route_ready(stack, "hello", namespace)
    rolled_back = burst(ingress, host, 500)
    assert_no_failures(rolled_back, at_least=500)
    assert dict(rolled_back.bodies) == {V1: 500}
    assert stack.request(f"candidate-hello.{namespace}.example.com")[0] == 404


def test_no_failures_during_template_change_and_traffic_move(stack, namespace):
    ingress = stack.local.ports.ingress
    host = f"hello.{namespace}.example.com"
    stack.apply(hello_service("hello", "v1"), namespace)
    stack.wait_ready("ksvc", "hello", namespace)
    assert stack.wait_answer(host) == V1

    # A template change: hello-00002 is created and the latest-revision traffic moves to it.
    with steady_stream(ingress, host) as during_change:
        time.sleep(1)
        stack.apply(hello_service("hello", "v2"), namespace)
        service = stack.wait_ready("ksvc", "hello", namespace)
        assert service["status"]["latestReadyRevisionName"] == "hello-00002"
        wait_route_ready(stack, "hello", namespace)
        time.sleep(1)
    assert_no_failures(during_change, at_least=200)
    assert set(during_change.bodies) == {V1, V2}
    assert stack.request(host)[1] == V2

    # A traffic move: pin everything back on hello-00001.
    with steady_stream(ingress, host) as during_move:
        time.sleep(1)
        patch_traffic(stack, "hello", namespace, [{"revisionName": "hello-00001", "percent": 100}])
        wait_route_ready(stack, "hello", namespace)
        time.sleep(1)
    assert_no_failures(during_move, at_least=200)
    assert set(during_move.bodies) == {V1, V2}
    assert stack.request(host)[1] == V1


def controller_healthy(stack) -> bool:
    return stack.local.health_checks()["controller"]()


def test_envoy_keeps_serving_while_the_controller_restarts(stack, namespace):
    ingress = stack.local.ports.ingress
    host = f"hello.{namespace}.example.com"
    deploy_two_revisions(stack, namespace, [
        {"revisionName": "hello-00001", "percent": 50},
        {"revisionName": "hello-00002", "percent": 50},
    ])
    try:
        with steady_stream(ingress, host) as across_restart:
            time.sleep(1)
            stack.local.scale("controller", 0)
            stopped = time.monotonic()
            assert not controller_healthy(stack), "the controller still answers"
            time.sleep(3)  # Envoy runs on its last config with no control plane
            restarted = time.monotonic()
            stack.local.scale("controller", 1)
            # The restarted controller takes over the Route and Envoy's stream.
            wait_route_ready(stack, "hello", namespace)
            time.sleep(3)
    finally:  # the rest of the session needs a controller
        if not controller_healthy(stack):
            stack.local.scale("controller", 1)
    assert_no_failures(across_restart, at_least=300)
    assert across_restart.answered_between(stopped, restarted) >= 100, "Envoy did not serve with the controller down"
    assert set(across_restart.bodies) == {V1, V2}

    # The restarted controller programs Envoy again.
    patch_traffic(stack, "hello", namespace, [{"revisionName": "hello-00002", "percent": 100}])
    wait_route_ready(stack, "hello", namespace)
    after = burst(ingress, host, 200, clients=4)
    assert_no_failures(after, at_least=200)
    assert dict(after.bodies) == {V2: 200}


def test_cluster_local_route_is_served_only_on_the_internal_listener(stack, namespace):
    stack.apply(hello_service("private", "inside",
                              labels={"networking.knative.dev/visibility": "cluster-local"}), namespace)
    service = stack.wait_ready("ksvc", "private", namespace)
    assert service["status"]["url"] == f"http://private.{namespace}.svc.cluster.local"
    route = stack.wait_ready("route", "private", namespace)
    assert route["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"

    local_host = f"private.{namespace}.svc.cluster.local"
    assert stack.wait_answer(local_host, internal=True) == "Hello inside!\n"
    assert stack.request(f"private.{namespace}", internal=True) == (200, "Hello inside!\n")
    assert stack.request(local_host)[0] == 404
    assert stack.request(f"private.{namespace}.example.com")[0] == 404


def test_gradual_rollout_moves_traffic_in_steps(stack, namespace):
    ingress = stack.local.ports.ingress
    host = f"hello.{namespace}.example.com"
    rollout = {"serving.knative.dev/rollout-duration": "20s"}
    stack.apply(hello_service("hello", "v1", annotations=rollout), namespace)
    stack.wait_ready("ksvc", "hello", namespace)
    assert stack.wait_answer(host) == V1

    stack.apply(hello_service("hello", "v2", annotations=rollout), namespace)
    # The rollout starts when hello-00002 becomes the latest ready revision.
    wait_latest_ready(stack, "hello", namespace, "hello-00002")
    began = time.monotonic()
    samples: list[tuple[float, float]] = []  # (seconds since the change, percent answered by v2)
    failures: list[str] = []
    ready_midway: tuple[str, str] | None = None
    while time.monotonic() - began < 60:
        answers = burst(ingress, host, 200, clients=4)
        failures += answers.failures
        samples.append((time.monotonic() - began, answers.share(V2)))
        if ready_midway is None and 5 <= samples[-1][1] <= 80:
            ready = route_condition(stack.get("route", "hello", namespace), "Ready")
            ready_midway = (ready.get("status", ""), ready.get("reason", ""))
        if samples[-1][1] == 100.0 and len(samples) > 3 and samples[-2][1] == 100.0:
            break
        time.sleep(0.5)
    trace = ", ".join(f"{at:.1f}s:{share:.0f}%" for at, share in samples)
    assert not failures, f"{len(failures)} requests failed during the rollout, first: {failures[:5]}"
    assert samples[-1][1] == 100.0, f"the new revision never got all the traffic: {trace}"
    moving = [share for _, share in samples if share > 0]
    assert moving and moving[0] <= 20, f"the new revision did not start low: {trace}"
    assert len({round(share / 10) for share in moving if 5 <= share <= 90}) >= 3, (
        f"the share did not rise in steps: {trace}")
    assert ready_midway == ("Unknown", "RolloutInProgress")
    route = wait_route_ready(stack, "hello", namespace)
    assert [(t["revisionName"], t["percent"]) for t in route["status"]["traffic"]] == [("hello-00002", 100)]
