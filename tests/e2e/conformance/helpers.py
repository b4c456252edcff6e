"""Building blocks for the conformance scenarios: Service manifests, waits on status shapes,
and HTTP clients for what urllib cannot show (many requests at once, a cut streaming body).

Every scenario drives the stack the way a user does: manifests through kubectl, requests to
the ingress with a Host header. The runtime sample answers with the revision that served a
request (``env.K_REVISION``), which is how a test tells revisions apart.

Side effects: kubectl calls and HTTP requests against the session's stack.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from tests.e2e.conftest import Stack
from tests.support.eventually import eventually

RUNTIME_IMAGE = "knserve.dev/samples/runtime"
FUNCTION_IMAGE = "knserve.dev/samples/function"
HELLO_IMAGE = "ghcr.io/knative/helloworld-go"
DOMAIN = "example.com"


def host(name: str, namespace: str, *, tag: str | None = None) -> str:
    """The ingress host of a Service, or of one of its tags (``<tag>-<name>``)."""
    return f"{tag}-{name}.{namespace}.{DOMAIN}" if tag else f"{name}.{namespace}.{DOMAIN}"


def service(
    name: str,
    *,
    image: str = RUNTIME_IMAGE,
    env: dict[str, str] | None = None,
    template_name: str | None = None,
    traffic: list[dict[str, Any]] | None = None,
    timeout_seconds: int | None = None,
    container_concurrency: int | None = None,
    template_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ``serving.knative.dev/v1`` Service manifest with one container."""
    container: dict[str, Any] = {"image": image}
    if env:
        container["env"] = [{"name": key, "value": value} for key, value in env.items()]
    spec: dict[str, Any] = {"containers": [container]}
    if timeout_seconds is not None:
        spec["timeoutSeconds"] = timeout_seconds
    if container_concurrency is not None:
        spec["containerConcurrency"] = container_concurrency
    template: dict[str, Any] = {"spec": spec}
    metadata: dict[str, Any] = {}
    if template_name:
        metadata["name"] = template_name
    if template_annotations:
        metadata["annotations"] = template_annotations
    if metadata:
        template["metadata"] = metadata
    manifest: dict[str, Any] = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": template},
    }
    if traffic is not None:
        manifest["spec"]["traffic"] = traffic
    return manifest


def patch_service(stack: Stack, name: str, namespace: str, patch: dict[str, Any]) -> None:
    stack.kubectl("patch", "ksvc", name, "-n", namespace, "--type", "merge", "-p", json.dumps(patch))


def set_env(stack: Stack, name: str, namespace: str, env: dict[str, str]) -> None:
    """Replace the container's environment (a template change: a new Revision)."""
    current = stack.get("ksvc", name, namespace)
    containers = current["spec"]["template"]["spec"]["containers"]
    containers[0]["env"] = [{"name": key, "value": value} for key, value in env.items()]
    patch_service(stack, name, namespace, {"spec": {"template": {"spec": {"containers": containers}}}})


def condition(resource: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for found in resource.get("status", {}).get("conditions", []):
        if found.get("type") == kind:
            return dict(found)
    return {}


def wait_for(
    stack: Stack, kind: str, name: str, namespace: str, check: Callable[[dict[str, Any]], bool], *,
    what: str, timeout: float = 90,
) -> dict[str, Any]:
    """Poll ``kind/name`` until ``check`` holds; the object that passed."""
    current: dict[str, Any] = {}

    def passed() -> dict[str, Any] | None:
        nonlocal current
        current = stack.get(kind, name, namespace)
        return current if check(current) else None

    return eventually(passed, what=f"{kind}/{name} to show {what}", timeout=timeout, interval=0.2,
                      detail=lambda: f"status: {json.dumps(current.get('status'), indent=1)}")


def is_ready(resource: dict[str, Any]) -> bool:
    return (condition(resource).get("status") == "True"
            and resource.get("status", {}).get("observedGeneration") == resource["metadata"]["generation"])


def wait_new_ready_revision(stack: Stack, name: str, namespace: str, *, after: str) -> str:
    """Wait until the Service's latest ready revision is a new one, not ``after``; its name."""
    found = wait_for(
        stack, "ksvc", name, namespace,
        lambda svc: is_ready(svc) and svc["status"].get("latestReadyRevisionName") not in (None, after)
        and svc["status"].get("latestReadyRevisionName") == svc["status"].get("latestCreatedRevisionName"),
        what=f"a ready revision newer than {after}",
    )
    return str(found["status"]["latestReadyRevisionName"])


def traffic_shape(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``status.traffic`` by tag (untagged targets under ""), with Knative's zero defaults."""
    shape: dict[str, dict[str, Any]] = {}
    for target in resource.get("status", {}).get("traffic", []):
        shape[target.get("tag", "")] = {
            "revisionName": target.get("revisionName"),
            "percent": target.get("percent", 0),
            "latestRevision": target.get("latestRevision", False),
        }
    return shape


def wait_traffic_shape(
    stack: Stack, name: str, namespace: str, want: dict[str, dict[str, Any]], *, timeout: float = 90
) -> dict[str, Any]:
    """Wait until the Service is Ready and its tagged targets are exactly ``want``."""
    return wait_for(
        stack, "ksvc", name, namespace,
        lambda svc: is_ready(svc) and {tag: t for tag, t in traffic_shape(svc).items() if tag} == want,
        what=f"traffic {want}", timeout=timeout,
    )


def served_by(body: str) -> str:
    """The revision a runtime-sample answer came from."""
    return str(json.loads(body)["env"]["K_REVISION"])


def wait_served_by(stack: Stack, request_host: str, revision: str, *, timeout: float = 60) -> None:
    """Wait until the ingress sends ``request_host`` to ``revision`` (config reached Envoy)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            status, body = stack.request(request_host)
            last = f"{status} {body[:200]}"
            if status == 200 and served_by(body) == revision:
                return
        except (OSError, ValueError, KeyError) as error:
            last = str(error)
        time.sleep(0.2)
    raise AssertionError(f"{request_host} never reached {revision}; last answer: {last}")


# --- many requests at once ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: str
    error: str = ""
    sent: float = 0.0  # time.monotonic() when the request went out (the prober's answers)
    done: float = 0.0  # time.monotonic() when its answer was complete


async def _send_all(base: str, request_host: str, path: str, count: int, timeout: float) -> list[Answer]:
    connector = aiohttp.TCPConnector(limit=count, force_close=True)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        async def one() -> Answer:
            try:
                async with session.get(base + path, headers={"Host": request_host}) as response:
                    return Answer(response.status, await response.text())
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                return Answer(0, "", f"{type(error).__name__}: {error}")
        return list(await asyncio.gather(*(one() for _ in range(count))))


def send_concurrently(stack: Stack, request_host: str, *, count: int, path: str = "/",
                      timeout: float = 60) -> list[Answer]:
    """``count`` requests to ``request_host`` in flight at the same time."""
    return asyncio.run(_send_all(stack.ingress, request_host, path, count, timeout))


def revision_counts(answers: Iterable[Answer]) -> collections.Counter[str]:
    """How many answers each revision gave; failures counted under ``"<status> <error>"``."""
    counts: collections.Counter[str] = collections.Counter()
    for answer in answers:
        if answer.status == 200:
            counts[served_by(answer.body)] += 1
        else:
            counts[f"{answer.status} {answer.error or answer.body[:80]}".strip()] += 1
    return counts


# --- a response read as it arrives ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Streamed:
    status: int
    body: bytes
    complete: bool  # the body ended as framed (final chunk or full Content-Length)


def request_streamed(stack: Stack, request_host: str, path: str, *, timeout: float = 30) -> Streamed:
    """A GET whose body is read to its end or to the point where the connection was cut."""
    address = urllib.parse.urlsplit(stack.ingress)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": request_host})
        response = connection.getresponse()
        received = bytearray()
        try:
            while chunk := response.read1(65536):
                received += chunk
            return Streamed(response.status, bytes(received), complete=True)
        except http.client.IncompleteRead as error:
            return Streamed(response.status, bytes(received) + error.partial, complete=False)
        except (ConnectionError, http.client.HTTPException):
            return Streamed(response.status, bytes(received), complete=False)
    finally:
        connection.close()


# --- a steady prober -----------------------------------------------------------------------


class Prober:
    """Requests one after another (on a few threads) until stopped; every answer is kept.

    Modelled on Knative's route prober: an update must not fail a single request.
    """

    def __init__(self, stack: Stack, request_host: str, *, threads: int = 2) -> None:
        self.stack = stack
        self.request_host = request_host
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, name=f"prober-{n}", daemon=True) for n in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                status, body = self.stack.request(self.request_host, timeout=30)
                answer = Answer(status, body, sent=sent, done=time.monotonic())
            except OSError as error:
                answer = Answer(0, "", f"{type(error).__name__}: {error}", sent=sent, done=time.monotonic())
            with self._lock:
                self.answers.append(answer)

    def __enter__(self) -> Prober:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=40)

    def failures(self) -> list[Answer]:
        with self._lock:
            return [answer for answer in self.answers if answer.status != 200]

    def regressions(self, order: list[str]) -> list[tuple[Answer, Answer]]:
        """Pairs (newer, older): a request sent after an answer from a newer revision (in
        ``order``) had fully arrived was still answered by an older one. Requests in flight
        at the same moment may land on either side of a switch; that is no regression."""
        with self._lock:
            answered = [(order.index(served_by(a.body)), a) for a in self.answers if a.status == 200]
        found: list[tuple[Answer, Answer]] = []
        for rank, later in answered:
            newer = [a for r, a in answered if r > rank and a.done < later.sent]
            if newer:
                found.append((min(newer, key=lambda a: a.done), later))
        return found


def check_distribution(stack: Stack, request_host: str, want: set[str], *, count: int = 40) -> None:
    """``count`` requests at once to ``request_host`` all succeed and reach exactly ``want``."""
    counts = revision_counts(send_concurrently(stack, request_host, count=count))
    assert set(counts) == want, f"{request_host}: answers by revision {dict(counts)}, want only and all of {want}"
