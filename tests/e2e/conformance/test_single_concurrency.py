"""``containerConcurrency: 1`` (Knative's TestSingleConcurrency): requests never overlap at
the app, however many clients send at once.

The app is a small function that counts the requests inside it; it answers 500 when it sees
another one in flight, as Knative's single-threaded test image does. It also reports when
each request started and ended inside it and which pod it ran in, so overlaps within one
pod are checked from the pod's own clock too (the autoscaler may add pods: each still takes
one request at a time).
"""

from __future__ import annotations

import collections
import json
import threading
import time

from tests.e2e.conformance.helpers import FUNCTION_IMAGE, host, service

DETECTOR = '''
import os, socket, threading, time

_lock = threading.Lock()
_in_flight = 0

def handle(sleep_ms: int = 50):
    global _in_flight
    with _lock:
        _in_flight += 1
        overlapped = _in_flight > 1
    started = time.time()
    time.sleep(sleep_ms / 1000)
    ended = time.time()
    with _lock:
        overlapped = overlapped or _in_flight > 1
        _in_flight -= 1
    if overlapped:
        raise RuntimeError("detected concurrent requests")
    return {"pod": f"{socket.gethostname()}/{os.getpid()}", "started": started, "ended": ended}
'''

CLIENTS = 5
DURATION_SECONDS = 6


def test_single_concurrency_never_overlaps(stack, namespace):
    name = "single"
    stack.apply(service(name, image=FUNCTION_IMAGE, container_concurrency=1,
                        env={"FUNCTION_TARGET": "handle", "FUNCTION_CODE": DETECTOR}), namespace)
    stack.wait_ready("ksvc", name, namespace)
    target = host(name, namespace)
    stack.wait_answer(target)

    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def client() -> None:
        deadline = time.monotonic() + DURATION_SECONDS
        while time.monotonic() < deadline:
            try:
                answer = stack.request(target, "/?sleep_ms=50", timeout=60)
            except OSError as error:
                answer = (0, str(error))
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    failures = [answer for answer in answers if answer[0] != 200]
    assert not failures, failures[:5]
    assert len(answers) > CLIENTS
    spans_by_pod: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for _, body in answers:
        span = json.loads(body)
        spans_by_pod[span["pod"]].append((float(span["started"]), float(span["ended"])))
    for pod, spans in spans_by_pod.items():
        spans.sort()
        overlapping = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
        assert not overlapping, (pod, overlapping[:5])
