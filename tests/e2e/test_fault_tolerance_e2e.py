"""Fault tolerance end to end: WebSockets through the ingress, writes while the controller is
replaced, and no failed request while each component is replaced under steady load.

The module shortens the autoscaler's windows through ``config-autoscaler`` (stable window 6 s,
scale-to-zero grace 2 s, initial scale 0 allowed, so a Service can start at zero) and maps a
WebSocket test app, ``websocket_app.py``, in the local image map; both are put back when the
module ends. Load is modest and bounded: aiohttp clients on a background thread, a new
connection per request (as clients without keep-alive come), 20 requests a second for as
long as a replacement takes (at most ``REPLACE_TIMEOUT`` seconds per component).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from knserve.networking import SYSTEM_NAMESPACE
from tests.e2e.conftest import Stack
from tests.e2e.websocket_app import IMAGE as WEBSOCKET_IMAGE
from tests.support.eventually import eventually

FAST_AUTOSCALER = {
    "stable-window": "6s",
    "scale-to-zero-grace-period": "2s",
    "allow-zero-initial-scale": "true",
}
WEBSOCKET_ENTRY = "e2e.websocket"
HELLO_IMAGE = "ghcr.io/knative/helloworld-go"
RATE = 20.0  # requests a second
REPLACE_TIMEOUT = 150.0  # generous: the machine may be shared and slow
SETTLE_SECONDS = 3.0  # load kept up after the replacement is ready and the old pod gone


def _merge_patch(stack: Stack, kind: str, name: str, data: dict[str, str | None]) -> None:
    stack.kubectl("patch", kind, name, "-n", SYSTEM_NAMESPACE, "--type", "merge", "-p", json.dumps({"data": data}))


@pytest.fixture(scope="module")
def faults(stack: Stack) -> Iterator[Stack]:
    original = stack.get("configmap", "config-autoscaler", SYSTEM_NAMESPACE).get("data") or {}
    entry = f"image: {WEBSOCKET_IMAGE}\ncommand: {sys.executable} {Path(__file__).parent / 'websocket_app.py'}\n"
    _merge_patch(stack, "configmap", "config-autoscaler", dict(FAST_AUTOSCALER))
    _merge_patch(stack, "configmap", "knserve-images", {WEBSOCKET_ENTRY: entry})
    try:
        yield stack
    finally:
        _merge_patch(stack, "configmap", "config-autoscaler", {key: original.get(key) for key in FAST_AUTOSCALER})
        _merge_patch(stack, "configmap", "knserve-images", {WEBSOCKET_ENTRY: None})


def make_service(name: str, *, image: str, annotations: dict[str, str], env: str = "") -> dict[str, Any]:
    container: dict[str, Any] = {"image": image}
    if env:
        container["env"] = [{"name": "GENERATION_MARK", "value": env}]
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": {"metadata": {"annotations": annotations}, "spec": {"containers": [container]}}},
    }


AT_ZERO = {"autoscaling.knative.dev/initial-scale": "0", "autoscaling.knative.dev/min-scale": "0"}
ALWAYS_ONE = {"autoscaling.knative.dev/min-scale": "1"}


def host_of(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.example.com"


def live_pods(stack: Stack, namespace: str, selector: str) -> list[dict[str, Any]]:
    listed = json.loads(stack.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)
    return [pod for pod in listed["items"] if not pod["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


def revision_pods(stack: Stack, namespace: str, revision: str) -> list[dict[str, Any]]:
    return live_pods(stack, namespace, f"serving.knative.dev/revision={revision}")


def wait_at_zero(stack: Stack, namespace: str, revision: str) -> None:
    eventually(lambda: not revision_pods(stack, namespace, revision) and not stack.kubectl(
        "get", "pods", "-n", namespace, "-l", f"serving.knative.dev/revision={revision}", "-o", "name").stdout.strip(),
        timeout=90, interval=0.5, what=f"{revision} has no pods")


# --- steady load ------------------------------------------------------------------------------
@dataclasses.dataclass
class Outcome:
    at: float
    host: str
    status: int  # 0: no HTTP answer
    detail: str


class SteadyLoad:
    """``RATE`` requests a second to each host, from a background thread, until ``stop``."""

    def __init__(self, base: str, hosts: list[str], rate: float = RATE) -> None:
        self._base = base
        self._hosts = hosts
        self._rate = rate
        self.outcomes: list[Outcome] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="steady-load", daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)

    async def _one(self, session: aiohttp.ClientSession, host: str) -> None:
        started = time.monotonic()
        try:
            async with session.get(self._base + "/", headers={"Host": host}) as response:
                body = await response.text()
                self.outcomes.append(Outcome(started, host, response.status, body[:200]))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            self.outcomes.append(Outcome(started, host, 0, repr(error)))

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(force_close=True, limit=0)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            tasks: set[asyncio.Task[None]] = set()
            interval = 1.0 / self._rate
            next_at = time.monotonic()
            while not self._stopping.is_set():
                for host in self._hosts:
                    task = asyncio.create_task(self._one(session, host))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await asyncio.gather(*tasks)

    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status != 200]


def replace_pod(stack: Stack, pod: dict[str, Any], *, component: str, replicas: int) -> None:
    """Delete ``pod`` and return once it is gone and ``replicas`` pods of ``component`` are ready."""
    name = pod["metadata"]["name"]
    stack.kubectl("delete", "pod", name, "-n", SYSTEM_NAMESPACE, "--wait=false")

    def replaced() -> bool:
        remaining = stack.kubectl("get", "pod", name, "-n", SYSTEM_NAMESPACE, check=False)
        ready = [p for p in live_pods(stack, SYSTEM_NAMESPACE, f"app.kubernetes.io/component={component}")
                 if is_ready(p)]
        return remaining.returncode != 0 and len(ready) >= replicas

    eventually(replaced, timeout=REPLACE_TIMEOUT, interval=0.5, what=f"{component} pod {name} replaced")
    time.sleep(SETTLE_SECONDS)


def component_pods(stack: Stack, component: str) -> list[dict[str, Any]]:
    return live_pods(stack, SYSTEM_NAMESPACE, f"app.kubernetes.io/component={component}")


def controller_leader(stack: Stack) -> str:
    lease = stack.get("lease", "knserve-controller", SYSTEM_NAMESPACE)
    holder = lease["spec"].get("holderIdentity") or ""
    return holder.rpartition("_")[0]


def describe(failures: list[Outcome], began: float) -> str:
    return "\n".join(f"+{f.at - began:.2f}s {f.host}: {f.status} {f.detail}" for f in failures[:20])


# --- tests ------------------------------------------------------------------------------------
async def _echo_through_ingress(stack: Stack, host: str, words: list[str]) -> list[str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        async with session.ws_connect(stack.ingress + "/ws", headers={"Host": host}) as socket:
            answers = []
            for word in words:
                await socket.send_str(word)
                answers.append(await socket.receive_str(timeout=30))
            return answers


def test_a_websocket_through_the_ingress_reaches_a_revision_at_zero_and_warm(
        faults: Stack, namespace: str) -> None:
    stack = faults
    stack.apply(make_service("chat", image=WEBSOCKET_IMAGE, annotations=AT_ZERO), namespace)
    stack.wait_ready("ksvc", "chat", namespace)
    assert not revision_pods(stack, namespace, "chat-00001"), "the revision should start at zero"
    host = host_of("chat", namespace)

    # At zero: Envoy sends the upgrade to the activator, which holds it until a pod answers.
    cold = asyncio.run(_echo_through_ingress(stack, host, ["hello", "again"]))
    pid = cold[0].split(":")[0]
    assert cold == [f"{pid}: hello", f"{pid}: again"]
    assert revision_pods(stack, namespace, "chat-00001")

    # Warm: the same app answers a new socket.
    warm = asyncio.run(_echo_through_ingress(stack, host, ["warm"]))
    assert warm[0].endswith(": warm")
    status, body = stack.request(host)
    assert (status, body) == (200, "ok\n")


def test_writes_are_admitted_while_the_controller_and_a_webhook_pod_are_replaced(
        faults: Stack, namespace: str) -> None:
    stack = faults
    assert len(component_pods(stack, "webhook")) >= 2 and len(component_pods(stack, "controller")) >= 2
    errors: list[str] = []
    applied = 0
    stopping = threading.Event()

    def apply_in_a_loop() -> None:
        nonlocal applied
        while not stopping.is_set():
            manifest = make_service("written", image=HELLO_IMAGE, annotations=AT_ZERO, env=str(applied))
            result = stack.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
            if result.returncode != 0:
                errors.append(result.stderr.strip())
            applied += 1
            time.sleep(0.2)

    writer = threading.Thread(target=apply_in_a_loop, name="apply-loop", daemon=True)
    writer.start()
    try:
        leader = controller_leader(stack)
        [pod] = [p for p in component_pods(stack, "controller") if p["metadata"]["name"] == leader]
        replace_pod(stack, pod, component="controller", replicas=2)
        eventually(lambda: controller_leader(stack) not in ("", leader), timeout=60, interval=0.5,
                   what="another controller leads")
        replace_pod(stack, component_pods(stack, "webhook")[0], component="webhook", replicas=2)
    finally:
        stopping.set()
        writer.join(timeout=60)
    assert applied >= 10
    assert not errors, f"{len(errors)} of {applied} applies failed; first: {errors[0]}"
    # The new leader reconciles what was written meanwhile.
    service = stack.wait_ready("ksvc", "written", namespace, timeout=120)
    assert service["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == str(applied - 1)


def test_no_request_fails_while_each_component_is_replaced(faults: Stack, namespace: str) -> None:
    stack = faults
    stack.apply(make_service("steady", image=HELLO_IMAGE, annotations=ALWAYS_ONE), namespace)
    stack.apply(make_service("cold", image=HELLO_IMAGE, annotations=AT_ZERO), namespace)
    stack.wait_ready("ksvc", "steady", namespace)
    stack.wait_ready("ksvc", "cold", namespace)
    steady, cold = host_of("steady", namespace), host_of("cold", namespace)
    assert stack.wait_answer(steady) == "Hello World!\n"
    began = time.monotonic()
    replaced: list[str] = []
    with SteadyLoad(stack.ingress, [steady]) as load:
        for component, replicas in (("ingress", 1), ("autoscaler", 1)):
            replace_pod(stack, component_pods(stack, component)[0], component=component, replicas=replicas)
            replaced.append(component)
        leader = controller_leader(stack)
        [pod] = [p for p in component_pods(stack, "controller") if p["metadata"]["name"] == leader]
        replace_pod(stack, pod, component="controller", replicas=2)
        replaced.append("controller")
        [revision_pod] = revision_pods(stack, namespace, "steady-00001")
        stack.kubectl("delete", "pod", revision_pod["metadata"]["name"], "-n", namespace, "--wait=false")
        eventually(lambda: any(is_ready(p) for p in revision_pods(stack, namespace, "steady-00001")),
                   timeout=REPLACE_TIMEOUT, interval=0.5, what="steady's pod replaced")
        time.sleep(SETTLE_SECONDS)
        replaced.append("revision pod")
    # The activator, with a Service at zero routed to it (and the steady one, whose traffic
    # the activator carries too while its spare capacity is under the target burst capacity).
    wait_at_zero(stack, namespace, "cold-00001")
    with SteadyLoad(stack.ingress, [steady, cold]) as at_zero:
        replace_pod(stack, component_pods(stack, "activator")[0], component="activator", replicas=2)
        replaced.append("activator")
    outcomes = load.outcomes + at_zero.outcomes
    failures = load.failures() + at_zero.failures()
    assert len(outcomes) >= RATE * 20, f"only {len(outcomes)} requests were sent"
    assert any(o.host == cold and o.status == 200 for o in at_zero.outcomes), "the Service at zero never answered"
    assert not failures, (f"{len(failures)} of {len(outcomes)} requests failed while replacing {replaced}:\n"
                          + describe(failures, began))


def test_a_lone_activator_being_replaced_keeps_serving_a_service_at_zero(faults: Stack, namespace: str) -> None:
    """One activator: its replacement is not ready at once, the old one drains meanwhile."""
    stack = faults
    stack.apply(make_service("lone", image=HELLO_IMAGE, annotations=AT_ZERO), namespace)
    stack.wait_ready("ksvc", "lone", namespace)
    host = host_of("lone", namespace)
    stack.kubectl("scale", "deployment/activator", "-n", SYSTEM_NAMESPACE, "--replicas=1")
    try:
        eventually(lambda: len(component_pods(stack, "activator")) == 1, timeout=REPLACE_TIMEOUT, interval=0.5,
                   what="one activator left")
        wait_at_zero(stack, namespace, "lone-00001")
        began = time.monotonic()
        with SteadyLoad(stack.ingress, [host]) as load:
            replace_pod(stack, component_pods(stack, "activator")[0], component="activator", replicas=1)
        assert any(o.status == 200 for o in load.outcomes)
        assert not load.failures(), (f"{len(load.failures())} of {len(load.outcomes)} requests failed:\n"
                                     + describe(load.failures(), began))
    finally:
        stack.kubectl("scale", "deployment/activator", "-n", SYSTEM_NAMESPACE, "--replicas=2")
        eventually(lambda: len([p for p in component_pods(stack, "activator") if is_ready(p)]) == 2,
                   timeout=REPLACE_TIMEOUT, interval=0.5, what="two activators again")
