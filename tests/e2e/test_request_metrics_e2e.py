"""Per-revision request metrics on the whole stack: a known mix of answers through the ingress,
then the queue-proxy's Knative-named Prometheus metrics and the autoscaler's request API count
exactly those, by status class, with the slow answers' bucket as p99."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request

from knserve.networking import REVISION_LABEL, USER_METRICS_PORT
from knserve.request_metrics import RequestSummary, decode_namespace_answer, namespace_path, summary_path
from tests.support.prometheus import sample_value, samples

FUNCTION_IMAGE = "knserve.dev/samples/function"
# Answers 500 when asked to fail, and takes sleep_ms first: the test chooses every answer.
FUNCTION_CODE = """
import time

def handle(fail: bool = False, sleep_ms: int = 0):
    time.sleep(sleep_ms / 1000.0)
    if fail:
        raise RuntimeError("failing on purpose")
    return {"ok": True}
"""
FAST, FAILING, SLOW = 30, 6, 4
SLOW_MS = 1100  # total time in Knative's (1000, 2000] ms bucket, whatever the machine's load
AUTOSCALER_METRICS_PORT = 9090
KNATIVE_LABELS = {"namespace_name", "service_name", "configuration_name", "revision_name", "pod_name",
                  "container_name", "response_code", "response_code_class"}


def function_service(name: str) -> dict:
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}},
            "spec": {"containers": [{
                "image": FUNCTION_IMAGE,
                "env": [{"name": "FUNCTION_TARGET", "value": "handle"},
                        {"name": "FUNCTION_CODE", "value": FUNCTION_CODE}],
            }]},
        }},
    }


def pod_ip(stack, namespace: str, selector: str) -> tuple[str, str]:
    pods = json.loads(stack.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)["items"]
    running = [pod for pod in pods if pod["status"].get("podIP") and not pod["metadata"].get("deletionTimestamp")]
    assert len(running) == 1, [pod["metadata"]["name"] for pod in pods]
    return running[0]["metadata"]["name"], running[0]["status"]["podIP"]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_request_metrics_count_every_answer_by_class_and_latency(stack, namespace):
    name, revision = "metrics", "metrics-00001"
    host = f"{name}.{namespace}.example.com"
    stack.apply(function_service(name), namespace)
    stack.wait_ready("ksvc", name, namespace, timeout=120)
    stack.wait_answer(host, path="/?sleep_ms=0")
    pod_name, ip = pod_ip(stack, namespace, f"{REVISION_LABEL}={revision}")
    metrics_url = f"http://{ip}:{USER_METRICS_PORT}/metrics"
    _, before = http_get(metrics_url)

    started = math.floor(time.time()) + 1  # every answer before this second is the warm-up's
    time.sleep(started - time.time())
    for index in range(FAST + FAILING + SLOW):
        if index < FAST:
            want, path = 200, "/?sleep_ms=0"
        elif index < FAST + FAILING:
            want, path = 500, "/?fail=true"
        else:
            want, path = 200, f"/?sleep_ms={SLOW_MS}"
        assert stack.request(host, path)[0] == want
    finished = time.time()

    # (a) the queue-proxy's Prometheus endpoint, under Knative's names and labels
    _, after = http_get(metrics_url)
    for family in ("revision_request_count", "revision_app_request_count"):
        for code, count in ((200, FAST + SLOW), (500, FAILING)):
            was = sample_value(before, family, response_code=str(code)) or 0.0
            assert sample_value(after, family, response_code=str(code)) == was + count, (family, code)
        [labels] = [found for found, _ in samples(after, family) if found["response_code"] == "500"]
        assert labels == {
            "namespace_name": namespace, "service_name": name, "configuration_name": name,
            "revision_name": revision, "pod_name": pod_name, "container_name": "queue-proxy",
            "response_code": "500", "response_code_class": "5xx",
        }
    assert set(samples(after, "revision_request_latencies_bucket")[0][0]) == KNATIVE_LABELS | {"le"}
    # the slow answers took over a second: none of them is in the bucket up to 1000 ms
    le_1000 = {"response_code": "200", "le": "1000"}
    slow_free = (sample_value(after, "revision_request_latencies_bucket", **le_1000) or 0.0) - (
        sample_value(before, "revision_request_latencies_bucket", **le_1000) or 0.0)
    assert slow_free <= FAST

    # (b) the autoscaler's request API, from the queue-proxy's per-second stats
    _, autoscaler_ip = pod_ip(stack, "knative-serving", "app.kubernetes.io/component=autoscaler")
    base = f"http://{autoscaler_ip}:{AUTOSCALER_METRICS_PORT}"
    path = summary_path(namespace, revision, since=started, until=math.ceil(finished) + 1)
    deadline = time.monotonic() + 20
    while True:  # scraped once a second: the last answers' second arrives a second or two later
        status, body = http_get(base + path)
        assert status == 200, body
        summary = RequestSummary.from_json(json.loads(body))
        if summary.requests >= FAST + FAILING + SLOW or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert summary.responses == {"2xx": FAST + SLOW, "3xx": 0, "4xx": 0, "5xx": FAILING}
    assert summary.requests == FAST + FAILING + SLOW
    assert summary.error_rate == FAILING / (FAST + FAILING + SLOW)
    assert summary.p99_ms is not None and 1000.0 < summary.p99_ms <= 2000.0
    assert summary.p50_ms is not None and summary.p50_ms <= summary.p99_ms

    status, body = http_get(base + namespace_path(namespace, window=120, series=True))
    assert status == 200, body
    [entry] = decode_namespace_answer(json.loads(body))
    assert entry.summary.revision == revision
    assert entry.summary.responses["5xx"] == FAILING
    assert entry.desired_pods >= 1 and entry.ready_pods == 1
    assert entry.series is not None and sum(sample.errors for sample in entry.series) == FAILING

    status, body = http_get(base + summary_path(namespace, "metrics-00099", since=started, until=finished))
    assert status == 404 and f"{namespace}/metrics-00099" in body
