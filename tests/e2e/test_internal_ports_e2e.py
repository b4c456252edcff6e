"""An ordinary pod in another namespace, without credentials, tries knserve's internal ports:
it cannot drain a revision's pod, feed the autoscaler made-up stats, reach a revision through
the activator with made-up headers, or read the ingress configuration from the xDS port."""

from __future__ import annotations

import json
import time

ATTACKER = r"""
import json, socket, ssl, sys, time, urllib.error, urllib.request

def http(label, url, *, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    for attempt in range(20):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                print("result", label, response.status, flush=True)
                return
        except urllib.error.HTTPError as error:
            print("result", label, error.code, flush=True)
            return
        except Exception as error:
            print("retry", label, repr(error), flush=True)
            time.sleep(0.5)
    print("result", label, "unreachable", flush=True)

def xds(label, host, port, *, tls):
    for attempt in range(20):
        try:
            raw = socket.create_connection((host, port), timeout=10)
            break
        except OSError as error:
            print("retry", label, repr(error), flush=True)
            time.sleep(0.5)
    else:
        print("result", label, "unreachable", flush=True)
        return
    try:
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            conn = context.wrap_socket(raw, server_hostname="knserve-xds.knative-serving.svc")
        else:
            conn = raw
        # An HTTP/2 client preface and an empty SETTINGS frame: a gRPC server answers SETTINGS.
        conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        answer = conn.recv(9)
        served = len(answer) == 9 and answer[3] == 4
        print("result", label, "served" if served else "refused", flush=True)
    except (OSError, ssl.SSLError) as error:
        print("result", label, "refused", repr(error)[:80], flush=True)

pod_ip, namespace, revision = sys.argv[1:4]
http("drain", f"http://{pod_ip}:8022/wait-for-drain")
batch = {"stats": [{"namespace": namespace, "revision": revision,
                    "stat": {"podName": "activator-fake", "averageConcurrentRequests": 500, "requestCount": 500}}]}
http("stats", "http://autoscaler.knative-serving.svc.cluster.local:8080/stats",
     data=json.dumps(batch).encode(), headers={"Content-Type": "application/json"})
http("activator", "http://activator-service.knative-serving.svc.cluster.local/",
     headers={"Knative-Serving-Revision": revision, "Knative-Serving-Namespace": namespace,
              "Host": f"hello.{namespace}.example.com"})
xds("xds-plaintext", "knserve-xds.knative-serving.svc.cluster.local", 18000, tls=False)
xds("xds-tls-without-certificate", "knserve-xds.knative-serving.svc.cluster.local", 18000, tls=True)
print("done", flush=True)
time.sleep(3600)
"""

SERVICE = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "1"
        autoscaling.knative.dev/max-scale: "3"
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          env:
            - name: TARGET
              value: World
"""


def test_an_ordinary_pod_cannot_use_knserves_internal_ports(stack, namespace):
    stack.apply(SERVICE, namespace)
    stack.wait_ready("ksvc", "hello", namespace)
    host = f"hello.{namespace}.example.com"
    assert stack.wait_answer(host).strip() == "Hello World!"
    pods = json.loads(stack.kubectl("get", "pods", "-n", namespace, "-l", "serving.knative.dev/revision=hello-00001",
                                    "-o", "json").stdout)["items"]
    pod_ip = pods[0]["status"]["podIP"]

    other = f"{namespace}-x"
    stack.kubectl("create", "namespace", other)
    try:
        deadline = time.monotonic() + 30
        while stack.kubectl("get", "serviceaccount", "default", "-n", other, check=False).returncode != 0:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        attacker = {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "attacker", "namespace": other},
            "spec": {"containers": [{"name": "attacker", "image": "knserve.dev/tests/caller",
                                     "command": ["python3", "-c", ATTACKER, pod_ip, namespace, "hello-00001"]}]},
        }
        stack.kubectl("apply", "-f", "-", input=json.dumps(attacker))
        deadline = time.monotonic() + 120
        logs = ""
        while time.monotonic() < deadline:
            logs = stack.kubectl("logs", "attacker", "-n", other, check=False).stdout
            if "done" in logs.splitlines():
                break
            time.sleep(0.5)
        results = {line.split()[1]: line.split()[2] for line in logs.splitlines() if line.startswith("result ")}
        assert results == {
            "drain": "403", "stats": "401", "activator": "403",
            "xds-plaintext": "refused", "xds-tls-without-certificate": "refused",
        }, logs

        # Nothing happened to the Service: still one pod, serving.
        time.sleep(3)
        status, body = stack.request(host)
        assert (status, body.strip()) == (200, "Hello World!")
        deployment = stack.get("deployment", "hello-00001-deployment", namespace)
        assert deployment["spec"]["replicas"] == 1, "made-up stats scaled nothing"
    finally:
        stack.kubectl("delete", "namespace", other, "--wait=false", check=False)
