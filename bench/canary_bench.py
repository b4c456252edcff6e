"""Canary rollback: how long a bad Revision takes traffic, and how much of it.

Run on demand (never in the test suite)::

    .venv/bin/python -m bench.canary_bench [--rounds 3] [--interval 5s] [--rate 50]

On a private local stack, each round (its own namespace) deploys ``samples.faulty`` as v1
with a canary policy (steps ``5,25,50``, the interval given, ``min-requests`` 10), puts a
steady load on it through Envoy with a Host header, then applies a v2 that fails 20% of its
requests. Every answer is recorded with its time. Printed per round and as medians:

- **time to rollback**: from the first failing answer to the last answer v2 gave (after it,
  Envoy sends everything to v1 again);
- the **baseline** it is measured against in the same run: the analysis interval, the
  soonest the candidate can be judged after it took its first request; the ratio says how
  much the reporting chain (queue-proxy stats, the autoscaler's windows, the controller's
  look, the Route, xDS) adds to it;
- **share of all requests that reached v2** between its first answer and the rollback, and
  the share of all requests that failed in that span (5% x 20% = 1% is the floor at step 1).

Side effects: processes, a temporary directory, a private stack (removed).
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import statistics
import threading
import time
from typing import Any

from bench.coldstart_bench import kubectl, private_stack

V1, V2 = b"Hello v1!\n", b"Hello v2!\n"


def service(target: str, namespace: str, *, interval: str, error_percent: int) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "hello", "namespace": namespace, "annotations": {
            "knserve.dev/canary-steps": "5,25,50", "knserve.dev/canary-interval": interval,
            "knserve.dev/canary-min-requests": "10", "knserve.dev/canary-max-latency-p99": "2s"}},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}},
            "spec": {"containers": [{"image": "knserve.dev/samples/faulty", "env": [
                {"name": "TARGET", "value": target}, {"name": "ERROR_PERCENT", "value": str(error_percent)}]}]}}},
    }


@dataclasses.dataclass
class Answer:
    at: float
    status: int
    body: bytes


class Load:
    """``rate`` requests a second from ``clients`` paced keep-alive connections until stopped."""

    def __init__(self, port: int, host: str, *, rate: float, clients: int = 4) -> None:
        self.port, self.host, self.interval, self.clients = port, host, clients / rate, clients
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _worker(self, index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        next_at = time.monotonic() + index * self.interval / self.clients
        while not self.stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            next_at = max(next_at + self.interval, time.monotonic() - self.interval)
            try:
                connection.request("GET", "/", headers={"Host": self.host})
                response = connection.getresponse()
                answer = Answer(time.monotonic(), response.status, response.read())
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                answer = Answer(time.monotonic(), 0, b"")
            with self.lock:
                self.answers.append(answer)


def wait_canary(stack: Any, namespace: str, revision: str, phases: set[str], timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(kubectl(stack, "get", "ksvc", "hello", "-n", namespace, "-o", "json")).get("status", {})
        canary = status.get("canary") or {}
        if canary.get("revisionName") == revision and canary.get("phase") in phases:
            return dict(canary)
        time.sleep(0.2)
    raise RuntimeError(f"the canary of {revision} in {namespace} never reached {phases}")


def one_round(stack: Any, index: int, *, interval: str, rate: float) -> dict[str, float]:
    namespace = f"canary-bench-{index}"
    kubectl(stack, "create", "namespace", namespace)
    kubectl(stack, "apply", "-f", "-", input=json.dumps(service("v1", namespace, interval=interval, error_percent=0)))
    wait_canary(stack, namespace, "hello-00001", {"Promoted"})
    host = f"hello.{namespace}.example.com"
    with Load(stack.ports.ingress, host, rate=rate) as load:
        time.sleep(2)
        kubectl(stack, "apply", "-f", "-",
                input=json.dumps(service("v2", namespace, interval=interval, error_percent=20)))
        state = wait_canary(stack, namespace, "hello-00002", {"RolledBack", "Promoted"})
        time.sleep(3)  # answers after the rollback show it served
    if state["phase"] != "RolledBack":
        raise RuntimeError(f"round {index}: the bad revision was not rolled back: {state}")
    answers = sorted(load.answers, key=lambda a: a.at)
    from_v2 = [a for a in answers if a.body == V2 or a.status == 500]
    failing = [a for a in answers if a.status == 500]
    first_v2, last_v2, first_fail = from_v2[0].at, from_v2[-1].at, failing[0].at
    span = [a for a in answers if first_v2 <= a.at <= last_v2]
    return {
        "rollback": last_v2 - first_fail,
        "reached": 100.0 * len([a for a in span if a.body == V2 or a.status == 500]) / len(span),
        "failed": 100.0 * len([a for a in span if a.status != 200]) / len(span),
        "requests": float(len(span)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", default="5s", help="knserve.dev/canary-interval (a Go duration in s)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second through Envoy")
    args = parser.parse_args(argv)
    interval = float(args.interval.rstrip("s"))
    print(f"load average before the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    rounds: list[dict[str, float]] = []
    with private_stack(progress=lambda message: None) as stack:
        for index in range(args.rounds):
            result = one_round(stack, index, interval=args.interval, rate=args.rate)
            rounds.append(result)
            print(f"round {index}: rollback {result['rollback']:.2f} s after the first failure "
                  f"({result['rollback'] / interval:.2f} x the {interval:g} s interval); "
                  f"{result['reached']:.2f}% of {result['requests']:.0f} requests reached v2, "
                  f"{result['failed']:.2f}% failed", flush=True)
    rollback = statistics.median(r["rollback"] for r in rounds)
    print(f"median time to rollback: {rollback:.2f} s = {rollback / interval:.2f} x the baseline "
          f"(the {interval:g} s interval)")
    print(f"median share of requests that reached v2 before the rollback: "
          f"{statistics.median(r['reached'] for r in rounds):.2f}%; failed: "
          f"{statistics.median(r['failed'] for r in rounds):.2f}% (floor at the 5% step: 1%)")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
