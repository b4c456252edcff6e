"""Error signalling (Knative's TestContainerExitingMsg and TestContainerErrorMsg): a container
that exits and an image that cannot be had show up as Ready=False with a reason and a message
on the Revision, the Configuration and the Service; a good earlier revision keeps serving.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conformance.helpers import (
    condition,
    host,
    is_ready,
    served_by,
    service,
    set_env,
    wait_for,
    wait_new_ready_revision,
    wait_served_by,
)

MISSING_IMAGE = "knserve.dev/samples/no-such-image"


def failed(resource: dict[str, Any]) -> bool:
    ready = condition(resource)
    return (ready.get("status") == "False"
            and resource.get("status", {}).get("observedGeneration") == resource["metadata"]["generation"])


def wait_failed(stack, kind: str, name: str, namespace: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return wait_for(stack, kind, name, namespace, failed, what="Ready=False")


def latest_created(stack, name: str, namespace: str) -> str:  # type: ignore[no-untyped-def]
    found = wait_for(stack, "kcfg", name, namespace,
                     lambda config: bool(config.get("status", {}).get("latestCreatedRevisionName")),
                     what="a created revision")
    return str(found["status"]["latestCreatedRevisionName"])


def assert_reason(resource: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    ready = condition(resource)
    assert ready.get("status") == "False", ready
    assert ready.get("reason") and ready.get("message"), ready
    if reason is not None:
        assert ready["reason"] == reason, ready
    return ready


def test_crashing_container_fails_with_its_exit_code(stack, namespace):
    name = "crash"
    stack.apply(service(name, env={"CRASH": "1"}), namespace)
    revision = latest_created(stack, name, namespace)

    ready = assert_reason(wait_failed(stack, "rev", revision, namespace), "ExitCode1")
    assert ready["message"].startswith("Container failed with:"), ready
    assert condition(stack.get("rev", revision, namespace), "ContainerHealthy")["reason"] == "ExitCode1"
    config = assert_reason(wait_failed(stack, "kcfg", name, namespace), "RevisionFailed")
    assert config["message"].startswith(f'Revision "{revision}" failed with message: '), config
    # the Route has nothing ready either; the Service's Ready carries one of the two reasons
    assert assert_reason(wait_failed(stack, "ksvc", name, namespace))["reason"] in ("RevisionFailed", "RevisionMissing")


def test_missing_image_fails_with_a_reason(stack, namespace):
    name = "missing"
    stack.apply(service(name, image=MISSING_IMAGE), namespace)
    revision = latest_created(stack, name, namespace)

    ready = assert_reason(wait_failed(stack, "rev", revision, namespace), "ContainerMissing")
    assert MISSING_IMAGE in ready["message"], ready
    assert_reason(wait_failed(stack, "kcfg", name, namespace), "RevisionFailed")
    route = assert_reason(wait_failed(stack, "rt", name, namespace), "RevisionMissing")  # nothing ready
    assert route["message"] == f'Configuration "{name}" does not have any ready Revision.', route
    assert_reason(wait_failed(stack, "ksvc", name, namespace))


def test_good_revision_keeps_its_traffic_when_newer_ones_fail(stack, namespace):
    name = "keeps"
    target = host(name, namespace)
    stack.apply(service(name), namespace)
    good = stack.wait_ready("ksvc", name, namespace)["status"]["latestReadyRevisionName"]
    wait_served_by(stack, target, good)

    # a crashing revision, then one with an image nobody has
    for change, reason in (({"CRASH": "1"}, "ExitCode1"), ({"IMAGE": "missing"}, "ContainerMissing")):
        before = stack.get("kcfg", name, namespace)["status"]["latestCreatedRevisionName"]
        if reason == "ContainerMissing":
            stack.kubectl("patch", "ksvc", name, "-n", namespace, "--type", "json", "-p",
                          f'[{{"op": "replace", "path": "/spec/template/spec/containers/0/image",'
                          f' "value": "{MISSING_IMAGE}"}}]')
        else:
            set_env(stack, name, namespace, change)
        bad = wait_for(stack, "kcfg", name, namespace,
                       lambda config: config["status"].get("latestCreatedRevisionName") not in (None, before),
                       what="a new revision")["status"]["latestCreatedRevisionName"]
        assert_reason(wait_failed(stack, "rev", bad, namespace), reason)

        svc = wait_failed(stack, "ksvc", name, namespace)
        assert_reason(svc, "RevisionFailed")
        assert svc["status"]["latestCreatedRevisionName"] == bad
        assert svc["status"]["latestReadyRevisionName"] == good
        assert [(t["revisionName"], t["percent"]) for t in svc["status"]["traffic"]] == [(good, 100)]
        for _ in range(5):
            status, body = stack.request(target)
            assert status == 200 and served_by(body) == good, (status, body[:200])

    # a fixed template becomes the latest ready revision and takes the traffic again
    stack.kubectl("patch", "ksvc", name, "-n", namespace, "--type", "json", "-p",
                  '[{"op": "replace", "path": "/spec/template/spec/containers/0",'
                  ' "value": {"image": "knserve.dev/samples/runtime", "env": [{"name": "FIXED", "value": "1"}]}}]')
    fixed = wait_new_ready_revision(stack, name, namespace, after=good)
    assert is_ready(stack.get("ksvc", name, namespace))
    wait_served_by(stack, target, fixed)
