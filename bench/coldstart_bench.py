"""Cold starts on the whole local stack: request at zero -> first byte, where the time goes,
the activator's added latency and 20 Services woken at once.

Run on demand (never in the test suite)::

    .venv/bin/python -m bench.coldstart_bench [--cold-starts 15] [--burst 20] [--requests 2000]

Starts a private local stack (control plane, node agent, controller, activator, autoscaler,
Envoy) in a temporary directory on free ports, sets ``config-autoscaler`` to initial scale 0
with short windows (stable window 6 s, scale-to-zero grace 2 s), and applies
``examples/hello.yaml`` unchanged into one namespace per cold start, so each revision is
Ready with no pod. Then, in one run:

1. the activator's added latency: the same warm pod (a revision with min-scale 1) asked
   straight at its queue-proxy (``<pod IP>:8012``) and through the activator's port with
   the revision headers Envoy adds, in alternating rounds; p50 of each and the difference
   (target <= 1 ms); and a warm request through the ingress as the baseline for cold starts;
2. sequential cold starts through the ingress (Envoy -> activator -> new pod): time from
   sending the request to its first response byte, p50/p99 (targets 1.0 s / 2.0 s), and the
   split read from the components' logs (millisecond timestamps):
     poke       request sent -> autoscaler logs the activator's poke ("poked: ...")
     decide     poke -> autoscaler logs the scale write ("scaling ... from 0 to 1")
     pod start  scale write -> node agent started the pod's first container (includes the
                /scale write, the ReplicaSet controller, binding and the spawn)
     app ready  first container started -> queue-proxy logs "app ready" (process start and
                the readiness probe of the user container)
     probe      app ready -> activator logs "probe passed" for the revision
     forward    probe passed -> first response byte at the client
3. ``--burst`` other Services at zero woken by one request each, all at once: p50/p99/max
   time to first byte (target p99 <= 3 s), and the CPU each component used meanwhile (read
   from /proc: the machine has few cores, so a burst is as fast as its CPU bill allows).

The machine's load average is printed first: on a shared two-core machine every figure moves
with other work. Side effects: processes and files of the private stack, removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from knserve.networking import INGRESS_TOKEN_HEADER
from localcluster.stack import kubectl_binary
from node.context import StateLayout

REPOSITORY = Path(__file__).resolve().parents[1]
HELLO = REPOSITORY / "examples" / "hello.yaml"
REVISION = "hello-00001"
AUTOSCALER_SETTINGS = {
    "stable-window": "6s",
    "scale-to-zero-grace-period": "2s",
    "allow-zero-initial-scale": "true",
    "initial-scale": "0",
}
TARGET_COLD_P50 = 1.0
TARGET_COLD_P99 = 2.0
TARGET_ACTIVATOR_ADDED_P50 = 0.001
TARGET_BURST_P99 = 3.0
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


# --- small helpers ------------------------------------------------------------------------------
def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def log_lines(path: Path) -> list[tuple[float, str]]:
    """(wall-clock time, line) for each line of a component log that starts with a timestamp."""
    found: list[tuple[float, str]] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        match = LOG_TIME.match(line)
        if match:
            when = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) + int(match.group(2)) / 1000
            found.append((when, line))
    return found


def component_log(stack: Any, component: str) -> list[tuple[float, str]]:
    """The timestamped lines of a knserve component's log: its pods' container logs when the
    stack runs it as a pod, else the log file of its host process."""
    container_logs = getattr(stack, "container_logs", None)
    if container_logs is not None:
        return sorted(line for path in container_logs(component) for line in log_lines(path))
    return log_lines(stack.cluster.state_dir / "logs" / f"knserve-{component}.log")


def first_after(lines: list[tuple[float, str]], needle: str, after: float, *, also: str = "") -> float | None:
    """The time of the first line containing ``needle`` (and ``also``) at or after ``after`` (logs round to ms)."""
    for when, line in lines:
        if when >= after - 0.002 and needle in line and also in line:
            return when
    return None


async def first_byte(port: int, host: str) -> tuple[float, float, int, bytes]:
    """(sent, first byte, status, body) of one GET / on a fresh connection to 127.0.0.1:port."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        sent = time.time()
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        head = await reader.read(1)
        arrived = time.time()
        rest = await reader.read()
    finally:
        writer.close()
    response = head + rest
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return sent, arrived, status, response.partition(b"\r\n\r\n")[2]


# --- CPU by component -------------------------------------------------------------------------
COMPONENTS = tuple((name, re.compile(pattern)) for name, pattern in (  # first match wins
    ("queue-proxy", r"queue-proxy"),
    ("user app", r"samples\."),
    ("node agent", r"(serving\.cli|knserve) node\b"),
    ("controller", r"(serving\.cli|knserve) controller\b"),
    ("activator", r"(serving\.cli|knserve) activator\b"),
    ("autoscaler", r"(serving\.cli|knserve) autoscaler\b"),
    ("kube-apiserver", r"kube-apiserver"),
    ("kube-controller-manager", r"kube-controller-manager"),
    ("etcd", r"\betcd\b"),
    ("envoy", r"\benvoy\b"),
    ("kubectl", r"kubectl"),
))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def component_of(command_line: str) -> str:
    for name, pattern in COMPONENTS:
        if pattern.search(command_line):
            return name
    words = command_line.split()
    return "other: " + " ".join(Path(word).name for word in words[:3])[:40] if words else "other"


def cpu_snapshot(marker: str) -> dict[int, tuple[str, float]]:
    """pid -> (component, CPU seconds of the process and of the children it reaped) for this
    run's processes only: descendants of this process, or command lines naming ``marker``
    (the private stack's directory). Other work on the machine is left out."""
    found: dict[int, tuple[str, int, str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rpartition(b")")[2].split()
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                command_line = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # After the ")": state ppid ...; utime stime cutime cstime at indexes 11-14.
        ticks = sum(int(value) for value in fields[11:15])
        found[int(entry.name)] = (component_of(command_line), int(fields[1]), command_line, ticks / CLOCK_TICKS)
    ours = {os.getpid()} | {pid for pid, (_, _, command_line, _) in found.items() if marker in command_line}
    grew = True
    while grew:
        children = {pid for pid, (_, parent, _, _) in found.items() if parent in ours} - ours
        ours |= children
        grew = bool(children)
    return {pid: (component, seconds) for pid, (component, _, _, seconds) in found.items() if pid in ours}


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per component between two snapshots (new processes count in full)."""
    used: dict[str, float] = {}
    for pid, (component, seconds) in after.items():
        earlier = before.get(pid)
        spent = seconds - earlier[1] if earlier is not None and earlier[0] == component else seconds
        used[component] = used.get(component, 0.0) + max(0.0, spent)
    return used


# --- API requests ------------------------------------------------------------------------------
API_REQUESTS = re.compile(r'^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$')
WATCH_EVENTS = re.compile(r'^apiserver_watch_events_total\{([^}]*)\} ([0-9.e+]+)$')
LABEL = re.compile(r'(\w+)="([^"]*)"')


def api_counts(stack: Any) -> dict[str, float]:
    """Requests the API server served, by verb and resource, and watch events sent, by resource."""
    counts: dict[str, float] = {}
    for line in stack.kubectl("get", "--raw", "/metrics").stdout.splitlines():
        for pattern, kind in ((API_REQUESTS, "request"), (WATCH_EVENTS, "watch event")):
            match = pattern.match(line)
            if not match:
                continue
            labels = dict(LABEL.findall(match.group(1)))
            if kind == "request":
                if labels.get("verb") in ("WATCH", "CONNECT"):
                    continue
                resource = labels.get("resource", "") + ("/" + labels["subresource"] if labels.get("subresource") else "")
                key = f"{labels.get('verb', '')} {resource}"
            else:
                key = f"watch events {labels.get('resource', '')}"
            counts[key] = counts.get(key, 0.0) + float(match.group(2))
    return counts


# --- the private stack ------------------------------------------------------------------------
@contextlib.contextmanager
def private_stack(progress: Any) -> Iterator[Any]:
    from localcluster import binaries
    from localcluster.controlplane import LocalCluster, Ports
    from localcluster.stack import LocalStack

    with tempfile.TemporaryDirectory(prefix="coldstart-bench-") as state:
        cluster = LocalCluster(Path(state), binaries.ensure_binaries(progress=progress), ports=Ports.free())
        stack = LocalStack(cluster)
        try:
            cluster.start(progress=progress)
            stack.start(progress=progress)
            yield stack
        finally:
            stack.stop(progress=lambda message: None)
            cluster.stop(progress=lambda message: None)


def kubectl(stack: Any, *args: str, input: str | None = None) -> str:
    result = stack.kubectl(*args, input=input)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stderr.strip()}")
    return str(result.stdout)


def apply_services(stack: Any, namespaces: list[str], *, warm: str) -> None:
    """examples/hello.yaml in each namespace; the one in ``warm`` keeps a pod (min-scale 1)."""
    hello = yaml.safe_load(HELLO.read_text())
    documents: list[dict[str, Any]] = []
    for namespace in namespaces:
        documents.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        service = json.loads(json.dumps(hello))
        service["metadata"]["namespace"] = namespace
        if namespace == warm:
            service["spec"]["template"].setdefault("metadata", {})["annotations"] = {
                "autoscaling.knative.dev/min-scale": "1"
            }
        documents.append(service)
    # Namespaces first: a Service is refused until its namespace exists.
    kubectl(stack, "apply", "-f", "-", input=yaml.safe_dump_all([d for d in documents if d["kind"] == "Namespace"]))
    kubectl(stack, "apply", "-f", "-", input=yaml.safe_dump_all([d for d in documents if d["kind"] != "Namespace"]))


def wait_all_ready(stack: Any, namespaces: list[str], timeout: float = 300) -> None:
    wanted = set(namespaces)
    deadline = time.monotonic() + timeout
    while True:
        items = json.loads(kubectl(stack, "get", "ksvc", "-A", "-o", "json"))["items"]
        ready = {
            item["metadata"]["namespace"] for item in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in item.get("status", {}).get("conditions", []))
        }
        if wanted <= ready:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Services not Ready after {timeout:.0f}s: {sorted(wanted - ready)}")
        time.sleep(1)


def pods_of(stack: Any, namespace: str) -> list[dict[str, Any]]:
    return list(json.loads(kubectl(stack, "get", "pods", "-n", namespace, "-o", "json"))["items"])


# --- measurements -----------------------------------------------------------------------------
INGRESS_TOKEN_SECRET = "knserve-ingress-token"  # made by the controller (serving/xds/tls.py)


def ingress_token(stack: Any) -> str:
    """The token Envoy adds to what it routes: the activator serves nothing without it."""
    encoded = kubectl(stack, "get", "secret", "-n", "knative-serving", INGRESS_TOKEN_SECRET,
                      "-o", "jsonpath={.data.token}")
    return base64.b64decode(encoded).decode()


async def activator_latency(stack: Any, namespace: str, requests: int) -> tuple[list[float], list[float]]:
    """Latencies straight to the warm pod's queue-proxy and through the activator, alternating rounds."""
    deadline = time.monotonic() + 120
    while True:
        ready = [p for p in pods_of(stack, namespace)
                 if p.get("status", {}).get("podIP") and any(
                     c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
        if ready:
            pod_ip = ready[0]["status"]["podIP"]
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the warm pod in {namespace} never became ready")
        await asyncio.sleep(0.5)
    host = f"hello.{namespace}.example.com"
    direct_url = f"http://{pod_ip}:8012/"
    activator_url = f"{stack.component_url('activator', 'http')}/"
    activator_headers = {"Host": host, "Knative-Serving-Revision": REVISION, "Knative-Serving-Namespace": namespace,
                         INGRESS_TOKEN_HEADER: ingress_token(stack)}
    direct: list[float] = []
    through: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        async def timed(url: str, headers: dict[str, str], into: list[float] | None) -> None:
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                if response.status != 200 or body != b"Hello World!\n":
                    raise RuntimeError(f"{url} answered {response.status} {body[:80]!r}")
            if into is not None:
                into.append(time.perf_counter() - started)

        for _ in range(200):  # warm both paths (connections, the activator's pod list)
            await timed(direct_url, {"Host": host}, None)
            await timed(activator_url, activator_headers, None)
        rounds = max(1, requests // 100)
        for _ in range(rounds):
            for _ in range(100):
                await timed(direct_url, {"Host": host}, direct)
            for _ in range(100):
                await timed(activator_url, activator_headers, through)
    return direct, through


@dataclass
class ColdStart:
    namespace: str
    sent: float
    arrived: float
    status: int
    body: bytes
    marks: dict[str, float | None] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.arrived - self.sent


PHASES = (
    ("poke", "sent", "poked"),
    ("decide", "poked", "scaled"),
    ("pod create", "scaled", "pod_seen"),
    ("bind", "pod_seen", "bound"),
    ("node start", "bound", "container"),
    ("app ready", "container", "app_ready"),
    ("probe", "app_ready", "probe_passed"),
    ("forward", "probe_passed", "arrived"),
)
# Not part of the sum: when the activator learnt of the new pod (its IP) and began probing it,
# counted from the start of the pod's first container.
SIDE_PHASES = (("(activator learns pod)", "container", "pod_known"), ("(learnt -> passed)", "pod_known", "probe_passed"))


class PodWatcher:
    """``kubectl get pods -A -w`` on a thread: when each pod was first seen, and first seen bound."""

    def __init__(self, stack: Any) -> None:
        env = {"KUBECONFIG": str(stack.cluster.kubeconfig), "PATH": str(Path(sys.executable).parent)}
        template = '{.metadata.namespace} {.metadata.name} {.spec.nodeName}{"\\n"}'
        self._process = subprocess.Popen(
            [kubectl_binary(), "get", "pods", "-A", "-w", "-o", f"jsonpath={template}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.seen: dict[tuple[str, str], float] = {}
        self.bound: dict[tuple[str, str], float] = {}
        self._thread = threading.Thread(target=self._read, name="pod watcher", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            now = time.time()
            words = line.split()
            if len(words) < 2:
                continue
            key = (words[0], words[1])
            self.seen.setdefault(key, now)
            if len(words) > 2 and words[2]:
                self.bound.setdefault(key, now)

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def read_marks(stack: Any, starts: list[ColdStart], pods: PodWatcher) -> None:
    """Fill each cold start's marks from the autoscaler, node, queue-proxy and activator logs
    and from when the pod watcher saw the pod appear and get bound."""
    logs = stack.cluster.state_dir / "logs"
    # The components run as pods: their logs are the node agent's container logs.
    autoscaler = [line for path in stack.container_logs("autoscaler") for line in log_lines(path)]
    node = log_lines(logs / "knserve-node.log")
    activator = [line for path in stack.container_logs("activator") for line in log_lines(path)]
    for start in starts:
        ns = start.namespace
        marks: dict[str, float | None] = {"sent": start.sent, "arrived": start.arrived}
        marks["poked"] = first_after(autoscaler, "poked: ", start.sent, also=f" {ns}/{REVISION},")
        marks["scaled"] = first_after(autoscaler, f"scaling {ns}/{REVISION}-deployment from 0 to", start.sent)
        marks["container"] = first_after(node, f"started {ns}/{REVISION}-deployment-", start.sent)
        marks["app_ready"] = marks["probe_passed"] = marks["pod_seen"] = marks["bound"] = marks["pod_known"] = None
        for pod in pods_of(stack, ns):
            key = (ns, pod["metadata"]["name"])
            marks["pod_seen"] = earliest(marks["pod_seen"], pods.seen.get(key))
            marks["bound"] = earliest(marks["bound"], pods.bound.get(key))
            queue_log = StateLayout(stack.cluster.node_state_dir).log_file(pod["metadata"]["uid"], "queue-proxy", 0)
            ready = first_after(log_lines(queue_log), "app ready", start.sent)
            marks["app_ready"] = earliest(marks["app_ready"], ready)
            # The activator's line names the revision (the same in every namespace) and the pod's address.
            address = pod.get("status", {}).get("podIP")
            if address:
                passed = first_after(activator, f"probe passed for {REVISION} on", start.sent, also=f"'{address}:")
                marks["probe_passed"] = earliest(marks["probe_passed"], passed)
                known = first_after(activator, f"new pods for {REVISION}: probing", start.sent, also=f"'{address}:")
                marks["pod_known"] = earliest(marks.get("pod_known"), known)
        start.marks = marks


def earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


async def cold_starts(stack: Any, namespaces: list[str], *, gap: float) -> list[ColdStart]:
    starts = []
    for namespace in namespaces:
        sent, arrived, status, body = await first_byte(stack.ports.ingress, f"hello.{namespace}.example.com")
        starts.append(ColdStart(namespace, sent, arrived, status, body))
        await asyncio.sleep(gap)
    return starts


@dataclass
class Bill:
    """What a burst cost: CPU seconds per component of this stack and of the whole machine,
    API requests by verb and resource, watch events by resource, over ``span`` seconds."""

    span: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    machine_cpu: float = 0.0
    api: dict[str, float] = field(default_factory=dict)


async def woken_at_once(stack: Any, namespaces: list[str]) -> tuple[list[ColdStart], Bill]:
    """The cold starts, and what they cost until the last answer."""
    marker = str(stack.cluster.state_dir)
    api_before = api_counts(stack)
    cpu_before, busy_before = cpu_snapshot(marker), machine_busy()
    started = time.time()
    answers = await asyncio.gather(
        *(first_byte(stack.ports.ingress, f"hello.{namespace}.example.com") for namespace in namespaces)
    )
    bill = Bill(span=time.time() - started)
    bill.cpu = cpu_used(cpu_before, cpu_snapshot(marker))
    bill.machine_cpu = machine_busy() - busy_before
    bill.api = {key: value - api_before.get(key, 0.0) for key, value in api_counts(stack).items()}
    return [ColdStart(namespace, *answer) for namespace, answer in zip(namespaces, answers)], bill


def check_answers(starts: list[ColdStart]) -> None:
    wrong = [(s.namespace, s.status, s.body[:60]) for s in starts if s.status != 200 or s.body != b"Hello World!\n"]
    if wrong:
        raise RuntimeError(f"{len(wrong)} cold requests were not answered 'Hello World!': {wrong[:5]}")


def wait_scaled_to_zero(stack: Any, namespaces: list[str], timeout: float) -> bool:
    """Until the cold namespaces have no pod left (so the burst starts on a quiet node)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = json.loads(kubectl(stack, "get", "pods", "-A", "-o", "json"))["items"]
        if not any(item["metadata"]["namespace"] in namespaces for item in items):
            return True
        time.sleep(2)
    return False


# --- report -----------------------------------------------------------------------------------
def verdict(value: float, target: float) -> str:
    return f"{value / target:.2f} x target ({'met' if value <= target else 'NOT met'})"


def report(direct: list[float], through: list[float], warm: list[float], starts: list[ColdStart],
           burst: list[ColdStart], bill: Bill) -> None:
    d50, a50 = statistics.median(direct), statistics.median(through)
    print(f"\nactivator added latency ({len(direct)} requests each way, one connection, alternating rounds of 100)")
    print(f"  straight to the queue-proxy: p50 {d50 * 1000:.3f} ms  p99 {percentile(direct, 0.99) * 1000:.3f} ms")
    print(f"  through the activator:       p50 {a50 * 1000:.3f} ms  p99 {percentile(through, 0.99) * 1000:.3f} ms")
    print(f"  added p50: {(a50 - d50) * 1000:.3f} ms = {verdict(a50 - d50, TARGET_ACTIVATOR_ADDED_P50)} (<= 1 ms)")

    totals = [s.total for s in starts]
    w50 = statistics.median(warm)
    c50, c99 = statistics.median(totals), percentile(totals, 0.99)
    print(f"\ncold start through the ingress, request at zero -> first byte ({len(starts)} one after another)")
    print(f"  warm request through the ingress (baseline): p50 {ms(w50)}")
    print(f"  cold: p50 {ms(c50)} = {verdict(c50, TARGET_COLD_P50)} (<= 1.0 s);  p99 {ms(c99)} = "
          f"{verdict(c99, TARGET_COLD_P99)} (<= 2.0 s);  min {ms(min(totals))}  max {ms(max(totals))}")
    print(f"  cold p50 is x{c50 / w50:.0f} the warm p50")
    print_split(starts)

    if burst:
        times = [s.total for s in burst]
        b99 = percentile(times, 0.99)
        print(f"\n{len(burst)} Services at zero woken at once (one request each) -> first byte")
        print(f"  p50 {ms(statistics.median(times))}  p99 {ms(b99)} = {verdict(b99, TARGET_BURST_P99)} (<= 3 s)"
              f"  max {ms(max(times))}")
        print_split(burst)
        print_bill(bill)


def print_bill(bill: Bill) -> None:
    cores = os.cpu_count() or 1
    print(f"  CPU used until the last answer ({bill.span:.2f} s on {cores} cores = {bill.span * cores:.2f} CPU-s): "
          f"this stack {sum(bill.cpu.values()):.2f} CPU-s, the whole machine {bill.machine_cpu:.2f}")
    for component, seconds in sorted(bill.cpu.items(), key=lambda item: -item[1]):
        if seconds >= 0.01:
            print(f"    {component:<26} {seconds:6.2f} s")
    requests = {key: value for key, value in bill.api.items() if not key.startswith("watch events") and value > 0}
    events = {key[len("watch events "):]: value for key, value in bill.api.items()
              if key.startswith("watch events") and value > 0}
    print(f"  API requests meanwhile: {sum(requests.values()):.0f}; watch events sent: {sum(events.values()):.0f}")
    for key, value in sorted(requests.items(), key=lambda item: -item[1])[:16]:
        print(f"    {key:<40} {value:5.0f}")
    print("    watch events: " + ", ".join(
        f"{key} {value:.0f}" for key, value in sorted(events.items(), key=lambda item: -item[1])[:8]))


def print_split(starts: list[ColdStart]) -> None:
    print("  where the time goes (p50 over the cold starts whose log lines were found):")
    for name, begin, end in (*PHASES, *SIDE_PHASES):
        spans = [s.marks[end] - s.marks[begin] for s in starts  # type: ignore[operator]
                 if s.marks.get(begin) is not None and s.marks.get(end) is not None]
        if spans:
            print(f"    {name:<10} p50 {ms(statistics.median(spans)):>8}  max {ms(max(spans)):>8}  (n={len(spans)})")
        else:
            print(f"    {name:<10} not observed")
    print("  each cold start (ms): total | " + " | ".join(name for name, _, _ in PHASES))
    for s in sorted(starts, key=lambda start: start.total):
        cells = []
        for _, begin, end in PHASES:
            b, e = s.marks.get(begin), s.marks.get(end)
            cells.append("-" if b is None or e is None else f"{(e - b) * 1000:.0f}")
        print(f"    {s.namespace:<10} {s.total * 1000:6.0f} | " + " | ".join(cells))


async def measure(stack: Any, args: argparse.Namespace) -> None:
    kubectl(stack, "patch", "configmap", "config-autoscaler", "-n", "knative-serving", "--type", "merge",
            "-p", json.dumps({"data": AUTOSCALER_SETTINGS}))
    warm_ns = "warm"
    cold = [f"cold-{i}" for i in range(1, args.cold_starts + 1)]
    woken = [f"wake-{i}" for i in range(1, args.burst + 1)]
    apply_services(stack, [warm_ns, *cold, *woken], warm=warm_ns)
    wait_all_ready(stack, [warm_ns, *cold, *woken])
    print(f"{1 + len(cold) + len(woken)} Services Ready", flush=True)

    direct, through = await activator_latency(stack, warm_ns, args.requests)
    warm = []
    for _ in range(50):
        sent, arrived, status, _body = await first_byte(stack.ports.ingress, f"hello.{warm_ns}.example.com")
        warm.append(arrived - sent)

    pods = PodWatcher(stack)
    try:
        starts = await cold_starts(stack, cold, gap=args.gap)
        check_answers(starts)
        await asyncio.sleep(1)  # let the last log lines reach the files
        read_marks(stack, starts, pods)

        burst: list[ColdStart] = []
        bill = Bill()
        if woken:
            if not wait_scaled_to_zero(stack, cold, timeout=90):
                print("(the cold-start pods were still terminating when the burst began)")
            print(f"load average before the burst: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
            burst, bill = await woken_at_once(stack, woken)
            check_answers(burst)
            await asyncio.sleep(1)
            read_marks(stack, burst, pods)
    finally:
        pods.close()
    report(direct, through, warm, starts, burst, bill)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so the private stack is stopped on SIGTERM too


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-starts", type=int, default=15, help="sequential cold starts (default: %(default)s)")
    parser.add_argument("--burst", type=int, default=20, help="Services woken at once (default: %(default)s; 0 skips)")
    parser.add_argument("--requests", type=int, default=2000, help="requests each way for the activator's latency")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between sequential cold starts")
    args = parser.parse_args(argv)
    print(f"load average before the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    with private_stack(progress=lambda message: print(f"  {message}", flush=True)) as stack:
        asyncio.run(measure(stack, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
