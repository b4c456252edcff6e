"""Revision names a template brings (``spec.template.metadata.name``) against a real API
server: a name another Configuration's Revision holds is reported the way Knative reports
it, and the Service's traffic is not moved to that Revision."""

from __future__ import annotations

from typing import Any

from tests.serving.reconciler.helpers import ControllerProcess, condition, get_json
from tests.support.eventually import eventually

TAKEN_MESSAGE = 'Revision creation failed with message: revisions.serving.knative.dev "{name}" already exists.'
NAME_TAKEN_MESSAGE = 'The revision name "{name}" is taken by a conflicting Revision, so traffic will not be migrated'


def named(service: str, revision: str, target: str) -> str:
    return f"""
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {service}
spec:
  template:
    metadata:
      name: {revision}
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          env:
            - name: TARGET
              value: "{target}"
"""


def apply(cluster: Any, namespace: str, manifest: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)


def reason_of(cluster: Any, namespace: str, kind: str, name: str, condition_type: str) -> dict[str, Any] | None:
    found = condition(get_json(cluster, kind, name, "-n", namespace), condition_type)
    return found if found is not None and found.get("status") == "False" else None


def test_a_revision_name_another_configuration_holds_is_reported_and_gets_no_traffic(
    cluster: Any, namespace: str, controller: ControllerProcess
) -> None:
    # "shop" may name its revisions "shop-cart-..." and so may "shop-cart": the names can meet
    apply(cluster, namespace, named("shop", "shop-cart-v1", "shop"))
    eventually(lambda: get_json(cluster, "revision", "shop-cart-v1", "-n", namespace), what="Revision shop-cart-v1",
               detail=controller.log_tail)

    apply(cluster, namespace, named("shop-cart", "shop-cart-v1", "cart"))
    failed = eventually(lambda: reason_of(cluster, namespace, "configuration", "shop-cart", "Ready"),
                        what="Configuration shop-cart Ready=False", detail=controller.log_tail)
    assert failed["reason"] == "RevisionFailed"
    assert failed["message"] == TAKEN_MESSAGE.format(name="shop-cart-v1")
    routes_ready = eventually(lambda: reason_of(cluster, namespace, "ksvc", "shop-cart", "RoutesReady"),
                              what="Service shop-cart RoutesReady=False", detail=controller.log_tail)
    assert routes_ready["reason"] == "RevisionNameTaken"
    assert routes_ready["message"] == NAME_TAKEN_MESSAGE.format(name="shop-cart-v1")
    service = get_json(cluster, "ksvc", "shop-cart", "-n", namespace)
    assert condition(service, "Ready")["status"] == "False"
    assert condition(service, "ConfigurationsReady")["reason"] == "RevisionFailed"
    # nothing is routed to the other Service's Revision, which stays as it was
    assert get_json(cluster, "route", "shop-cart", "-n", namespace) is None
    revision = get_json(cluster, "revision", "shop-cart-v1", "-n", namespace)
    assert revision["metadata"]["labels"]["serving.knative.dev/configuration"] == "shop"
    assert {"name": "TARGET", "value": "shop"} in revision["spec"]["containers"][0]["env"]
    assert "latestCreatedRevisionName" not in get_json(cluster, "configuration", "shop-cart", "-n", namespace)["status"]

    # a free name: the Revision, then the Route, and the conditions clear
    apply(cluster, namespace, named("shop-cart", "shop-cart-v2", "cart"))
    revision = eventually(lambda: get_json(cluster, "revision", "shop-cart-v2", "-n", namespace),
                          what="Revision shop-cart-v2", detail=controller.log_tail)
    assert revision["metadata"]["labels"]["serving.knative.dev/configuration"] == "shop-cart"
    eventually(lambda: get_json(cluster, "route", "shop-cart", "-n", namespace), what="Route shop-cart",
               detail=controller.log_tail)

    def cleared() -> Any:
        service = get_json(cluster, "ksvc", "shop-cart", "-n", namespace)
        routes = condition(service, "RoutesReady") or {}
        configurations = condition(service, "ConfigurationsReady") or {}
        if routes.get("reason") == "RevisionNameTaken" or configurations.get("status") == "False":
            return None
        return service

    service = eventually(cleared, what="the conditions of Service shop-cart cleared", detail=controller.log_tail)
    assert service["status"]["latestCreatedRevisionName"] == "shop-cart-v2"


def test_a_name_brought_back_reuses_its_revision_or_with_another_template_is_taken(
    cluster: Any, namespace: str, controller: ControllerProcess
) -> None:
    apply(cluster, namespace, named("cart", "cart-blue", "one"))
    eventually(lambda: get_json(cluster, "revision", "cart-blue", "-n", namespace), what="Revision cart-blue",
               detail=controller.log_tail)
    apply(cluster, namespace, named("cart", "cart-green", "two"))
    eventually(lambda: get_json(cluster, "revision", "cart-green", "-n", namespace), what="Revision cart-green",
               detail=controller.log_tail)

    # back to the first name with the first template: its Revision is the latest again
    apply(cluster, namespace, named("cart", "cart-blue", "one"))

    def observed(latest_created: str) -> Any:
        configuration = get_json(cluster, "configuration", "cart", "-n", namespace)
        status = (configuration or {}).get("status") or {}
        if status.get("observedGeneration") != configuration["metadata"]["generation"]:
            return None
        return configuration if status.get("latestCreatedRevisionName") == latest_created else None

    eventually(lambda: observed("cart-blue"), what="cart-blue the latest created Revision again", detail=controller.log_tail)
    assert sorted(item["metadata"]["name"] for item in
                  get_json(cluster, "revisions", "-n", namespace)["items"]) == ["cart-blue", "cart-green"]
    assert (condition(get_json(cluster, "configuration", "cart", "-n", namespace), "Ready") or {}).get(
        "reason") != "RevisionFailed"

    # back to the second name with a template that is not the second one's: taken
    apply(cluster, namespace, named("cart", "cart-green", "three"))
    failed = eventually(lambda: reason_of(cluster, namespace, "configuration", "cart", "Ready"),
                        what="Configuration cart Ready=False", detail=controller.log_tail)
    assert failed["message"] == TAKEN_MESSAGE.format(name="cart-green")
    routes_ready = eventually(lambda: reason_of(cluster, namespace, "ksvc", "cart", "RoutesReady"),
                              what="Service cart RoutesReady=False", detail=controller.log_tail)
    assert routes_ready["reason"] == "RevisionNameTaken"
    assert observed("cart-blue") is not None
    green = get_json(cluster, "revision", "cart-green", "-n", namespace)
    assert {"name": "TARGET", "value": "two"} in green["spec"]["containers"][0]["env"]
