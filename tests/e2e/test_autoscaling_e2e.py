"""Autoscaling end to end (issue 6): scale to zero and back, bursts from zero, concurrency
limits, scaling on load, min/max scale, an autoscaler restart and a full activator queue.

The module shortens the cluster's windows through ``config-autoscaler`` (stable window 6 s,
scale-to-zero grace 2 s, initial scale 0 allowed) and maps a test app, ``overlap_app.py``,
in the local image map; both are put back when the module ends. Load comes from aiohttp
clients on a background thread while the test thread watches the cluster with kubectl.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from knserve.networking import SYSTEM_NAMESPACE
from tests.e2e.conftest import Stack
from tests.e2e.overlap_app import IMAGE as OVERLAP_IMAGE
from tests.support.eventually import eventually

FAST_AUTOSCALER = {
    "stable-window": "6s",
    "scale-to-zero-grace-period": "2s",
    "allow-zero-initial-scale": "true",
}
OVERLAP_ENTRY = "e2e.overlap"
HELLO_IMAGE = "ghcr.io/knative/helloworld-go"
AUTOSCALE_IMAGE = "ghcr.io/knative/autoscale-go"
MARKER_VARIABLE = "E2E_NAMESPACE"  # set on every test container: finds its processes


# --- cluster settings for the module ----------------------------------------------------------
def _merge_patch(stack: Stack, kind: str, name: str, data: dict[str, str | None]) -> None:
    stack.kubectl("patch", kind, name, "-n", SYSTEM_NAMESPACE, "--type", "merge",
                  "-p", json.dumps({"data": data}))


@pytest.fixture(scope="module")
def autoscaling(stack: Stack) -> Iterator[Stack]:
    original = stack.get("configmap", "config-autoscaler", SYSTEM_NAMESPACE).get("data") or {}
    entry = f"image: {OVERLAP_IMAGE}\ncommand: {sys.executable} {Path(__file__).parent / 'overlap_app.py'}\n"
    _merge_patch(stack, "configmap", "config-autoscaler", dict(FAST_AUTOSCALER))
    _merge_patch(stack, "configmap", "knserve-images", {OVERLAP_ENTRY: entry})
    try:
        yield stack
    finally:
        _merge_patch(stack, "configmap", "config-autoscaler", {key: original.get(key) for key in FAST_AUTOSCALER})
        _merge_patch(stack, "configmap", "knserve-images", {OVERLAP_ENTRY: None})


@pytest.fixture(scope="module", autouse=True)
def idle_service(autoscaling: Stack) -> Iterator[str]:
    """A hello Service, up and answered once when the module starts, then left alone: it has
    scaled to zero (and its pod drained) by the time the last test looks at it."""
    stack = autoscaling
    namespace = f"t-idle-{uuid.uuid4().hex[:6]}"
    stack.kubectl("create", "namespace", namespace)
    eventually(lambda: stack.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0,
             timeout=30, what=f"namespace {namespace} has its default service account", interval=0.1)
    try:
        stack.apply(make_service("idle", namespace, image=HELLO_IMAGE), namespace)
        stack.wait_ready("ksvc", "idle", namespace)
        assert stack.wait_answer(host_of("idle", namespace)) == "Hello World!\n"
        assert observe(stack, "idle-00001", namespace).live_pods == 1
        assert revision_processes(namespace), "the running revision has no processes on the node"
        yield namespace
    finally:
        stack.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# --- objects ----------------------------------------------------------------------------------
def make_service(
    name: str,
    namespace: str,
    *,
    image: str,
    annotations: dict[str, str] | None = None,
    container_concurrency: int | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"image": image, "env": [{"name": MARKER_VARIABLE, "value": namespace}]}],
    }
    if container_concurrency is not None:
        spec["containerConcurrency"] = container_concurrency
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": {"metadata": {"annotations": annotations or {}}, "spec": spec}},
    }


def host_of(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.example.com"


# --- observing the cluster --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Scale:
    desired: int | None  # the PodAutoscaler's desiredScale
    actual: int | None  # its actualScale
    replicas: int | None  # the Deployment's spec.replicas
    live_pods: int  # pods not being deleted
    ready_pods: int


def observe(stack: Stack, revision: str, namespace: str) -> Scale:
    pa = stack.get("kpa", revision, namespace).get("status", {})
    deployment = stack.get("deployment", f"{revision}-deployment", namespace)
    pods = json.loads(stack.kubectl(
        "get", "pods", "-n", namespace, "-l", f"serving.knative.dev/revision={revision}", "-o", "json",
    ).stdout)["items"]
    live = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]
    ready = [
        pod for pod in live
        if any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))
    ]
    return Scale(pa.get("desiredScale"), pa.get("actualScale"), deployment["spec"].get("replicas"),
                 len(live), len(ready))


def revision_processes(namespace: str) -> list[int]:
    """Pids of the namespace's pod processes: queue-proxies and the test containers."""
    wanted = {f"SERVING_NAMESPACE={namespace}".encode(), f"{MARKER_VARIABLE}={namespace}".encode()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted.intersection(environment):
            found.append(int(entry.name))
    return found


# --- load -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: str
    sent: float  # monotonic seconds
    answered: float


class Load:
    """``clients`` keep-alive clients asking ``path`` over and over until stopped, on their own thread."""

    def __init__(self, stack: Stack, host: str, path: str, *, clients: int) -> None:
        self.url = stack.ingress + path
        self.host = host
        self.clients = clients
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name=f"load-{host}", daemon=True)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
            async def client() -> None:
                while not self._stop.is_set():
                    sent = time.monotonic()
                    try:
                        async with session.get(self.url, headers={"Host": self.host}) as response:
                            body = await response.text()
                            self.answers.append(Answer(response.status, body, sent, time.monotonic()))
                    except (aiohttp.ClientError, TimeoutError) as error:
                        self.answers.append(Answer(0, repr(error), sent, time.monotonic()))

            await asyncio.gather(*(client() for _ in range(self.clients)))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=90)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for answer in self.answers:
            counts[answer.status] = counts.get(answer.status, 0) + 1
        return counts


def burst(stack: Stack, host: str, path: str, count: int) -> list[Answer]:
    """``count`` requests sent at once, each on its own connection."""

    async def run() -> list[Answer]:
        timeout = aiohttp.ClientTimeout(total=90)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
            async def one() -> Answer:
                sent = time.monotonic()
                async with session.get(stack.ingress + path, headers={"Host": host}) as response:
                    body = await response.text()
                    return Answer(response.status, body, sent, time.monotonic())

            return list(await asyncio.gather(*(one() for _ in range(count))))

    return asyncio.run(run())


# --- tests ------------------------------------------------------------------------------------
def test_fifty_concurrent_requests_to_a_revision_at_zero_all_get_200(autoscaling, namespace):
    stack = autoscaling
    # initial-scale 0: the revision is Ready with no pod at all.
    service = make_service("burst", namespace, image=HELLO_IMAGE,
                           annotations={"autoscaling.knative.dev/initial-scale": "0"})
    stack.apply(service, namespace)
    stack.wait_ready("ksvc", "burst", namespace)
    scale = observe(stack, "burst-00001", namespace)
    assert scale.live_pods == 0 and scale.replicas == 0, scale

    answers = burst(stack, host_of("burst", namespace), "/", 50)
    assert [(a.status, a.body) for a in answers] == [(200, "Hello World!\n")] * 50
    assert observe(stack, "burst-00001", namespace).live_pods >= 1


def test_container_concurrency_one_never_overlaps_and_scales_out(autoscaling, namespace):
    stack = autoscaling
    service = make_service("single", namespace, image=OVERLAP_IMAGE, container_concurrency=1,
                           annotations={"autoscaling.knative.dev/max-scale": "3"})
    stack.apply(service, namespace)
    stack.wait_ready("ksvc", "single", namespace)

    most_pods = 0
    with Load(stack, host_of("single", namespace), "/?sleep=200", clients=5) as load:
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            most_pods = max(most_pods, observe(stack, "single-00001", namespace).ready_pods)
            time.sleep(0.5)

    assert load.statuses() == {200: len(load.answers)}, load.statuses()
    bodies = [json.loads(answer.body) for answer in load.answers]
    assert len(bodies) > 20
    assert max(body["most_in_flight"] for body in bodies) == 1, "the app saw two requests at once"
    assert len({body["pid"] for body in bodies}) > 1, "every answer came from one pod"
    assert most_pods > 1


def test_sustained_load_reaches_target_pods_and_returns_to_min_scale(autoscaling, namespace):
    stack = autoscaling
    service = make_service("steady", namespace, image=AUTOSCALE_IMAGE, annotations={
        "autoscaling.knative.dev/target": "10",
        "autoscaling.knative.dev/target-utilization-percentage": "100",
        "autoscaling.knative.dev/min-scale": "1",
    })
    stack.apply(service, namespace)
    stack.wait_ready("ksvc", "steady", namespace)

    # 30 requests in flight at all times, 10 per pod: 3 pods.
    seen: list[Scale] = []
    with Load(stack, host_of("steady", namespace), "/?sleep=500", clients=30) as load:
        load_began = time.monotonic()

        def settled() -> bool:
            seen.append(observe(stack, "steady-00001", namespace))
            if time.monotonic() - load_began < 4.0:  # two decision ticks: before them 1 pod looks settled
                return False
            last = seen[-4:]
            # Settled: the PA's desired scale, the Deployment's replicas and the ready pods agree
            # for 2 s (the PA status can lag a scale write it just made).
            return len(last) == 4 and all(
                s.desired == last[0].desired and s.ready_pods == s.desired and s.replicas == s.desired for s in last)

        eventually(settled, timeout=60, what="steady-00001 settled under load", interval=0.5)
    assert load.statuses() == {200: len(load.answers)}, load.statuses()
    assert 2 <= (seen[-1].desired or 0) <= 4, seen[-1]
    assert max(s.desired or 0 for s in seen) <= 4, [s.desired for s in seen]

    # Load gone: back to min-scale, not to zero.
    back = eventually(lambda: (s := observe(stack, "steady-00001", namespace)).desired == 1 and s.live_pods == 1 and s,
                    timeout=60, what="steady-00001 back to min-scale 1")
    assert back.ready_pods == 1


def test_min_scale_keeps_pods_while_idle_and_max_scale_caps(autoscaling, namespace):
    stack = autoscaling
    service = make_service("bounded", namespace, image=AUTOSCALE_IMAGE, annotations={
        "autoscaling.knative.dev/min-scale": "2",
        "autoscaling.knative.dev/max-scale": "3",
        "autoscaling.knative.dev/target": "5",
        "autoscaling.knative.dev/target-utilization-percentage": "100",
    })
    stack.apply(service, namespace)
    stack.wait_ready("ksvc", "bounded", namespace)
    eventually(lambda: observe(stack, "bounded-00001", namespace).ready_pods == 2, timeout=60,
             what="bounded-00001 has 2 ready pods")

    # Idle for longer than the stable window plus the grace period: still 2 pods.
    deadline = time.monotonic() + 9
    while time.monotonic() < deadline:
        scale = observe(stack, "bounded-00001", namespace)
        assert scale.live_pods == 2 and scale.replicas == 2 and scale.desired == 2, scale
        time.sleep(0.5)

    # Load worth 6 pods: 3 come up, and never more.
    seen: list[Scale] = []
    with Load(stack, host_of("bounded", namespace), "/?sleep=300", clients=30) as load:
        def capped() -> bool:
            seen.append(observe(stack, "bounded-00001", namespace))
            reached = [i for i, s in enumerate(seen) if s.ready_pods == 3]
            return bool(reached) and len(seen) - reached[0] >= 5  # and held for a few more looks

        eventually(capped, timeout=40, what="bounded-00001 at 3 ready pods under load", interval=0.5)
    assert load.statuses() == {200: len(load.answers)}, load.statuses()
    assert max(s.live_pods for s in seen) == 3, [s.live_pods for s in seen]
    assert max(s.replicas or 0 for s in seen) == 3
    assert max(s.desired or 0 for s in seen) == 3


def test_autoscaler_restart_leaves_traffic_alone_and_does_not_scale_down(autoscaling, namespace):
    stack = autoscaling
    service = make_service("survivor", namespace, image=AUTOSCALE_IMAGE, annotations={
        "autoscaling.knative.dev/target": "10",
        "autoscaling.knative.dev/target-utilization-percentage": "100",
    })
    stack.apply(service, namespace)
    stack.wait_ready("ksvc", "survivor", namespace)

    with Load(stack, host_of("survivor", namespace), "/?sleep=500", clients=20) as load:
        seen: list[Scale] = []

        # 20 in flight at 10 per pod: 2 pods (a panic on the way up may briefly give 3).
        def settled() -> bool:
            seen.append(observe(stack, "survivor-00001", namespace))
            last = seen[-3:]
            return len(last) == 3 and all(
                (s.desired or 0) >= 2 and s.ready_pods >= 2 and s.replicas == s.desired for s in last
            )

        eventually(settled, timeout=60, what="survivor-00001 settled at 2 or more pods", interval=0.5)
        replicas = seen[-1].replicas
        killed_at = len(load.answers)
        try:
            stack.local.scale("autoscaler", 0)
            # Without the autoscaler the pods keep serving and nobody changes the scale.
            for _ in range(8):
                scale = observe(stack, "survivor-00001", namespace)
                assert scale.replicas == replicas and scale.ready_pods >= 2, scale
                time.sleep(0.5)
        finally:
            stack.local.scale("autoscaler", 1)
        served_while_down = load.answers[killed_at:]
        # The restarted autoscaler starts with no history: it must keep 2 pods under the same load.
        after: list[Scale] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after.append(observe(stack, "survivor-00001", namespace))
            time.sleep(0.5)

    assert served_while_down and all(a.status == 200 for a in served_while_down)
    assert load.statuses() == {200: len(load.answers)}, load.statuses()
    assert min(s.replicas or 0 for s in after) >= 2, [s.replicas for s in after]
    assert min(s.ready_pods for s in after) >= 2, [s.ready_pods for s in after]


@pytest.fixture
def shallow_activator(autoscaling: Stack) -> Iterator[int]:
    """One activator, restarted with room for 3 queued requests per revision; the usual ones after.

    config/ runs two activators, each with its own queue; one makes the queue's bound exact."""
    stack = autoscaling
    depth = 3
    stack.local.add_args("activator", f"--queue-depth={depth}")
    try:
        stack.local.scale("activator", 1)
        eventually(lambda: len(stack.local.pods("activator")) == 1, timeout=120,
                   what="one activator pod left (the other drained and gone)")
        yield depth
    finally:
        stack.local.restore()


def test_full_activator_queue_answers_503_at_once_and_spares_other_revisions(
    autoscaling, namespace, shallow_activator
):
    stack = autoscaling
    depth = shallow_activator
    slow = make_service("slow", namespace, image=OVERLAP_IMAGE, container_concurrency=1, annotations={
        "autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/max-scale": "1",
    })
    other = make_service("other", namespace, image=HELLO_IMAGE)
    stack.apply(slow, namespace)
    stack.apply(other, namespace)
    stack.wait_ready("ksvc", "slow", namespace)
    stack.wait_ready("ksvc", "other", namespace)
    stack.wait_answer(host_of("slow", namespace))
    stack.wait_answer(host_of("other", namespace))

    # One pod taking one request at a time, each held 2 s: 1 in flight + 3 queued; the rest is refused.
    sent = 10
    answers: list[Answer] = []
    thread = threading.Thread(
        target=lambda: answers.extend(burst(stack, host_of("slow", namespace), "/?sleep=2000", sent))
    )
    thread.start()
    others = []
    while thread.is_alive():
        others.append(stack.request(host_of("other", namespace)))
        time.sleep(0.1)
    thread.join()

    refused = [a for a in answers if a.status == 503]
    served = [a for a in answers if a.status == 200]
    assert len(served) == 1 + depth and len(refused) == sent - 1 - depth, [a.status for a in answers]
    assert all("pending request queue full" in a.body for a in refused)
    # "At once": every refusal came back before the first admitted request was answered.
    assert max(a.answered for a in refused) < min(a.answered for a in served)
    assert others and all(answer == (200, "Hello World!\n") for answer in others), others


# Last, so that the idle Service made when the module started has long gone to zero.
def test_idle_service_scales_to_zero_and_the_next_request_brings_a_pod_back(autoscaling, idle_service):
    stack, namespace = autoscaling, idle_service

    # No traffic for a stable window plus the grace period: the revision goes to zero, and
    # once its pod has drained nothing of it runs on the node.
    def at_zero() -> Scale | None:
        scale = observe(stack, "idle-00001", namespace)
        gone = scale.desired == 0 and scale.actual == 0 and scale.replicas == 0 and scale.live_pods == 0
        return scale if gone and not revision_processes(namespace) else None

    eventually(at_zero, timeout=90, what="idle-00001 scaled to zero with no pod and no process left")
    pa = stack.get("kpa", "idle-00001", namespace)
    active = [c for c in pa["status"]["conditions"] if c["type"] == "Active"]
    assert active and active[0]["status"] == "False" and active[0]["reason"] == "NoTraffic"
    listed = stack.kubectl("get", "kpa", "idle-00001", "-n", namespace, "--no-headers").stdout.split()
    assert listed[1:3] == ["0", "0"], listed  # DESIREDSCALE ACTUALSCALE as users see them

    # The next request is held until a pod is up, and answered.
    assert stack.request(host_of("idle", namespace)) == (200, "Hello World!\n")
    assert observe(stack, "idle-00001", namespace).live_pods == 1
    assert revision_processes(namespace)
    # The PodAutoscaler's status follows the scale write.
    eventually(lambda: (observe(stack, "idle-00001", namespace).desired or 0) >= 1, timeout=15,
             what="idle-00001's PodAutoscaler wants a pod again")
