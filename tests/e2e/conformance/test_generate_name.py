"""Services named by the API server (Knative's TestServiceGenerateName): ``kubectl create``
with ``metadata.generateName`` gives a Service a name that its children and URL follow.
"""

from __future__ import annotations

import json
import re

from tests.e2e.conformance.helpers import host, served_by, service


def test_generate_name_service_gets_a_name_and_serves(stack, namespace):
    manifest = service("unused")
    manifest["metadata"] = {"generateName": "gen-"}
    created = stack.kubectl("create", "-n", namespace, "-f", "-", "-o", "json", input=json.dumps(manifest))
    name = json.loads(created.stdout)["metadata"]["name"]
    assert re.fullmatch(r"gen-[a-z0-9]+", name), name

    ready = stack.wait_ready("ksvc", name, namespace)
    assert ready["status"]["url"] == f"http://{name}.{namespace}.example.com"
    assert ready["status"]["latestReadyRevisionName"] == f"{name}-00001"
    assert stack.get("kcfg", name, namespace)["metadata"]["ownerReferences"][0]["name"] == name
    assert stack.get("rt", name, namespace)["metadata"]["ownerReferences"][0]["name"] == name

    answer = json.loads(stack.wait_answer(host(name, namespace)))
    assert answer["env"]["K_SERVICE"] == name
    assert served_by(json.dumps(answer)) == f"{name}-00001"
