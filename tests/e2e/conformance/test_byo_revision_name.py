"""Revisions named by the user (Knative's TestServiceBYOName): ``spec.template.metadata.name``
names the Revision; a new template needs a new name, and kubectl is told so.
"""

from __future__ import annotations

import json

from tests.e2e.conformance.helpers import host, served_by, service, wait_new_ready_revision, wait_served_by

NAME_UNCHANGED = "Saw the following changes without a name change (-old +new)"


def test_byo_revision_names(stack, namespace):
    name = "byo"
    stack.apply(service(name, env={"VERSION": "1"}, template_name=f"{name}-v1"), namespace)
    ready = stack.wait_ready("ksvc", name, namespace)
    assert ready["status"]["latestCreatedRevisionName"] == f"{name}-v1"
    assert ready["status"]["latestReadyRevisionName"] == f"{name}-v1"
    assert served_by(stack.wait_answer(host(name, namespace))) == f"{name}-v1"
    revision = stack.get("rev", f"{name}-v1", namespace)
    assert revision["metadata"]["labels"]["serving.knative.dev/service"] == name
    assert revision["metadata"]["labels"]["serving.knative.dev/configuration"] == name

    stack.apply(service(name, env={"VERSION": "2"}, template_name=f"{name}-v2"), namespace)
    assert wait_new_ready_revision(stack, name, namespace, after=f"{name}-v1") == f"{name}-v2"
    wait_served_by(stack, host(name, namespace), f"{name}-v2")

    # the template changes but keeps its name: refused before anything is stored
    refused = stack.kubectl(
        "apply", "-n", namespace, "-f", "-", check=False,
        input=json.dumps(service(name, env={"VERSION": "3"}, template_name=f"{name}-v2")),
    )
    assert refused.returncode != 0
    assert NAME_UNCHANGED in refused.stderr, refused.stderr
    assert "spec.template.metadata.name" in refused.stderr, refused.stderr
    current = stack.get("ksvc", name, namespace)
    assert current["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "VERSION", "value": "2"}]
    assert stack.get("kcfg", name, namespace)["status"]["latestCreatedRevisionName"] == f"{name}-v2"


def test_byo_name_must_start_with_the_service_name(stack, namespace):
    refused = stack.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                            input=json.dumps(service("byo", template_name="other-v1")))
    assert refused.returncode != 0
    assert 'invalid value: "other-v1" must have prefix "byo-": spec.template.metadata.name' in refused.stderr, \
        refused.stderr
