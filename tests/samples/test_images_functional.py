"""The image map on a real local node: a Pod that names a sample image and no command runs
the sample, the way a Knative user's Pod would."""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.samples.conftest import REPO_ROOT
from tests.support.eventually import eventually

IMAGE_MAP_FILE = REPO_ROOT / "config" / "local" / "knserve-images.yaml"
# The node runs `python3` from PATH; here that must be this interpreter, which imports samples.
INTERPRETER_ENV = [
    {"name": "PATH", "value": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
    {"name": "PYTHONPATH", "value": str(REPO_ROOT)},
]


def apply_image_map(cluster) -> None:  # type: ignore[no-untyped-def]
    if cluster.kubectl("get", "namespace", "knative-serving", check=False).returncode != 0:
        cluster.kubectl("create", "namespace", "knative-serving", check=False)
    cluster.kubectl("apply", "-f", str(IMAGE_MAP_FILE))


def test_a_pod_with_the_helloworld_image_runs_the_sample(cluster, namespace) -> None:  # type: ignore[no-untyped-def]
    apply_image_map(cluster)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hello", "namespace": namespace},
        "spec": {
            "containers": [{
                "name": "user-container",
                "image": "ghcr.io/knative/helloworld-go:latest",
                "env": [{"name": "PORT", "value": "8080"}, {"name": "TARGET", "value": "Local"}, *INTERPRETER_ENV],
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
            }],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))

    seen: list[Any] = []

    def ready() -> dict[str, Any] | None:
        found = json.loads(cluster.kubectl("get", "pod", "hello", "-n", namespace, "-o", "json").stdout)
        seen[:] = [found.get("status", {}).get("containerStatuses")]
        conditions = found.get("status", {}).get("conditions", [])
        return found if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None

    try:
        running = eventually(ready, what="the hello pod to be ready")
    except AssertionError:
        raise AssertionError(f"the hello pod never became ready; its containers: {seen}") from None
    log = eventually(
        lambda: re.search(r"listening on port (\d+)", cluster.kubectl("logs", "hello", "-n", namespace).stdout),
        what="the sample's listening line",
    )
    url = f"http://{running['status']['podIP']}:{log.group(1)}/"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"Hello Local!\n"
