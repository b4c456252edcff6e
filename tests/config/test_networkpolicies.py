"""config/networkpolicies/: each policy fences a component's internal port to the component
that uses it, and leaves every other port of that component open (a policy that selects a pod
denies whatever it does not list)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.config import manifests

POLICIES = [doc for path in manifests.files("networkpolicies") for doc in manifests.documents(path)]
DEPLOYMENTS = manifests.of_kind("Deployment")


def _selected(selector: dict[str, Any]) -> list[dict[str, Any]]:
    labels = selector["matchLabels"]
    return [deployment for deployment in DEPLOYMENTS
            if labels.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()]


def _component(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def _ports(deployment: dict[str, Any]) -> set[int]:
    return {port["containerPort"] for container in deployment["spec"]["template"]["spec"]["containers"]
            for port in container.get("ports") or []}


FENCED = {"controller": (18000, "ingress"), "activator": (8012, "ingress"), "autoscaler": (8080, "activator")}


def test_the_three_internal_ports_are_fenced() -> None:
    assert all(policy["kind"] == "NetworkPolicy" for policy in POLICIES)
    fenced = {}
    for policy in POLICIES:
        (target,) = _selected(policy["spec"]["podSelector"])
        for rule in policy["spec"]["ingress"]:
            for source in rule.get("from") or []:
                (peer,) = _selected(source["podSelector"])
                for port in rule["ports"]:
                    fenced[_component(target)] = (port["port"], _component(peer))
    assert fenced == FENCED


@pytest.mark.parametrize("policy", POLICIES, ids=lambda policy: policy["metadata"]["name"])
def test_a_policy_leaves_its_components_other_ports_open(policy: dict[str, Any]) -> None:
    (target,) = _selected(policy["spec"]["podSelector"])
    assert policy["metadata"]["namespace"] == target["metadata"]["namespace"]
    listed = {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}
    open_to_all = {port["port"] for rule in policy["spec"]["ingress"] if not rule.get("from") for port in rule["ports"]}
    assert listed == _ports(target), "every port of the component is named, none that it lacks"
    assert open_to_all == _ports(target) - {FENCED[_component(target)][0]}
