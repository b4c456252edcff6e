"""The controller against a real API server: ``kubectl apply`` a Knative Service and watch
what the controller makes of it. Tests that need running pods (a Ready Revision) come last."""

from __future__ import annotations

import json
from typing import Any

from tests.serving.reconciler.helpers import ControllerProcess, condition, get_json, is_ready
from tests.support.eventually import eventually

HELLO = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  labels:
    team: blue
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          ports:
            - containerPort: 8080
          env:
            - name: TARGET
              value: "World"
"""


def apply(cluster: Any, namespace: str, manifest: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)


def names(cluster: Any, namespace: str, kind: str) -> list[str]:
    listed = get_json(cluster, kind, "-n", namespace) or {"items": []}
    return sorted(item["metadata"]["name"] for item in listed["items"])


def test_hello_world_service_gets_configuration_route_revision_and_deployment(
    cluster: Any, namespace: str, controller: ControllerProcess
) -> None:
    apply(cluster, namespace, HELLO)
    configuration = eventually(lambda: get_json(cluster, "configuration", "hello", "-n", namespace),
                               what="Configuration hello", detail=controller.log_tail)
    route = eventually(lambda: get_json(cluster, "route", "hello", "-n", namespace), what="Route hello",
                       detail=controller.log_tail)
    service = get_json(cluster, "ksvc", "hello", "-n", namespace)
    for child in (configuration, route):
        owner = child["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "Service", "hello", service["metadata"]["uid"], True)
    revision = eventually(lambda: get_json(cluster, "revision", "hello-00001", "-n", namespace),
                          what="Revision hello-00001", detail=controller.log_tail)
    assert revision["metadata"]["labels"]["serving.knative.dev/configuration"] == "hello"
    assert revision["metadata"]["labels"]["serving.knative.dev/service"] == "hello"
    assert revision["metadata"]["labels"]["serving.knative.dev/configurationGeneration"] == "1"
    deployment = eventually(lambda: get_json(cluster, "deployment", "hello-00001-deployment", "-n", namespace),
                            what="Deployment hello-00001-deployment", detail=controller.log_tail)
    containers = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert containers == ["user-container", "queue-proxy"]
    assert eventually(lambda: get_json(cluster, "service", "hello-00001", "-n", namespace),
                      what="Kubernetes Service hello-00001", detail=controller.log_tail)
    assert eventually(lambda: get_json(cluster, "podautoscaler", "hello-00001", "-n", namespace),
                      what="PodAutoscaler hello-00001", detail=controller.log_tail)
    url = eventually(
        lambda: cluster.kubectl("get", "ksvc", "hello", "-n", namespace, "-o", "jsonpath={.status.url}").stdout,
        what="the Service URL", detail=controller.log_tail)
    assert url == f"http://hello.{namespace}.example.com"
    table = cluster.kubectl("get", "ksvc", "-n", namespace).stdout
    assert f"http://hello.{namespace}.example.com" in table


def test_service_labels_reach_configuration_and_route_without_a_new_revision(
    cluster: Any, namespace: str, controller: ControllerProcess
) -> None:
    apply(cluster, namespace, HELLO)
    eventually(lambda: get_json(cluster, "revision", "hello-00001", "-n", namespace), what="hello-00001",
               detail=controller.log_tail)
    cluster.kubectl("label", "ksvc", "hello", "-n", namespace, "team=green", "--overwrite")

    def labelled() -> bool:
        configuration = get_json(cluster, "configuration", "hello", "-n", namespace)
        route = get_json(cluster, "route", "hello", "-n", namespace)
        return all(obj and obj["metadata"]["labels"].get("team") == "green" for obj in (configuration, route))

    eventually(labelled, what="the label on the Configuration and the Route", detail=controller.log_tail)
    configuration = get_json(cluster, "configuration", "hello", "-n", namespace)
    assert configuration["metadata"]["generation"] == 1
    eventually(lambda: (get_json(cluster, "configuration", "hello", "-n", namespace) or {}).get("status", {})
               .get("observedGeneration") == 1, what="the Configuration observed", detail=controller.log_tail)
    assert names(cluster, namespace, "revisions") == ["hello-00001"]


def test_changing_the_template_creates_the_next_revision(
    cluster: Any, namespace: str, controller: ControllerProcess
) -> None:
    apply(cluster, namespace, HELLO)
    eventually(lambda: get_json(cluster, "revision", "hello-00001", "-n", namespace), what="hello-00001",
               detail=controller.log_tail)
    apply(cluster, namespace, HELLO.replace('value: "World"', 'value: "Knative"'))
    revision = eventually(lambda: get_json(cluster, "revision", "hello-00002", "-n", namespace),
                          what="hello-00002", detail=controller.log_tail)
    env = revision["spec"]["containers"][0]["env"]
    assert {"name": "TARGET", "value": "Knative"} in env
    eventually(lambda: get_json(cluster, "deployment", "hello-00002-deployment", "-n", namespace),
               what="Deployment hello-00002-deployment", detail=controller.log_tail)
    configuration = get_json(cluster, "configuration", "hello", "-n", namespace)
    assert configuration["status"]["latestCreatedRevisionName"] == "hello-00002"


def test_controller_restart_converges(cluster: Any, namespace: str, controller: ControllerProcess) -> None:
    controller.kill()
    try:
        apply(cluster, namespace, HELLO)
    finally:
        controller.start()
    eventually(lambda: get_json(cluster, "deployment", "hello-00001-deployment", "-n", namespace),
               what="the Deployment after a restart", detail=controller.log_tail)
    # killed again right after it started working, then restarted: same objects, no duplicates
    controller.kill()
    controller.start()
    eventually(lambda: get_json(cluster, "podautoscaler", "hello-00001", "-n", namespace),
               what="the PodAutoscaler", detail=controller.log_tail)
    assert names(cluster, namespace, "revisions") == ["hello-00001"]
    assert names(cluster, namespace, "configurations") == ["hello"]


def test_deleting_the_service_deletes_what_it_made(cluster: Any, namespace: str, controller: ControllerProcess) -> None:
    apply(cluster, namespace, HELLO)
    eventually(lambda: get_json(cluster, "deployment", "hello-00001-deployment", "-n", namespace),
               what="the Deployment", detail=controller.log_tail)
    cluster.kubectl("delete", "ksvc", "hello", "-n", namespace, "--wait=false")

    def all_gone() -> bool:
        return not any(names(cluster, namespace, kind)
                       for kind in ("configurations", "routes", "revisions", "deployments", "podautoscalers"))

    eventually(all_gone, timeout=90, what="the garbage collector to remove the Service's objects",
               detail=controller.log_tail)


# --- these need pods that run (the node agent) -----------------------------------------------


def wait_ready(cluster: Any, namespace: str, kind: str, name: str, controller: ControllerProcess,
               timeout: float = 120) -> Any:
    def ready() -> Any:
        obj = get_json(cluster, kind, name, "-n", namespace)
        return obj if is_ready(obj) else None

    return eventually(ready, timeout=timeout, what=f"{kind} {name} Ready", detail=controller.log_tail)


def test_split_with_tags_shows_both_targets_and_a_missing_revision_keeps_the_old_traffic(
    cluster: Any, namespace: str, controller: ControllerProcess
) -> None:
    apply(cluster, namespace, HELLO)
    wait_ready(cluster, namespace, "ksvc", "hello", controller)
    apply(cluster, namespace, HELLO.replace('value: "World"', 'value: "Knative"'))
    wait_ready(cluster, namespace, "revision", "hello-00002", controller)
    split = {"spec": {"traffic": [
        {"tag": "current", "revisionName": "hello-00001", "percent": 50},
        {"tag": "candidate", "latestRevision": True, "percent": 50},
    ]}}
    cluster.kubectl("patch", "ksvc", "hello", "-n", namespace, "--type", "merge", "-p", json.dumps(split))

    def split_in_status() -> Any:
        service = get_json(cluster, "ksvc", "hello", "-n", namespace)
        traffic = (service or {}).get("status", {}).get("traffic") or []
        return traffic if is_ready(service) and len(traffic) == 2 else None

    traffic = eventually(split_in_status, timeout=60, what="the 50/50 split in the status", detail=controller.log_tail)
    by_tag = {target["tag"]: target for target in traffic}
    assert by_tag["current"]["revisionName"] == "hello-00001"
    assert by_tag["candidate"]["revisionName"] == "hello-00002"
    assert by_tag["current"]["percent"] == by_tag["candidate"]["percent"] == 50
    assert by_tag["current"]["url"] == f"http://current-hello.{namespace}.example.com"
    assert by_tag["candidate"]["url"] == f"http://candidate-hello.{namespace}.example.com"

    missing = {"spec": {"traffic": [{"revisionName": "hello-00009", "percent": 100}]}}
    cluster.kubectl("patch", "ksvc", "hello", "-n", namespace, "--type", "merge", "-p", json.dumps(missing))

    def reported() -> Any:
        route = get_json(cluster, "route", "hello", "-n", namespace)
        assigned = condition(route, "AllTrafficAssigned")
        return route if assigned and assigned.get("reason") == "RevisionMissing" else None

    route = eventually(reported, timeout=60, what="AllTrafficAssigned=False RevisionMissing", detail=controller.log_tail)
    assigned = condition(route, "AllTrafficAssigned")
    assert assigned is not None and assigned["status"] == "False"
    assert assigned["message"] == 'Revision "hello-00009" referenced in traffic not found.'
    assert [(t["revisionName"], t["percent"]) for t in route["status"]["traffic"]] == [
        ("hello-00001", 50), ("hello-00002", 50)]

    # Each host name of the Route has its placeholder Service, an alias of the internal ingress.
    placeholders = placeholder_services(cluster, namespace)
    assert placeholders == {name: "knserve-internal.knative-serving.svc.cluster.local"
                            for name in ("hello", "current-hello", "candidate-hello")}
    cluster.kubectl("patch", "ksvc", "hello", "-n", namespace, "--type", "merge", "-p",
                    json.dumps({"spec": {"traffic": [{"revisionName": "hello-00002", "percent": 100}]}}))
    eventually(lambda: list(placeholder_services(cluster, namespace)) == ["hello"], timeout=60,
               what="the tags' placeholder Services removed", detail=controller.log_tail)


def placeholder_services(cluster: Any, namespace: str) -> dict[str, str]:
    """ExternalName Services labelled with a Route: name -> the name they alias."""
    listed = get_json(cluster, "services", "-n", namespace, "-l", "serving.knative.dev/route") or {"items": []}
    return {item["metadata"]["name"]: item["spec"].get("externalName", "") for item in listed["items"]
            if item["spec"]["type"] == "ExternalName"}


def test_a_service_named_like_the_route_that_it_does_not_own_is_reported(
    cluster: Any, namespace: str, controller: ControllerProcess
) -> None:
    cluster.kubectl("create", "service", "clusterip", "hello", "--tcp=80:8080", "-n", namespace)
    apply(cluster, namespace, HELLO)

    def not_owned() -> Any:
        ingress = condition(get_json(cluster, "route", "hello", "-n", namespace), "IngressReady")
        return ingress if ingress and ingress.get("reason") == "NotOwned" else None

    ingress = eventually(not_owned, timeout=60, what="IngressReady=False NotOwned", detail=controller.log_tail)
    assert ingress["status"] == "False"
    assert ingress["message"] == 'There is an existing placeholder Service "hello" that we do not own.'
    assert get_json(cluster, "service", "hello", "-n", namespace)["spec"]["type"] == "ClusterIP"  # left alone


def failing_service(name: str, container: str, annotations: str = "") -> str:
    return f"""
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    metadata:
      annotations: {{{annotations}}}
    spec:
      containers:
{container}
"""


def wait_revision_condition(cluster: Any, namespace: str, name: str, condition_type: str, reason_prefix: str,
                            controller: ControllerProcess, timeout: float = 90) -> dict[str, Any]:
    def found() -> Any:
        revision = get_json(cluster, "revision", name, "-n", namespace)
        wanted = condition(revision, condition_type)
        if wanted and wanted.get("status") == "False" and (wanted.get("reason") or "").startswith(reason_prefix):
            return wanted
        return None

    return eventually(found, timeout=timeout, what=f"{name} {condition_type}=False {reason_prefix}*",
                      detail=controller.log_tail)


def test_image_without_a_local_mapping_fails_the_revision(
    cluster: Any, namespace: str, controller: ControllerProcess
) -> None:
    apply(cluster, namespace, failing_service("nomap", "        - image: example.com/not-mapped/app:1"))
    healthy = wait_revision_condition(cluster, namespace, "nomap-00001", "ContainerHealthy", "ContainerMissing",
                                      controller)
    assert healthy["message"].startswith('Unable to fetch image "example.com/not-mapped/app:1"')
    configuration = get_json(cluster, "configuration", "nomap", "-n", namespace)
    ready = condition(configuration, "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "RevisionFailed")


def test_crashing_container_reports_its_exit_code(cluster: Any, namespace: str, controller: ControllerProcess) -> None:
    container = """        - image: example.com/crash:1
          command: ["python3", "-c", "import sys; sys.exit(3)"]"""
    apply(cluster, namespace, failing_service("crash", container))
    wait_revision_condition(cluster, namespace, "crash-00001", "ContainerHealthy", "ExitCode3", controller)


def test_revision_that_never_comes_up_exceeds_its_progress_deadline(
    cluster: Any, namespace: str, controller: ControllerProcess
) -> None:
    container = """        - image: example.com/sleeper:1
          command: ["python3", "-c", "import time; time.sleep(3600)"]"""
    apply(cluster, namespace, failing_service("slow", container, '"serving.knative.dev/progress-deadline": "5s"'))
    wait_revision_condition(cluster, namespace, "slow-00001", "ResourcesAvailable", "ProgressDeadlineExceeded",
                            controller, timeout=120)
